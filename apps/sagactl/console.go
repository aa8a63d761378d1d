package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/ordersaga/ordersaga/libs/lifecycle"
	"github.com/ordersaga/ordersaga/libs/rabbit/mgmt"
	"github.com/ordersaga/ordersaga/saga"

	"github.com/ordersaga/ordersaga/apps/sagactl/internal/console"
)

const usageConsole = `Usage: sagactl console [--addr HOST:PORT]

Serves the operator console, a web UI of the saga, until interrupted: the
latest sagas (live), the stuck ones, one saga's timeline as a sequence
diagram, the dead letters (grouped, replayable, purgeable, every action in
the audit log, as with sagactl dlq) and the health of every service and
queue. It runs with the operator's credentials: the broker and its
management API (AMQP_URL, RABBITMQ_MGMT_URL), and each service's own HTTP
API (GATEWAY_URL and every participant's <NAME>_URL, such as
ORDER_SERVICE_URL), not the gateway's API. Everything it serves is embedded
in the binary; its pages load nothing from another host.

Flags:
  --addr HOST:PORT   where to listen (default 127.0.0.1:3010)
`

func consoleCommand(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("console", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:3010", "")
	if _, err := parse(fs, usageConsole, args, 0); err != nil {
		return err
	}
	cfg, err := parseConfig(getenv)
	if err != nil {
		return err
	}
	if err := lifecycle.StopWithParent(cfg.StopWithParent); err != nil {
		return err
	}
	op, closeOp, err := openOperator(ctx, getenv)
	if err != nil {
		return err
	}
	defer closeOp()
	op.Via = "console"
	api, err := mgmt.New(cfg.ManagementURL)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	c, err := console.New(consoleConfig(cfg, getenv), op, api, log)
	if err != nil {
		return err
	}
	ready := make(chan string, 1)
	errc := make(chan error, 1)
	go func() { errc <- c.Serve(ctx, *addr, ready) }()
	select {
	case at := <-ready:
		fmt.Fprintf(stdout, "sagactl console: http://%s/ (vhost %q, audit log %s)\n", at, cfg.VHost, op.Audit.Path())
	case err := <-errc:
		return err
	}
	return <-errc
}

// consoleConfig is the console's view of cfg: the gateway, then every
// participant at its <NAME>_URL or default address.
func consoleConfig(cfg config, getenv func(string) string) console.Config {
	cc := console.Config{
		Services:        []console.Service{{Name: "gateway", URL: strings.TrimSuffix(cfg.GatewayURL, "/")}},
		InvoiceURL:      strings.TrimSuffix(cfg.InvoiceURL, "/"),
		NotificationURL: strings.TrimSuffix(cfg.NotificationURL, "/"),
		JaegerURL:       strings.TrimSuffix(cfg.JaegerURL, "/"),
		StuckAfter:      cfg.StuckAfter,
		ReplayRate:      cfg.ReplayRate,
		VHost:           cfg.VHost,
	}
	for _, p := range saga.Participants() {
		u := getenv(p.URLVar())
		if u == "" {
			u = p.DefaultURL()
		}
		s := console.Service{Name: p.Name, URL: strings.TrimSuffix(u, "/")}
		if p.HasTimeline() {
			s.Timeline = p.Timeline
		}
		cc.Services = append(cc.Services, s)
	}
	return cc
}
