// Package notify is the notification service (contract §8): the address
// directory built from user.registered, the e-mail log written by the
// consumers of the saga's outcomes, the sender that delivers it over SMTP
// outside any transaction, and the query of the log.
package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordersaga/ordersaga/db"
	"github.com/ordersaga/ordersaga/db/notification/notificationdb"
	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/postgres"
	"github.com/ordersaga/ordersaga/libs/uow"
)

// ServiceName is how the notification service names itself.
const ServiceName = "notification-service"

// Schema is the notification service's database schema.
func Schema() db.Migrations { return db.MustSchema("notification") }

// Kinds and statuses of an e-mail (contract §8).
const (
	KindOrderConfirmed = "ORDER_CONFIRMED"
	KindOrderCancelled = "ORDER_CANCELLED"
	KindPaymentFailed  = "PAYMENT_FAILED"

	Pending = "PENDING"
	Sent    = "SENT"
	Failed  = "FAILED"
	Skipped = "SKIPPED"

	// NoAddress is the error of an e-mail to a customer whose address the
	// service never learnt.
	NoAddress = "NO_ADDRESS"

	AttachInvoice    = "invoice"
	AttachCreditNote = "credit-note"
)

// Statuses are the statuses of an e-mail, for the list's filter.
var Statuses = []string{Pending, Sent, Failed, Skipped}

// Notification is a record of the e-mail log as the API shows it.
type Notification struct {
	ID        uuid.UUID  `json:"id"`
	OrderID   uuid.UUID  `json:"orderId"`
	UserID    *uuid.UUID `json:"userId"`
	Kind      string     `json:"kind"`
	To        string     `json:"to"`
	Subject   string     `json:"subject"`
	Status    string     `json:"status"`
	Attempts  int32      `json:"attempts"`
	Error     *string    `json:"error"`
	SentAt    *time.Time `json:"sentAt"`
	CreatedAt time.Time  `json:"createdAt"`
}

func fromRow(r notificationdb.Notification) Notification {
	n := Notification{
		ID: r.ID, OrderID: r.OrderID, UserID: r.UserID, Kind: r.Kind, To: r.Recipient, Subject: r.Subject,
		Status: r.Status, Attempts: r.Attempts, Error: r.Error, CreatedAt: r.CreatedAt.UTC(),
	}
	if r.SentAt != nil {
		t := r.SentAt.UTC()
		n.SentAt = &t
	}
	return n
}

// Service records the e-mails the saga's outcomes call for.
type Service struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	// wake tells the sender that an e-mail was recorded.
	wake func()
}

// NewService returns the notification service, whose handlers write
// through runner (uow.On) and call wake once what they recorded committed.
func NewService(runner *uow.Runner, log *slog.Logger, wake func()) *Service {
	if wake == nil {
		wake = func() {}
	}
	return &Service{pool: runner.Pool(), log: log, wake: wake}
}

// Handlers returns the handlers of the messages the service consumes (its
// subscriptions in saga/saga.conf).
func (s *Service) Handlers() []uow.Handler {
	return []uow.Handler{
		uow.On(s.userRegistered),
		uow.On(s.invoiceIssued),
		uow.On(s.invoiceCredited),
		uow.On(s.orderCancelled),
		uow.On(s.orderFailed),
	}
}

func (s *Service) userRegistered(ctx context.Context, tx *uow.Tx, e *events.UserRegistered) error {
	err := notificationdb.New(tx).UpsertAddress(ctx, notificationdb.UpsertAddressParams{UserID: e.UserID, Email: e.Email, Name: e.Name})
	if err != nil {
		return fmt.Errorf("address of user %s: %w", e.UserID, err)
	}
	return nil
}

func (s *Service) invoiceIssued(ctx context.Context, tx *uow.Tx, e *events.InvoiceIssued) error {
	return s.record(ctx, tx, trigger{
		kind: KindOrderConfirmed, orderID: e.OrderID, userID: e.UserID, attachment: AttachInvoice, invoiceID: e.InvoiceID,
		facts: Facts{Number: e.Number, Total: e.Total, Currency: e.Currency},
	})
}

