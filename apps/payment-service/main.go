// Command payment-service owns payments: it charges orders when they are
// created (through a simulated gateway), cancels or refunds them when they
// are cancelled, and emits payment events through its outbox.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/ordersaga/ordersaga/db"
	"github.com/ordersaga/ordersaga/libs/lifecycle"
	"github.com/ordersaga/ordersaga/libs/logging"
	"github.com/ordersaga/ordersaga/libs/participant"
	"github.com/ordersaga/ordersaga/libs/settings"
	"github.com/ordersaga/ordersaga/saga"

	"github.com/ordersaga/ordersaga/apps/payment-service/internal/payment"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		participant.Fail("payment-service", err)
	}
}

// run runs the service until ctx ends; -h or --help prints its usage and
// the variables it reads instead, and nothing else.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if help, err := settings.Help(args, stdout, intro, new(defaults())); help || err != nil {
		return err
	}
	cfg, err := parseConfig(getenv)
	if err != nil {
		return err
	}
	if err := lifecycle.StopWithParent(cfg.StopWithParent); err != nil {
		return err
	}
	log, err := logging.New(stdout, cfg.Name, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	p, err := participant.Start(ctx, cfg.Config, log, db.Payment(), saga.TopologyOf("payment-service"))
	if err != nil {
		return err
	}
	svc := payment.NewService(p.Runner, log, cfg.Gateway(), p.Registry)
	p.Handle(svc.Handlers()...)
	p.Go("payment-decider", svc.RunDecider)
	engine := p.Engine()
	payment.Routes(engine, svc)
	return p.Run(ctx, engine)
}
