package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/ordersaga/ordersaga/saga"

	"github.com/ordersaga/ordersaga/apps/gateway/internal/gateway"
)

// config is the gateway's configuration (contract §1), read once from the
// environment.
type config struct {
	HTTPAddr string
	AMQPURL  string
	// ServiceURLs are the participants' base URLs, by name, from each one's
	// <NAME>_URL (saga.Participant.URLVar).
	ServiceURLs map[string]string
	LogLevel    string
	// PublishTimeout bounds the wait for a broker confirm.
	PublishTimeout time.Duration
	// StartupTimeout bounds the wait for the broker at start-up.
	StartupTimeout time.Duration
	// UpstreamTimeout bounds every call to a service, body included.
	UpstreamTimeout time.Duration
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
		HTTPAddr:    or("HTTP_ADDR", ":3000"),
		AMQPURL:     or("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
		ServiceURLs: map[string]string{},
		LogLevel:    or("LOG_LEVEL", "info"),
	}
	var errs []string
	duration := func(key string, def time.Duration) time.Duration {
		v := getenv(key)
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Sprintf("%s %q: want a positive duration such as 500ms or 5s", key, v))
			return def
		}
		return d
	}
	c.PublishTimeout = duration("PUBLISH_TIMEOUT", 5*time.Second)
	c.StartupTimeout = duration("STARTUP_TIMEOUT", 30*time.Second)
	c.UpstreamTimeout = duration("UPSTREAM_TIMEOUT", 5*time.Second)

	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Sprintf("HTTP_ADDR %q: want host:port or :port", c.HTTPAddr))
	}
	if u, err := url.Parse(c.AMQPURL); err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") || u.Host == "" {
		// The URL may hold a password: name the variable, not the value.
		errs = append(errs, "AMQP_URL: want amqp://user:password@host:port/vhost")
	}
	for _, p := range saga.Participants() {
		base, err := gateway.BaseURL(or(p.URLVar(), p.DefaultURL()))
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s %v", p.URLVar(), err))
			continue
		}
		c.ServiceURLs[p.Name] = base
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.ToLower(c.LogLevel))); err != nil {
		errs = append(errs, fmt.Sprintf("LOG_LEVEL %q: want debug, info, warn or error", c.LogLevel))
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("configuration: %s", strings.Join(errs, "; "))
	}
	return c, nil
}
