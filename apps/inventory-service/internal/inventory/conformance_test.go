package inventory_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/participant"
	"github.com/ordersaga/ordersaga/libs/testinfra/conformance"
	"github.com/ordersaga/ordersaga/libs/uow"
	"github.com/ordersaga/ordersaga/saga"

	"github.com/ordersaga/ordersaga/apps/inventory-service/internal/inventory"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	conformance.Run(t, conformance.Participant{
		Name:     inventory.ServiceName,
		Schema:   inventory.Schema(),
		Topology: saga.TopologyOf(inventory.ServiceName),
		Handlers: func(p *participant.Participant) []uow.Handler {
			return inventory.NewService(p.Runner, p.Log).Handlers()
		},
		Saga: func() (string, []events.Payload) {
			id, user, sku := uuid.New(), uuid.New(), "SKU-"+uuid.NewString()[:8]
			outcome := events.OrderOutcome{OrderID: id, PaymentID: uuid.New(), UserID: user}
			return id.String(), []events.Payload{
				events.ProductCreateRequested{SKU: sku, Name: "a product", Price: 250, Currency: "EUR", OnHand: 1},
				events.StockAdjustRequested{AdjustmentID: uuid.New(), SKU: sku, Delta: 4},
				events.OrderItemsPlaced{OrderID: id, UserID: user, Items: []events.Line{{SKU: sku, Quantity: 3}},
					Currency: "EUR", PaymentMethod: "tok_visa"},
				events.OrderPaid{OrderOutcome: outcome},
				events.OrderCancelled{OrderID: id, Reason: events.ReasonUserRequested, PreviousStatus: events.StatusPaid, UserID: user},
				// The reservation is returned already: nothing left to release.
				events.OrderFailed{OrderOutcome: outcome},
			}
		},
	})
}
