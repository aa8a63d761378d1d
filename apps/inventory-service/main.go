// Command inventory-service owns products and their stock: it creates and
// adjusts products on command, reserves an order's lines when the order is
// placed, commits them when it is paid, and releases or returns them on
// every compensation, emitting stock events through its outbox.
package main

import (
	"context"

	"github.com/gin-gonic/gin"

	"github.com/ordersaga/ordersaga/libs/participant"
	"github.com/ordersaga/ordersaga/saga"

	"github.com/ordersaga/ordersaga/apps/inventory-service/internal/inventory"
)

func main() { participant.Main(service()) }

func service() participant.Service[config] {
	return participant.Service[config]{
		Intro:    intro,
		Config:   defaults(),
		Schema:   inventory.Schema(),
		Topology: saga.TopologyOf("inventory-service"),
		Wire: func(p *participant.Participant, cfg *config, engine *gin.Engine) error {
			svc := inventory.NewService(p.Runner, p.Log)
			if err := svc.Instrument(p.Registry); err != nil {
				return err
			}
			p.Handle(svc.Handlers()...)
			p.LockFirst(svc.LockStock)
			p.Go("early-cancellation-pruning", func(ctx context.Context) error {
				return svc.RunCancellationPruning(ctx, cfg.MessageRetention)
			})
			inventory.Routes(engine, svc)
			return nil
		},
	}
}
