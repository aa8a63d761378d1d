package main

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/settings"
)

// config is sagactl's configuration (contract §1), read once from the
// environment by settings.Parse.
type config struct {
	AMQPURL string `env:"AMQP_URL" envDefault:"amqp://guest:guest@127.0.0.1:5672/" help:"its path is the vhost every command works on"`
	// ManagementURL is the management API base URL, credentials included.
	ManagementURL string `env:"RABBITMQ_MGMT_URL" envDefault:"http://guest:guest@127.0.0.1:15672" help:"management API, used by dlq list"`
	// StateDir holds the audit log of the dead-letter actions (ops.Audit),
	// shared by the dlq commands and the console.
	StateDir string `env:"SAGACTL_STATE_DIR" envDefault:".run/sagactl" help:"the audit log of replays and purges (audit.jsonl) is kept here"`
	// The console's settings (sagactl console); the participants' URLs are
	// read from their <NAME>_URL, as the gateway reads them.
	GatewayURL      string        `env:"GATEWAY_URL" envDefault:"http://127.0.0.1:3000" help:"console: the gateway, for its readiness"`
	InvoiceURL      string        `env:"INVOICE_SERVICE_URL" envDefault:"http://127.0.0.1:3004" help:"console: a saga links to its invoice when this answers"`
	NotificationURL string        `env:"NOTIFICATION_SERVICE_URL" envDefault:"http://127.0.0.1:3006" help:"console: a saga lists its e-mails when this answers"`
	JaegerURL       string        `env:"JAEGER_QUERY_URL" help:"console: Jaeger's query API (e.g. http://127.0.0.1:16686); empty: no trace view"`
	StuckAfter      time.Duration `env:"CONSOLE_STUCK_AFTER" envDefault:"1m" help:"console: an order not finished after this is stuck (less than order-service's ORDER_PAYMENT_TIMEOUT, which ends a saga waiting for payment)"`
	ReplayRate      float64       `env:"CONSOLE_REPLAY_RATE" envDefault:"20" help:"console: at most this many messages a second per replay"`
	StopWithParent  bool          `env:"STOP_WITH_PARENT" envDefault:"false" help:"console: stop when the process that started it dies (make run sets it)"`
	// VHost is the vhost of AMQPURL, the one every command works on.
	VHost string
}

// parseConfig reads the configuration from getenv, with the defaults of a
// developer machine. Every invalid value is reported, on one line.
func parseConfig(getenv func(string) string) (config, error) {
	var c config
	return c, settings.Parse(getenv, &c)
}

// Check validates the URLs and finds the vhost.
func (c *config) Check() error {
	var errs []error
	// The client library's own parser, so the vhost is the one it connects
	// to; AMQP_URL may name several nodes (rabbit.ParseURLs), all of one
	// vhost.
	if urls, err := rabbit.ParseURLs(c.AMQPURL); err != nil {
		errs = append(errs, fmt.Errorf("AMQP_URL: %w", err))
	} else if uri, err := amqp.ParseURI(urls[0]); err == nil {
		c.VHost = uri.Vhost
	}
	if u, err := url.Parse(c.ManagementURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, errors.New("RABBITMQ_MGMT_URL: want an http(s) URL such as http://guest:guest@127.0.0.1:15672"))
	}
	for _, f := range [][2]string{{"GATEWAY_URL", c.GatewayURL}, {"INVOICE_SERVICE_URL", c.InvoiceURL},
		{"NOTIFICATION_SERVICE_URL", c.NotificationURL}, {"JAEGER_QUERY_URL", c.JaegerURL}} {
		name, v := f[0], f[1]
		if v == "" && name != "JAEGER_QUERY_URL" || v != "" && !httpURL(v) {
			errs = append(errs, fmt.Errorf("%s: want an http(s) URL", name))
		}
	}
	if c.StuckAfter <= 0 {
		errs = append(errs, errors.New("CONSOLE_STUCK_AFTER: want a positive duration such as 2m"))
	}
	if c.ReplayRate <= 0 {
		errs = append(errs, errors.New("CONSOLE_REPLAY_RATE: want more than 0"))
	}
	return errors.Join(errs...)
}

func httpURL(v string) bool {
	u, err := url.Parse(v)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
