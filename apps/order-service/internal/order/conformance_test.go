package order_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordersaga/ordersaga/db"
	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/participant"
	"github.com/ordersaga/ordersaga/libs/testinfra/conformance"
	"github.com/ordersaga/ordersaga/libs/uow"
	"github.com/ordersaga/ordersaga/saga"

	"github.com/ordersaga/ordersaga/apps/order-service/internal/order"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	conformance.Run(t, conformance.Participant{
		Name:     order.ServiceName,
		Schema:   db.Order(),
		Topology: saga.TopologyOf(order.ServiceName),
		Handlers: func(p *participant.Participant) []uow.Handler {
			return order.NewService(p.Runner, p.Log, order.Timeouts{Payment: time.Hour, Stock: time.Hour}, p.Registry).Handlers()
		},
		Saga: func() (string, []events.Payload) {
			id, payment := uuid.New(), uuid.New()
			outcome := events.PaymentOutcome{PaymentID: payment, OrderID: id, Amount: 900, Currency: "USD"}
			refusal := events.PaymentRefusal{PaymentOutcome: outcome, Reason: "CARD_DECLINED"}
			return id.String(), []events.Payload{
				events.OrderCreateRequested{OrderPlaced: events.OrderPlaced{
					OrderID: id, UserID: uuid.New(), Total: 900, Currency: "USD", PaymentMethod: "tok_visa"}},
				events.PaymentApproved{PaymentOutcome: outcome},
				// An order no longer waiting for payment ignores these.
				events.PaymentDeclined{PaymentRefusal: refusal},
				events.PaymentFailed{PaymentRefusal: refusal},
				events.OrderCancelRequested{OrderID: id, Reason: events.ReasonUserRequested},
				events.PaymentRefunded{PaymentOutcome: outcome},
				events.PaymentCancelled{PaymentOutcome: outcome},
			}
		},
	})
}
