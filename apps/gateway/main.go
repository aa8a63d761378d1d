// Command gateway is the public REST API of ordersaga: it publishes the
// order commands to RabbitMQ, answering only once the broker confirmed
// them, and forwards queries to the order and payment services.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ordersaga/ordersaga/libs/lifecycle"
	"github.com/ordersaga/ordersaga/libs/logging"
	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/settings"
	"github.com/ordersaga/ordersaga/libs/tracing"
	"github.com/ordersaga/ordersaga/libs/web"
	"github.com/ordersaga/ordersaga/saga"

	"github.com/ordersaga/ordersaga/apps/gateway/internal/gateway"
)

// shutdownTimeout bounds how long requests in flight may take to finish.
const shutdownTimeout = 10 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil {
		// One line, whatever the error says.
		fmt.Fprintln(os.Stderr, "gateway:", strings.ReplaceAll(err.Error(), "\n", "; "))
		os.Exit(1)
	}
}

// run serves the gateway until ctx ends, then shuts down: HTTP first, so
// that requests in flight still get their confirms, then the broker. -h or
// --help prints its usage and the variables it reads instead, and nothing
// else.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if help, err := settings.Help(args, stdout, intro(), &config{}); help || err != nil {
		return err
	}
	cfg, err := parseConfig(getenv)
	if err != nil {
		return err
	}
	if err := lifecycle.StopWithParent(cfg.StopWithParent); err != nil {
		return err
	}
	log, err := logging.New(stdout, "gateway", cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	stopTracing, err := tracing.Setup(ctx, "gateway", getenv)
	if err != nil {
		return err
	}
	defer tracing.Stop(ctx, stopTracing, log)

	dialCtx, cancel := context.WithTimeout(ctx, cfg.StartupTimeout)
	conn, err := rabbit.Dial(dialCtx, cfg.AMQPURL, "gateway", saga.TopologyOf("gateway"), log)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil // asked to stop while starting
		}
		return fmt.Errorf("broker %s unreachable after %s: %w", redact(cfg.AMQPURL), cfg.StartupTimeout, err)
	}
	pub := rabbit.NewPublisher(conn, "gateway", cfg.PublishTimeout)
	closeBroker := func() {
		_ = pub.Close()
		_ = conn.Close()
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := pub.Instrument(reg); err != nil {
		return err
	}
	client := gateway.NewClient(cfg.UpstreamTimeout)
	client.Transport = tracing.Transport(client.Transport)
	defer client.CloseIdleConnections()
	var participants []gateway.Participant
	for _, p := range saga.Participants() {
		// An unmerged timeline (saga.conf) is not asked for; the
		// participant's readiness still is.
		participants = append(participants, gateway.Participant{Name: p.Name, URL: cfg.ServiceURLs[p.Name], Timeline: p.MergedTimeline()})
	}
	g, err := gateway.New(gateway.Options{
		Publisher:    pub,
		BrokerCheck:  conn.Check,
		Participants: participants,
		Client:       client,
		Log:          log,
		Registry:     reg,
		Auth:         gateway.AuthOptions{Mode: cfg.AuthMode, UsersURL: cfg.UsersURL},
	})
	if err != nil {
		closeBroker()
		return err
	}

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		closeBroker()
		return fmt.Errorf("listen on HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
	}
	return serve(ctx, log, ln, g, closeBroker, cfg)
}

// serve serves g on ln until ctx ends or the server fails, then shuts
// down: HTTP first, so that requests in flight still get their confirms,
// then the broker (closeBroker).
func serve(ctx context.Context, log *slog.Logger, ln net.Listener, g *gateway.Gateway, closeBroker func(), cfg config) error {
	srv := &http.Server{
		Handler:           tracing.Handler(g.Handler(), "gateway"),
		ReadHeaderTimeout: 10 * time.Second,
		// Far above what a real client sends; Go's default (1 MiB) let one
		// request hold a megabyte of headers. Over it: 431.
		MaxHeaderBytes: web.MaxHeaderBytes,
		ReadTimeout:    30 * time.Second,
		IdleTimeout:    2 * time.Minute,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// Shutdown waits for the handlers in flight; the order event streams
	// would otherwise hold it until they end on their own.
	srv.RegisterOnShutdown(g.Shutdown)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("started", "http_addr", ln.Addr().String(), "services", cfg.ServiceURLs)

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-served:
		runErr = fmt.Errorf("http server: %w", err)
	}
	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil && !errors.Is(err, http.ErrServerClosed) && runErr == nil {
		runErr = fmt.Errorf("http shutdown: %w", err)
	}
	closeBroker()
	log.Info("stopped")
	return runErr
}

// redact hides the password of an AMQP URL.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable AMQP_URL)"
	}
	return u.Redacted()
}
