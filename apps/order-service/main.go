// Command order-service owns orders: it consumes order commands and payment
// events, moves each order through its state machine, and emits order
// events through its outbox.
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

	"github.com/ordersaga/ordersaga/apps/order-service/internal/order"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		participant.Fail("order-service", err)
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
	p, err := participant.Start(ctx, cfg.Config, log, db.Order(), saga.TopologyOf("order-service"))
	if err != nil {
		return err
	}
	svc := order.NewService(p.Runner, log, order.Timeouts{Payment: cfg.PaymentTimeout, Stock: cfg.StockTimeout}, p.Registry)
	p.Handle(svc.Handlers()...)
	p.Go("timeout-sweep", svc.RunTimeoutSweep)
	engine := p.Engine()
	order.Routes(engine, svc)
	return p.Run(ctx, engine)
}
