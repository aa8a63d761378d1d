// Command order-service owns orders: it consumes order commands and payment
// events, moves each order through its state machine, and emits order
// events through its outbox.
package main

import (
	"context"
	"io"

	"github.com/gin-gonic/gin"

	"github.com/ordersaga/ordersaga/db"
	"github.com/ordersaga/ordersaga/libs/participant"
	"github.com/ordersaga/ordersaga/saga"

	"github.com/ordersaga/ordersaga/apps/order-service/internal/order"
)

func main() { participant.Main(service()) }

func service() participant.Service[config] {
	return participant.Service[config]{
		Intro:    intro,
		Config:   defaults(),
		Schema:   db.Order(),
		Topology: saga.TopologyOf("order-service"),
		Wire: func(p *participant.Participant, cfg *config, engine *gin.Engine) error {
			svc := order.NewService(p.Runner, p.Log, cfg.PaymentTimeout, p.Registry)
			p.Handle(svc.Handlers()...)
			p.Go("payment-timeout-sweep", svc.RunTimeoutSweep)
			order.Routes(engine, svc)
			return nil
		},
	}
}

// run runs the service until ctx ends (participant.Run).
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	return participant.Run(ctx, service(), args, getenv, stdout)
}
