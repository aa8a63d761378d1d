package main

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"
)

// config is sagactl's configuration (contract §1), read once from the
// environment.
type config struct {
	AMQPURL string
	// ManagementURL is the management API base URL, credentials included.
	ManagementURL string
	// VHost is the vhost of AMQPURL, the one every command works on.
	VHost string
}

// parseConfig reads the configuration from getenv, with the defaults of a
// developer machine. Every invalid value is reported, on one line.
func parseConfig(getenv func(string) string) (config, error) {
	or := func(key, def string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return def
	}
	c := config{
		AMQPURL:       or("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
		ManagementURL: or("RABBITMQ_MGMT_URL", "http://guest:guest@127.0.0.1:15672"),
	}
	var errs []string
	// The client library's own parser, so the vhost is the one it connects to.
	uri, err := amqp.ParseURI(c.AMQPURL)
	if err != nil {
		errs = append(errs, fmt.Sprintf("AMQP_URL: %v", err))
	}
	c.VHost = uri.Vhost
	if u, err := url.Parse(c.ManagementURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, "RABBITMQ_MGMT_URL: want an http(s) URL such as http://guest:guest@127.0.0.1:15672")
	}
	if len(errs) > 0 {
		return c, errors.New("configuration: " + strings.Join(errs, "; "))
	}
	return c, nil
}
