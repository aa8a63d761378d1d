package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"
)

// config is the demo's configuration, read once from the environment, with
// the defaults of a developer machine (those of sagactl for the broker).
type config struct {
	GatewayURL string
	AMQPURL    string
	// ManagementURL is the RabbitMQ management API base URL, credentials
	// included; sagactl lists queues with it.
	ManagementURL string
	// Sagactl is the sagactl binary the dead-letter steps run.
	Sagactl string
	// VHost is the vhost of AMQPURL.
	VHost string
	// Term is $TERM: "dumb" turns the in-place progress line off.
	Term string
}

// parseConfig reads the configuration from getenv. Every invalid value is
// reported, on one line.
func parseConfig(getenv func(string) string) (config, error) {
	or := func(key, def string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return def
	}
	c := config{
		GatewayURL:    strings.TrimSuffix(or("GATEWAY_URL", "http://127.0.0.1:3000"), "/"),
		AMQPURL:       or("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
		ManagementURL: or("RABBITMQ_MGMT_URL", "http://guest:guest@127.0.0.1:15672"),
		Sagactl:       or("SAGACTL", defaultSagactl()),
		Term:          getenv("TERM"),
	}
	var errs []string
	if !httpURL(c.GatewayURL) {
		errs = append(errs, "GATEWAY_URL: want an http(s) URL such as http://127.0.0.1:3000")
	}
	uri, err := amqp.ParseURI(c.AMQPURL)
	if err != nil {
		errs = append(errs, fmt.Sprintf("AMQP_URL: %v", err))
	}
	c.VHost = uri.Vhost
	if !httpURL(c.ManagementURL) {
		errs = append(errs, "RABBITMQ_MGMT_URL: want an http(s) URL such as http://guest:guest@127.0.0.1:15672")
	}
	if len(errs) > 0 {
		return c, errors.New("configuration: " + strings.Join(errs, "; "))
	}
	return c, nil
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
