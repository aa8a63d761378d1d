package notify_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/participant"
	"github.com/ordersaga/ordersaga/libs/testinfra/conformance"
	"github.com/ordersaga/ordersaga/libs/uow"
	"github.com/ordersaga/ordersaga/saga"

	"github.com/ordersaga/ordersaga/apps/notification-service/internal/notify"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	conformance.Run(t, conformance.Participant{
		Name:     notify.ServiceName,
		Schema:   notify.Schema(),
		Topology: saga.TopologyOf(notify.ServiceName),
		Handlers: func(p *participant.Participant) []uow.Handler {
			return notify.NewService(p.Runner, p.Log, nil).Handlers()
		},
		Saga: func() (string, []events.Payload) {
			id, user, invoice := uuid.New(), uuid.New(), uuid.New()
			issued := events.InvoiceIssued{InvoiceID: invoice, Number: "INV-2026-000001", OrderID: id, UserID: user, Total: 1234, Currency: "USD"}
			return id.String(), []events.Payload{
				events.UserRegistered{UserID: user, Email: "ada@example.org", Name: "Ada"},
				issued,
				events.OrderCancelled{OrderID: id, Reason: events.ReasonUserRequested, PreviousStatus: events.StatusPaid, UserID: user},
				events.InvoiceCredited{InvoiceIssued: issued, CreditNoteNumber: "CN-2026-000001"},
				events.OrderFailed{OrderOutcome: events.OrderOutcome{OrderID: uuid.New(), PaymentID: uuid.New(), UserID: user}},
			}
		},
	})
}
