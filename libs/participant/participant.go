// Package participant is the runtime every saga participant shares: its
// database (pool and migrations), its broker connection and publisher, the
// outbox relay, its consumers and background loops, its HTTP server, and the
// order in which all of that starts and stops. A new participant (invoices,
// inventory…) brings its handlers and queries; this brings the rest.
package participant

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ordersaga/ordersaga/db"
	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/outbox"
	"github.com/ordersaga/ordersaga/libs/postgres"
	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/uow"
	"github.com/ordersaga/ordersaga/libs/web"
)

// Config is what every participant is configured with (contract §1).
type Config struct {
	Name           string
	LogLevel       string
	LogFormat      string
	HTTPAddr       string
	AMQPURL        string
	DatabaseURL    string
	StartupTimeout time.Duration
	PublishTimeout time.Duration
	// MaxConns sizes the database pool; 0 keeps pgx's default.
	MaxConns int32
	// MaxAttempts is how often a transiently failing message is tried
	// before it is dead-lettered.
	MaxAttempts int
	// Workers is how many batches each consumer handles at once, and
	// MaxBatch how many deliveries one batch (one transaction) takes.
	Workers, MaxBatch int
	// Prefetch bounds each consumer's deliveries in flight; 0 means 64.
	Prefetch int
	// Pprof serves /debug/pprof/ (PPROF=true), for finding where time goes.
	Pprof bool
}

// Env reads the configuration every participant shares from getenv, with
// the defaults of a developer machine.
func Env(getenv func(string) string, name, defaultAddr, defaultDB string) (Config, error) {
	c := Config{
		Name:        name,
		LogLevel:    Or(getenv("LOG_LEVEL"), "info"),
		LogFormat:   getenv("LOG_FORMAT"),
		HTTPAddr:    Or(getenv("HTTP_ADDR"), defaultAddr),
		AMQPURL:     Or(getenv("AMQP_URL"), "amqp://guest:guest@127.0.0.1:5672/"),
		DatabaseURL: Or(getenv("DATABASE_URL"), defaultDB),
	}
	var errs []error
	c.StartupTimeout, errs = Positive(getenv, "STARTUP_TIMEOUT", 30*time.Second, errs)
	c.PublishTimeout, errs = Positive(getenv, "PUBLISH_TIMEOUT", 5*time.Second, errs)
	c.Workers, errs = Int(getenv, "CONSUMER_WORKERS", 4, 1, 256, errs)
	c.MaxBatch, errs = Int(getenv, "CONSUMER_MAX_BATCH", 32, 1, 1000, errs)
	c.Pprof, errs = Bool(getenv, "PPROF", errs)
	c.MaxAttempts, errs = Int(getenv, "CONSUMER_MAX_ATTEMPTS", 5, 1, 100, errs)
	var maxConns int
	maxConns, errs = Int(getenv, "DB_MAX_CONNS", 0, 1, math.MaxInt32, errs)
	c.MaxConns = int32(maxConns)
	return c, errors.Join(errs...)
}

// Or returns v, or def when v is empty.
func Or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// Int parses the integer in variable key (def when unset), appending a
// clear error to errs when it is malformed or outside lo..hi.
func Int(getenv func(string) string, key string, def, lo, hi int, errs []error) (int, []error) {
	v := getenv(key)
	if v == "" {
		return def, errs
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return def, append(errs, fmt.Errorf("%s %q: want an integer from %d to %d", key, v, lo, hi))
	}
	return n, errs
}

// Bool parses the boolean in variable key (false when unset), appending a
// clear error to errs when it is malformed.
func Bool(getenv func(string) string, key string, errs []error) (bool, []error) {
	v := getenv(key)
	if v == "" {
		return false, errs
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, append(errs, fmt.Errorf("%s %q: want true or false", key, v))
	}
	return b, errs
}