// invoiceCredited is the cancellation e-mail of an order that was paid:
// its credit note attached.
func (s *Service) invoiceCredited(ctx context.Context, tx *uow.Tx, e *events.InvoiceCredited) error {
	return s.record(ctx, tx, trigger{
		kind: KindOrderCancelled, orderID: e.OrderID, userID: e.UserID, attachment: AttachCreditNote, invoiceID: e.InvoiceID,
		facts: Facts{Number: e.Number, CreditNoteNumber: e.CreditNoteNumber, Total: e.Total, Currency: e.Currency},
	})
}

// orderCancelled is the cancellation e-mail of an order that was never
// paid. A paid order's cancellation is followed by its invoice.credited,
// whose e-mail carries the credit note: it is that one's (one e-mail per
// order and kind).
func (s *Service) orderCancelled(ctx context.Context, tx *uow.Tx, e *events.OrderCancelled) error {
	if e.PreviousStatus == events.StatusPaid {
		return nil
	}
	return s.record(ctx, tx, trigger{kind: KindOrderCancelled, orderID: e.OrderID, userID: e.UserID, facts: Facts{Reason: e.Reason}})
}

func (s *Service) orderFailed(ctx context.Context, tx *uow.Tx, e *events.OrderFailed) error {
	return s.record(ctx, tx, trigger{kind: KindPaymentFailed, orderID: e.OrderID, userID: e.UserID})
}

// trigger is what an event says an e-mail is.
type trigger struct {
	kind            string
	orderID, userID uuid.UUID
	attachment      string
	invoiceID       uuid.UUID
	facts           Facts
}

// record writes the e-mail of t PENDING for the sender, or SKIPPED when
// its customer's address is unknown; nothing when its order and kind have
// one already.
func (s *Service) record(ctx context.Context, tx *uow.Tx, t trigger) error {
	q := notificationdb.New(tx)
	p := notificationdb.InsertNotificationParams{
		ID: uuid.New(), OrderID: t.orderID, Kind: t.kind, Status: Pending,
		Subject: Subject(t.kind, t.orderID.String(), t.facts),
	}
	if t.userID != uuid.Nil {
		p.UserID = &t.userID
		addr, err := q.AddressOf(ctx, t.userID)
		switch {
		case err == nil:
			p.Recipient, p.RecipientName = addr.Email, addr.Name
		case !postgres.IsNotFound(err):
			return fmt.Errorf("address of user %s: %w", t.userID, err)
		}
	}
	if p.Recipient == "" {
		reason := NoAddress
		p.Status, p.Error = Skipped, &reason
	}
	if t.attachment != "" {
		p.Attachment, p.InvoiceID = &t.attachment, &t.invoiceID
	}
	facts, err := json.Marshal(t.facts)
	if err != nil {
		return err
	}
	p.Facts = facts
	n, err := q.InsertNotification(ctx, p)
	if err != nil {
		return fmt.Errorf("record %s of order %s: %w", t.kind, t.orderID, err)
	}
	if n == 1 && p.Status == Pending {
		tx.AfterCommit(s.wake)
	}
	return nil
}

// Filter selects e-mails of the log; nil fields select all.
type Filter struct {
	UserID, OrderID *uuid.UUID
	Status          *string
}

// List returns a page of the log, newest first, and the count of all
// e-mails the filter selects.
func (s *Service) List(ctx context.Context, f Filter, limit, offset int) ([]Notification, int64, error) {
	q := notificationdb.New(s.pool)
	rows, err := q.ListNotifications(ctx, notificationdb.ListNotificationsParams{
		UserID: f.UserID, OrderID: f.OrderID, Status: f.Status, Lim: int32(limit), Off: int32(offset),
	})
	if err != nil {
		return nil, 0, err
	}
	total, err := q.CountNotifications(ctx, notificationdb.CountNotificationsParams{UserID: f.UserID, OrderID: f.OrderID, Status: f.Status})
	if err != nil {
		return nil, 0, err
	}
	out := make([]Notification, len(rows))
	for i, r := range rows {
		out[i] = fromRow(r)
	}
	return out, total, nil
}
