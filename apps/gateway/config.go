package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/ordersaga/ordersaga/libs/logging"
	"github.com/ordersaga/ordersaga/libs/settings"
	"github.com/ordersaga/ordersaga/saga"

	"github.com/ordersaga/ordersaga/apps/gateway/internal/gateway"
)

// config is the gateway's configuration (contract §1), read once from the
// environment by settings.Parse.
type config struct {
	HTTPAddr string `env:"HTTP_ADDR" envDefault:":3000" help:"host:port or :port"`
	AMQPURL  string `env:"AMQP_URL" envDefault:"amqp://guest:guest@127.0.0.1:5672/"`
	// ServiceURLs are the participants' base URLs, by name, each from its
	// <NAME>_URL (saga.Participant.URLVar), defaulting to its port here.
	ServiceURLs map[string]string
	LogLevel    string `env:"LOG_LEVEL" envDefault:"info" help:"debug, info, warn or error"`
	LogFormat   string `env:"LOG_FORMAT" help:"json or text (unset: text on a terminal, else json)"`
	// PublishTimeout bounds the wait for a broker confirm.
	PublishTimeout time.Duration `env:"PUBLISH_TIMEOUT" envDefault:"5s" valid:"positive"`
	// StartupTimeout bounds the wait for the broker at start-up.
	StartupTimeout time.Duration `env:"STARTUP_TIMEOUT" envDefault:"30s" valid:"positive"`
	// UpstreamTimeout bounds every call to a service, body included.
	UpstreamTimeout time.Duration `env:"UPSTREAM_TIMEOUT" envDefault:"5s" valid:"positive"`
	// AuthMode is the access control (contract §7): off (every route as
	// without accounts; never in production) or required.
	AuthMode string `env:"AUTH_MODE" envDefault:"off" help:"off (no tokens needed but for user administration; development only) or required (a bearer token on every /api route but /api/auth/*)"`
	// UsersURL is users-service's base URL (USERS_SERVICE_URL): its JWKS,
	// and where accounts are forwarded.
	UsersURL string
	// StopWithParent makes the gateway stop when the process that started
	// it dies (lifecycle.StopWithParent); the local runner sets it.
	StopWithParent bool `env:"STOP_WITH_PARENT" envDefault:"false" help:"true: stop when the parent process dies"`

	getenv func(string) string
}

const introText = `gateway is the public REST API of ordersaga: it publishes the order
commands to RabbitMQ and forwards queries to the services.

Usage: gateway [-h | --help | --version]

It reaches each participant of the saga at its <NAME>_URL:
`

// intro is introText with each participant's URL variable and default.
func intro() string {
	var b strings.Builder
	b.WriteString(introText)
	for _, p := range saga.Participants() {
		fmt.Fprintf(&b, "  %-22s %s\n", p.URLVar(), p.DefaultURL())
	}
	return b.String()
}

// parseConfig reads the configuration from getenv, with the defaults of a
// developer machine. Every invalid value is reported, on one line.
func parseConfig(getenv func(string) string) (config, error) {
	c := config{getenv: getenv}
	err := settings.Parse(getenv, &c)
	c.getenv = nil // only Check needs it
	return c, err
}

// Check reports what the tags cannot say, and trims the services' URLs.
func (c *config) Check() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("HTTP_ADDR %q: want host:port or :port", c.HTTPAddr))
	}
	if u, err := url.Parse(c.AMQPURL); err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") || u.Host == "" {
		// The URL may hold a password: name the variable, not the value.
		errs = append(errs, errors.New("AMQP_URL: want amqp://user:password@host:port/vhost"))
	}
	c.ServiceURLs = map[string]string{}
	for _, p := range saga.Participants() {
		v := c.getenv(p.URLVar())
		if v == "" {
			v = p.DefaultURL()
		}
		base, err := gateway.BaseURL(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %w", p.URLVar(), err))
			continue
		}
		c.ServiceURLs[p.Name] = base
	}
	if c.AuthMode != gateway.AuthOff && c.AuthMode != gateway.AuthRequired {
		errs = append(errs, fmt.Errorf("AUTH_MODE %q: want %s or %s", c.AuthMode, gateway.AuthOff, gateway.AuthRequired))
	}
	// users-service is a participant: USERS_SERVICE_URL, read above.
	c.UsersURL = c.ServiceURLs[gateway.UsersService]
	errs = append(errs, logging.Check(c.LogLevel, c.LogFormat))
	return errors.Join(errs...)
}
