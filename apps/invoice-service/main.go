// Command invoice-service owns invoices and credit notes: it issues a
// gapless-numbered invoice and its PDF for every paid order and a credit
// note for every invoiced order that is cancelled, emitting invoice events
// through its outbox.
package main

import (
	"github.com/gin-gonic/gin"

	"github.com/ordersaga/ordersaga/libs/participant"
	"github.com/ordersaga/ordersaga/saga"

	"github.com/ordersaga/ordersaga/apps/invoice-service/internal/invoice"
)

func main() { participant.Main(service()) }

func service() participant.Service[config] {
	return participant.Service[config]{
		Intro:    intro,
		Config:   defaults(),
		Schema:   invoice.Schema(),
		Topology: saga.TopologyOf("invoice-service"),
		Wire: func(p *participant.Participant, cfg *config, engine *gin.Engine) error {
			seller := invoice.Seller{Name: cfg.SellerName, Address: cfg.SellerAddress}
			svc := invoice.NewService(p.Runner, p.Log, seller)
			p.Handle(svc.Handlers()...)
			invoice.Routes(engine, svc)
			return nil
		},
	}
}
