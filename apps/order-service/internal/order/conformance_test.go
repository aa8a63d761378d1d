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
			lines := []events.Line{{SKU: "A-1", Quantity: 3}}
			moved := events.StockMovement{OrderID: id, Items: lines}
			return id.String(), []events.Payload{
				events.OrderCreateRequested{OrderPlaced: events.OrderPlaced{
					OrderID: id, UserID: uuid.New(), Currency: "USD", PaymentMethod: "tok_visa"}, Items: lines},
				events.StockReserved{OrderID: id, Items: []events.PricedLine{{SKU: "A-1", Quantity: 3, UnitPrice: 300}}, Total: 900, Currency: "USD"},
				events.PaymentApproved{PaymentOutcome: outcome},
				events.StockCommitted{StockMovement: moved},
				// An order no longer waiting for stock or payment ignores these.
				events.StockRejected{OrderID: id, Reason: events.ReasonOutOfStock, Items: []events.RejectedLine{{SKU: "A-1", Requested: 3}}},
				events.PaymentDeclined{PaymentRefusal: refusal},
				events.PaymentFailed{PaymentRefusal: refusal},
				events.OrderCancelRequested{OrderID: id, Reason: events.ReasonUserRequested},
				events.PaymentRefunded{PaymentOutcome: outcome},
				events.PaymentCancelled{PaymentOutcome: outcome},
				events.StockReturned{StockMovement: moved},
				events.StockReleased{StockMovement: moved},
			}
		},
	})
}
