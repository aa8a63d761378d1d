// Command inventory-service owns products and their stock: it creates and
// adjusts products on command, reserves an order's lines when the order is
// placed, commits them when it is paid, and releases or returns them on
// every compensation, emitting stock events through its outbox.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/ordersaga/ordersaga/libs/lifecycle"
	"github.com/ordersaga/ordersaga/libs/logging"
	"github.com/ordersaga/ordersaga/libs/participant"
	"github.com/ordersaga/ordersaga/libs/settings"
	"github.com/ordersaga/ordersaga/saga"

	"github.com/ordersaga/ordersaga/apps/inventory-service/internal/inventory"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		participant.Fail(inventory.ServiceName, err)
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
	p, err := participant.Start(ctx, cfg.Config, log, inventory.Schema(), saga.TopologyOf(inventory.ServiceName))
	if err != nil {
		return err
	}
	svc := inventory.NewService(p.Runner, log)
	p.Handle(svc.Handlers()...)
	engine := p.Engine()
	inventory.Routes(engine, svc)
	return p.Run(ctx, engine)
}
