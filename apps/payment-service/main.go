// Command payment-service owns payments: it charges orders when they are
// created (through a simulated gateway), cancels or refunds them when they
// are cancelled, and emits payment events through its outbox.
package main

import (
	"context"
	"io"

	"github.com/gin-gonic/gin"

	"github.com/ordersaga/ordersaga/db"
	"github.com/ordersaga/ordersaga/libs/participant"
	"github.com/ordersaga/ordersaga/saga"

	"github.com/ordersaga/ordersaga/apps/payment-service/internal/payment"
)

func main() { participant.Main(service()) }

func service() participant.Service[config] {
	return participant.Service[config]{
		Intro:    intro,
		Config:   defaults(),
		Schema:   db.Payment(),
		Topology: saga.TopologyOf("payment-service"),
		Wire: func(p *participant.Participant, cfg *config, engine *gin.Engine) error {
			svc := payment.NewService(p.Runner, p.Log, cfg.Gateway(), p.Registry)
			p.Handle(svc.Handlers()...)
			p.Go("payment-decider", svc.RunDecider)
			payment.Routes(engine, svc)
			return nil
		},
	}
}

// run runs the service until ctx ends (participant.Run).
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	return participant.Run(ctx, service(), args, getenv, stdout)
}
