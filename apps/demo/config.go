package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ordersaga/ordersaga/libs/settings"
)

// config is the demo's configuration, read once from the environment by
// settings.Parse, with the defaults of a developer machine (those of
// sagactl for the broker).
type config struct {
	GatewayURL string `env:"GATEWAY_URL" envDefault:"http://127.0.0.1:3000"`
	// JaegerURL is where the saga's traces are read, when the gateway
	// traces (TRACING=on make demo): its query API.
	JaegerURL string `env:"JAEGER_QUERY_URL" envDefault:"http://127.0.0.1:16686"`
	AMQPURL   string `env:"AMQP_URL" envDefault:"amqp://guest:guest@127.0.0.1:5672/" help:"its path is the vhost"`
	// ManagementURL is the RabbitMQ management API base URL, credentials
	// included; sagactl lists queues with it.
	ManagementURL string `env:"RABBITMQ_MGMT_URL" envDefault:"http://guest:guest@127.0.0.1:15672"`
	// Sagactl is the sagactl binary the dead-letter steps run; its default
	// (set by defaults) is the one beside the demo's own binary.
	Sagactl string `env:"SAGACTL"`
	// AdminEmail and AdminPassword are the administrator the demo logs in
	// as when the gateway needs tokens (AUTH_MODE=required): the same
	// variables users-service creates its first administrator from.
	AdminEmail    string `env:"ADMIN_EMAIL" help:"the administrator to log in as when the gateway has AUTH_MODE=required (make demo sets it)"`
	AdminPassword string `env:"ADMIN_PASSWORD" help:"its password"`
	// MailpitURL is the API of the mail server make run and make demo
	// start, where the confirmation e-mail is read back (contract §8).
	MailpitURL string `env:"MAILPIT_URL" envDefault:"http://127.0.0.1:8025" help:"Mailpit's API, where the demo reads the confirmation e-mail"`
	// SagactlStateDir is passed to sagactl: where it keeps the audit log of
	// the demo's replay (sagactl's default when empty).
	SagactlStateDir string `env:"SAGACTL_STATE_DIR" help:"passed to sagactl, which keeps its audit log there"`
	// ConsoleURL is where -linger says the console is.
	ConsoleURL string `env:"CONSOLE_URL" envDefault:"http://127.0.0.1:3010" help:"the operator console, which -linger points at"`
	// VHost is the vhost of AMQPURL.
	VHost string
	// Term is $TERM: "dumb" turns the in-place progress line off.
	Term string `env:"TERM" help:"dumb: no progress line"`
}

const intro = `demo walks through ordersaga on a running system (make run, or make demo):
every saga outcome, orders with items and the stock they take, customers
and what they may not see, and a dead letter replayed with sagactl. It
exits 0 only if every step ended as the contract says.

It also seeds a small catalogue (products DEMO-*, created once: a second
create of a sku changes nothing); -seed-only does only that, as make run does
once the gateway is ready. -linger, which make demo runs after the tour with
payment-service paused, leaves a stuck saga and a dead letter for the
operator console, outside the tour's pass/fail.

Usage: demo [-seed-only | -linger | -h | --help | --version]
`

// defaults is the configuration before the environment is read.
func defaults() config { return config{Sagactl: defaultSagactl()} }

// parseConfig reads the configuration from getenv. Every invalid value is
// reported, on one line.
func parseConfig(getenv func(string) string) (config, error) {
	c := defaults()
	return c, settings.Parse(getenv, &c)
}

// Check validates the URLs and finds the vhost.
func (c *config) Check() error {
	c.GatewayURL = strings.TrimSuffix(c.GatewayURL, "/")
	var errs []error
	if !httpURL(c.GatewayURL) {
		errs = append(errs, errors.New("GATEWAY_URL: want an http(s) URL such as http://127.0.0.1:3000"))
	}
	uri, err := amqp.ParseURI(c.AMQPURL)
	if err != nil {
		errs = append(errs, fmt.Errorf("AMQP_URL: %w", err))
	}
	c.VHost = uri.Vhost
	if !httpURL(c.ManagementURL) {
		errs = append(errs, errors.New("RABBITMQ_MGMT_URL: want an http(s) URL such as http://guest:guest@127.0.0.1:15672"))
	}
	return errors.Join(errs...)
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// defaultSagactl is the sagactl beside the demo's own binary (both are in
// bin/ after make build), else whatever PATH finds.
func defaultSagactl() string {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "sagactl")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "sagactl"
}

// managementUI is the management UI's address without credentials, and the
// login to show beside it ("guest/guest" only for the well-known default).
func managementUI(mgmtURL string) (addr, login string) {
	u, err := url.Parse(mgmtURL)
	if err != nil {
		return mgmtURL, ""
	}
	if u.User != nil {
		login = u.User.Username()
		if pw, _ := u.User.Password(); login == "guest" && pw == "guest" {
			login = "guest/guest"
		}
	}
	u.User = nil
	return strings.TrimSuffix(u.String(), "/"), login
}