// Duration parses the Go duration in variable key (def when unset),
// appending a clear error to errs when it is malformed or negative.
func Duration(getenv func(string) string, key string, def time.Duration, errs []error) (time.Duration, []error) {
	v := getenv(key)
	if v == "" {
		return def, errs
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return def, append(errs, fmt.Errorf("%s %q: want a duration such as 500ms or 2m", key, v))
	}
	return d, errs
}

// Positive is Duration for a variable that cannot be zero: a timeout of 0
// would fail every start-up or every publish.
func Positive(getenv func(string) string, key string, def time.Duration, errs []error) (time.Duration, []error) {
	d, errs := Duration(getenv, key, def, errs)
	if d == 0 {
		errs = append(errs, fmt.Errorf("%s %q: want a positive duration such as 500ms or 2m", key, getenv(key)))
		return def, errs
	}
	return d, errs
}

// Participant is a running saga participant.
type Participant struct {
	cfg       Config
	Log       *slog.Logger
	Pool      *pgxpool.Pool
	Conn      *rabbit.Conn
	Publisher *rabbit.Publisher
	// Runner runs the participant's units of work: whatever writes state
	// and emits messages (handlers, sweeps, deciders) goes through it, and
	// what it emits is published once committed.
	Runner   *uow.Runner
	Registry *prometheus.Registry
	topology events.Topology
	handlers []uow.Handler
	relay    *outbox.Relay
	metrics  *rabbit.Metrics
	loops    []loop
}

type loop struct {
	name string
	run  func(ctx context.Context) error
}

