package invoice_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/participant"
	"github.com/ordersaga/ordersaga/libs/testinfra/conformance"
	"github.com/ordersaga/ordersaga/libs/uow"
	"github.com/ordersaga/ordersaga/saga"

	"github.com/ordersaga/ordersaga/apps/invoice-service/internal/invoice"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	conformance.Run(t, conformance.Participant{
		Name:     invoice.ServiceName,
		Schema:   invoice.Schema(),
		Topology: saga.TopologyOf(invoice.ServiceName),
		Handlers: func(p *participant.Participant) []uow.Handler {
			return invoice.NewService(p.Runner, p.Log, invoice.Seller{Name: "Conformance", Address: "Street 1"}).Handlers()
		},
		Saga: func() (string, []events.Payload) {
			id, user := uuid.New(), uuid.New()
			return id.String(), []events.Payload{
				events.OrderPaid{
					OrderOutcome: events.OrderOutcome{OrderID: id, PaymentID: uuid.New(), UserID: user},
					Total:        750, Currency: "EUR",
					Items: []events.PaidLine{{SKU: "A-1", Name: "a product", Quantity: 3, UnitPrice: 250}},
				},
				events.OrderCancelled{OrderID: id, Reason: events.ReasonUserRequested, PreviousStatus: events.StatusPaid, UserID: user},
			}
		},
	})
}
