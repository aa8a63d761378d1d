package payment_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/ordersaga/ordersaga/db"
	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/participant"
	"github.com/ordersaga/ordersaga/libs/testinfra/conformance"
	"github.com/ordersaga/ordersaga/libs/uow"
	"github.com/ordersaga/ordersaga/saga"

	"github.com/ordersaga/ordersaga/apps/payment-service/internal/payment"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	conformance.Run(t, conformance.Participant{
		Name:     payment.ServiceName,
		Schema:   db.Payment(),
		Topology: saga.TopologyOf(payment.ServiceName),
		Handlers: func(p *participant.Participant) []uow.Handler {
			return payment.NewService(p.Runner, p.Log, payment.Gateway{Limit: 1_000_000}, p.Registry).Handlers()
		},
		Saga: func() (string, []events.Payload) {
			id, user := uuid.New(), uuid.New()
			outcome := events.OrderOutcome{OrderID: id, PaymentID: uuid.New(), UserID: user}
			return id.String(), []events.Payload{
				events.OrderCreated{OrderPlaced: events.OrderPlaced{
					OrderID: id, UserID: user, Total: 1500, Currency: "EUR", PaymentMethod: "tok_visa"}},
				events.OrderPaid{OrderOutcome: outcome},
				events.OrderFailed{OrderOutcome: outcome},
				events.OrderCancelled{OrderID: id, Reason: events.ReasonUserRequested, PreviousStatus: events.StatusPaid, UserID: user},
			}
		},
	})
}