// Start connects to the database (waiting up to StartupTimeout), applies the
// messaging schema and schema, and connects to the broker, declaring
// topology: the participant's own part of the saga's (saga.TopologyOf),
// whose own queues it consumes once Run starts.
func Start(ctx context.Context, cfg Config, log *slog.Logger, schema db.Migrations, topology events.Topology) (*Participant, error) {
	startCtx, cancel := context.WithTimeout(ctx, cfg.StartupTimeout)
	defer cancel()
	// A dependency still away when STARTUP_TIMEOUT ends is said so, once.
	unreachable := func(what string, err error) error {
		if startCtx.Err() != nil && ctx.Err() == nil {
			return fmt.Errorf("%s unreachable after %s: %w", what, cfg.StartupTimeout, err)
		}
		return err
	}
	pool, err := postgres.Connect(startCtx, cfg.DatabaseURL, cfg.MaxConns)
	if err != nil {
		return nil, unreachable("database", err)
	}
	if err := postgres.Migrate(startCtx, pool, log, db.Messaging(), schema); err != nil {
		pool.Close()
		return nil, err
	}
	conn, err := rabbit.Dial(startCtx, cfg.AMQPURL, cfg.Name, topology, log)
	if err != nil {
		pool.Close()
		return nil, unreachable("broker", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	pub := rabbit.NewPublisher(conn, cfg.Name, cfg.PublishTimeout)
	if err := pub.Instrument(reg); err != nil {
		conn.Close()
		pool.Close()
		return nil, err
	}
	relay := outbox.NewRelay(pool, pub, cfg.Name, log, reg)
	return &Participant{
		cfg:       cfg,
		Log:       log,
		Pool:      pool,
		Conn:      conn,
		Publisher: pub,
		// What the units of work commit is published at once.
		Runner:   uow.NewRunner(pool, relay.Dispatch, reg),
		Registry: reg,
		topology: topology,
		relay:    relay,
		metrics:  rabbit.NewMetrics(reg),
	}, nil
}

// CheckDatabase pings the database, for readiness and consumer pauses.
func (p *Participant) CheckDatabase(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return p.Pool.Ping(ctx)
}

// Handle registers the handlers of the messages the participant consumes
// (uow.On), one per type bound to its queues. Run refuses to start unless
// they match those bindings exactly.
func (p *Participant) Handle(hs ...uow.Handler) { p.handlers = append(p.handlers, hs...) }

// consumers returns a consumer of each of the participant's own queues that
// routes its deliveries to the handlers.
func (p *Participant) consumers() ([]*rabbit.Consumer, error) {
	router, err := uow.NewRouter(p.Runner, p.topology, p.handlers...)
	if err != nil {
		return nil, err
	}
	var cs []*rabbit.Consumer
	for _, q := range router.Queues() {
		cs = append(cs, rabbit.NewConsumer(p.Conn, p.Publisher, rabbit.ConsumerConfig{
			Queue:       q,
			Prefetch:    cmp.Or(p.cfg.Prefetch, 64),
			Workers:     p.cfg.Workers,
			MaxBatch:    p.cfg.MaxBatch,
			MaxAttempts: p.cfg.MaxAttempts,
			Ready:       p.CheckDatabase,
		}, router.Handler(q), p.Log, p.metrics))
	}
	return cs, nil
}

// Go adds a background loop that runs until its context ends; an error it
// returns is logged and the loop restarted after a pause.
func (p *Participant) Go(name string, run func(ctx context.Context) error) {
	p.loops = append(p.loops, loop{name, run})
}

// Engine returns the participant's gin engine, with readiness checking the
// database and the broker.
func (p *Participant) Engine() *gin.Engine {
	e := web.NewEngine(p.Log, p.Registry, map[string]web.Check{
		"database": p.CheckDatabase,
		"broker":   p.Conn.Check,
	})
	if p.cfg.Pprof {
		web.Pprof(e)
	}
	return e
}

// Run serves handler and runs the relay, consumers and loops until ctx ends,
// after checking that the handlers match the participant's subscriptions,
// then shuts down in the order that loses nothing: stop consuming and let
// handlers in flight finish, stop the loops, flush the relay, close the
// broker, stop HTTP, close the pool.
func (p *Participant) Run(ctx context.Context, handler http.Handler) error {
	consumers, err := p.consumers()
	if err != nil {
		p.Close()
		return err
	}
	// Bind before anything consumes, so a taken port fails the start.
	ln, err := net.Listen("tcp", p.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on HTTP_ADDR %s: %w", p.cfg.HTTPAddr, err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	httpErr := make(chan error, 1)
	go func() { httpErr <- srv.Serve(ln) }()

	workCtx, stopWork := context.WithCancel(ctx)
	defer stopWork()
	var consuming, loops sync.WaitGroup
	for _, c := range consumers {
		consuming.Go(func() { _ = c.Run(workCtx) })
	}
	for _, l := range p.loops {
		loops.Go(func() { p.keepRunning(workCtx, l) })
	}
	relayCtx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRelay()
	relayDone := make(chan struct{})
	go func() { defer close(relayDone); _ = p.relay.Run(relayCtx) }()
	p.Log.Info("started", "http_addr", p.cfg.HTTPAddr)

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-httpErr:
		runErr = fmt.Errorf("http server: %w", err)
	}
	p.Log.Info("shutting down")
	stopWork()
	consuming.Wait()
	loops.Wait()
	stopRelay() // the relay flushes once more on its way out
	<-relayDone
	_ = p.Publisher.Close()
	_ = p.Conn.Close()
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil && runErr == nil {
		runErr = fmt.Errorf("http shutdown: %w", err)
	}
	p.Pool.Close()
	p.Log.Info("stopped")
	return runErr
}

func (p *Participant) keepRunning(ctx context.Context, l loop) {
	for ctx.Err() == nil {
		err := l.run(ctx)
		if ctx.Err() != nil {
			return
		}
		p.Log.Warn("background loop stopped; restarting", "loop", l.name, "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// Close releases what Start acquired, for a participant that never ran.
func (p *Participant) Close() {
	_ = p.Publisher.Close()
	_ = p.Conn.Close()
	p.Pool.Close()
}

// Fail prints err as the one line a failed start promises (contract §1) and
// exits non-zero. Drivers' errors may span lines; they are folded.
func Fail(name string, err error) {
	fmt.Fprintln(os.Stderr, name+": "+strings.Join(strings.Fields(err.Error()), " "))
	os.Exit(1)
}
