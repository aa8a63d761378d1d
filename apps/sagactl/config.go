package main

import (
	"errors"
	"fmt"
	"net/url"

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
	return errors.Join(errs...)
}
