package participant

import (
	"time"

	"github.com/ordersaga/ordersaga/libs/logging"
	"github.com/ordersaga/ordersaga/libs/rabbit"
)

// Config is what every participant is configured with (contract §1), read
// by settings.Parse from the variables its tags name. A participant embeds
// it in its own configuration and adds its own variables beside it:
//
//	type config struct {
//		participant.Config
//		PaymentTimeout time.Duration `env:"ORDER_PAYMENT_TIMEOUT" envDefault:"2m" valid:"positive"`
//	}
type Config struct {
	// Name is the participant's name (not a variable): its logs' service,
	// its app_id, its queues' prefix.
	Name      string
	LogLevel  string `env:"LOG_LEVEL" envDefault:"info" help:"debug, info, warn or error"`
	LogFormat string `env:"LOG_FORMAT" help:"json or text (unset: text on a terminal, else json)"`
	// HTTPAddr and DatabaseURL differ between participants, so their
	// defaults are not in the tags but set by Defaults.
	HTTPAddr       string        `env:"HTTP_ADDR"`
	AMQPURL        string        `env:"AMQP_URL" envDefault:"amqp://guest:guest@127.0.0.1:5672/"`
	DatabaseURL    string        `env:"DATABASE_URL"`
	StartupTimeout time.Duration `env:"STARTUP_TIMEOUT" envDefault:"30s" valid:"positive"`
	// PublishTimeout bounds the wait for a broker confirm; 0 would fail
	// every publish.
	PublishTimeout time.Duration `env:"PUBLISH_TIMEOUT" envDefault:"5s" valid:"positive"`
	// MaxConns sizes the database pool; 0 (unset) keeps pgx's default.
	MaxConns int32 `env:"DB_MAX_CONNS" valid:"1.." help:"unset: pgx's default"`
	// ConsumerTuning (prefetch, workers, batch size, attempts) is shared
	// with rabbit.NewConsumer, so the two cannot disagree on a default.
	rabbit.ConsumerTuning
	// MessageRetention is how long handled and published messages are kept
	// (deduplication of redeliveries and replays, and the timeline).
	MessageRetention time.Duration `env:"MESSAGE_RETENTION" envDefault:"168h" valid:"positive"`
	// Pprof serves /debug/pprof/ (PPROF=true), for finding where time goes.
	Pprof bool `env:"PPROF" envDefault:"false"`
	// StopWithParent makes the process stop when the one that started it
	// dies (lifecycle.StopWithParent); the local runner sets it.
	StopWithParent bool `env:"STOP_WITH_PARENT" envDefault:"false" help:"true: stop when the parent process dies"`
}

// Defaults returns the configuration of participant name before the
// environment is read: the tags hold every default but the participant's
// own address and database, given here.
func Defaults(name, httpAddr, databaseURL string) Config {
	return Config{Name: name, HTTPAddr: httpAddr, DatabaseURL: databaseURL}
}

// Check reports a log level or format that logging cannot use, with the
// variables' other problems rather than at the first log line.
func (c *Config) Check() error { return logging.Check(c.LogLevel, c.LogFormat) }

// Base returns c: through embedding, every participant's configuration
// hands Run the part that is every participant's.
func (c *Config) Base() *Config { return c }
