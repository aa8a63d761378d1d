// Package events is the message contract of ordersaga (contract.md §4): the
// exchanges, the message types with their payloads, and how a message is
// decoded and validated. Every participant of the saga speaks through it.
package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/text/currency"
)

// SchemaVersion is the value of the x-schema-version header of every message.
const SchemaVersion = 1

// Exchanges.
const (
	ExchangeOrderCommands = "orders.commands"
	ExchangeOrderEvents   = "orders.events"
	ExchangePaymentEvents = "payments.events"
)

// Message types; each is also the routing key.
const (
	TypeOrderCreateRequested = "order.create.requested"
	TypeOrderCancelRequested = "order.cancel.requested"

	TypeOrderCreated   = "order.created"
	TypeOrderCancelled = "order.cancelled"
	TypeOrderPaid      = "order.paid"
	TypeOrderFailed    = "order.failed"

	TypePaymentApproved  = "payment.approved"
	TypePaymentDeclined  = "payment.declined"
	TypePaymentFailed    = "payment.failed"
	TypePaymentRefunded  = "payment.refunded"
	TypePaymentCancelled = "payment.cancelled"
)

// Cancel reasons of an order (contract §3).
const (
	ReasonUserRequested   = "USER_REQUESTED"
	ReasonPaymentDeclined = "PAYMENT_DECLINED"
	ReasonPaymentTimeout  = "PAYMENT_TIMEOUT"
)

// ErrInvalid marks a message that can never be processed: undecodable, of an
// unknown type or with an invalid payload. Consumers dead-letter it at once.
var ErrInvalid = errors.New("invalid message")

// Message is one logical message, independent of the transport. ID is stable
// across re-publishes; CorrelationID is the order id of the saga.
type Message struct {
	ID            uuid.UUID
	Type          string
	CorrelationID string
	CausationID   string
	Timestamp     time.Time
	Body          []byte
}

// New builds a message of type typ carrying payload, with a fresh id.
func New(typ string, correlationID uuid.UUID, payload any) (Message, error) {
	return NewWithID(NewID(), typ, correlationID, payload)
}

// NewID returns a fresh time-ordered (v7) UUID: ids that grow with time keep
// B-tree indexes compact.
func NewID() uuid.UUID {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.New()
	}
	return id
}

// NewWithID builds a message with a caller-chosen id, for messages whose
// identity must be deterministic (an idempotent command, say).
func NewWithID(id uuid.UUID, typ string, correlationID uuid.UUID, payload any) (Message, error) {
	if _, ok := registry[typ]; !ok {
		return Message{}, fmt.Errorf("new message: unknown type %q", typ)
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return Message{}, fmt.Errorf("new message %s: %w", typ, err)
	}
	return Message{
		ID:            id,
		Type:          typ,
		CorrelationID: correlationID.String(),
		Timestamp:     time.Now().UTC(),
		Body:          body,
	}, nil
}

// CausedBy returns m marked as caused by the message with id cause.
func (m Message) CausedBy(cause string) Message {
	m.CausationID = cause
	return m
}

// ExchangeOf is the exchange a message of type typ is published to, or "" for
// an unknown type.
func ExchangeOf(typ string) string {
	if k, ok := registry[typ]; ok {
		return k.exchange
	}
	return ""
}

// Known reports whether typ is a message type of the contract.
func Known(typ string) bool {
	_, ok := registry[typ]
	return ok
}

// Decode parses and validates the body of a message of type typ. It returns a
// pointer to the payload struct of that type; every failure wraps ErrInvalid.
func Decode(typ string, body []byte) (Payload, error) {
	k, ok := registry[typ]
	if !ok {
		return nil, fmt.Errorf("%w: unknown message type %q", ErrInvalid, typ)
	}
	p := k.new()
	if err := json.Unmarshal(body, p); err != nil {
		return nil, fmt.Errorf("%w: %s body: %v", ErrInvalid, typ, err)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %s payload: %v", ErrInvalid, typ, err)
	}
	return p, nil
}

// Payload is the body of a message of the contract.
type Payload interface {
	Validate() error
}

type kind struct {
	exchange string
	new      func() Payload
}

var registry = map[string]kind{
	TypeOrderCreateRequested: {ExchangeOrderCommands, func() Payload { return new(OrderCreateRequested) }},
	TypeOrderCancelRequested: {ExchangeOrderCommands, func() Payload { return new(OrderCancelRequested) }},
	TypeOrderCreated:         {ExchangeOrderEvents, func() Payload { return new(OrderCreated) }},
	TypeOrderCancelled:       {ExchangeOrderEvents, func() Payload { return new(OrderCancelled) }},
	TypeOrderPaid:            {ExchangeOrderEvents, func() Payload { return new(OrderPaid) }},
	TypeOrderFailed:          {ExchangeOrderEvents, func() Payload { return new(OrderPaid) }},
	TypePaymentApproved:      {ExchangePaymentEvents, func() Payload { return &PaymentEvent{} }},
	TypePaymentRefunded:      {ExchangePaymentEvents, func() Payload { return &PaymentEvent{} }},
	TypePaymentCancelled:     {ExchangePaymentEvents, func() Payload { return &PaymentEvent{} }},
	TypePaymentDeclined:      {ExchangePaymentEvents, func() Payload { return &PaymentEvent{reasonRequired: true} }},
	TypePaymentFailed:        {ExchangePaymentEvents, func() Payload { return &PaymentEvent{reasonRequired: true} }},
}

// OrderPlaced is the content of an order at creation; the create command and
// the order.created event carry it.
type OrderPlaced struct {
	OrderID       uuid.UUID `json:"orderId"`
	UserID        uuid.UUID `json:"userId"`
	Total         int64     `json:"total"`
	Currency      string    `json:"currency"`
	PaymentMethod string    `json:"paymentMethod"`
}

// Validate checks the fields of an order at creation.
func (o OrderPlaced) Validate() error {
	var errs []error
	if o.OrderID == uuid.Nil {
		errs = append(errs, errors.New("orderId is required"))
	}
	if o.UserID == uuid.Nil {
		errs = append(errs, errors.New("userId is required"))
	}
	if o.Total <= 0 {
		errs = append(errs, errors.New("total must be a positive integer"))
	}
	if !IsCurrencyCode(o.Currency) {
		errs = append(errs, fmt.Errorf("currency %q is not an ISO 4217 code", o.Currency))
	}
	if o.PaymentMethod == "" {
		errs = append(errs, errors.New("paymentMethod is required"))
	}
	return errors.Join(errs...)
}

// OrderCreateRequested is the command to create an order.
type OrderCreateRequested struct{ OrderPlaced }

// OrderCreated is the fact that an order was created and awaits payment.
type OrderCreated struct{ OrderPlaced }

// OrderCancelRequested is the command to cancel an order.
type OrderCancelRequested struct {
	OrderID uuid.UUID `json:"orderId"`
	Reason  string    `json:"reason"`
}

// Validate checks the command.
func (c OrderCancelRequested) Validate() error {
	var errs []error
	if c.OrderID == uuid.Nil {
		errs = append(errs, errors.New("orderId is required"))
	}
	if c.Reason == "" {
		errs = append(errs, errors.New("reason is required"))
	}
	return errors.Join(errs...)
}

// OrderCancelled is the fact that an order was cancelled.
type OrderCancelled struct {
	OrderID        uuid.UUID `json:"orderId"`
	Reason         string    `json:"reason"`
	PreviousStatus string    `json:"previousStatus"`
}

// Validate checks the event.
func (c OrderCancelled) Validate() error {
	var errs []error
	if c.OrderID == uuid.Nil {
		errs = append(errs, errors.New("orderId is required"))
	}
	if c.Reason == "" {
		errs = append(errs, errors.New("reason is required"))
	}
	if c.PreviousStatus == "" {
		errs = append(errs, errors.New("previousStatus is required"))
	}
	return errors.Join(errs...)
}

// OrderPaid is the body of order.paid and order.failed.
type OrderPaid struct {
	OrderID   uuid.UUID `json:"orderId"`
	PaymentID uuid.UUID `json:"paymentId"`
}

// Validate checks the event.
func (p OrderPaid) Validate() error {
	var errs []error
	if p.OrderID == uuid.Nil {
		errs = append(errs, errors.New("orderId is required"))
	}
	if p.PaymentID == uuid.Nil {
		errs = append(errs, errors.New("paymentId is required"))
	}
	return errors.Join(errs...)
}

// PaymentEvent is the body of every payment.* event; Reason is set for
// payment.declined and payment.failed only.
type PaymentEvent struct {
	PaymentID uuid.UUID `json:"paymentId"`
	OrderID   uuid.UUID `json:"orderId"`
	Amount    int64     `json:"amount"`
	Currency  string    `json:"currency"`
	Reason    string    `json:"reason,omitempty"`

	reasonRequired bool
}

// Validate checks the event.
func (p PaymentEvent) Validate() error {
	var errs []error
	if p.PaymentID == uuid.Nil {
		errs = append(errs, errors.New("paymentId is required"))
	}
	if p.OrderID == uuid.Nil {
		errs = append(errs, errors.New("orderId is required"))
	}
	if p.Amount <= 0 {
		errs = append(errs, errors.New("amount must be a positive integer"))
	}
	if !IsCurrencyCode(p.Currency) {
		errs = append(errs, fmt.Errorf("currency %q is not an ISO 4217 code", p.Currency))
	}
	if p.reasonRequired && p.Reason == "" {
		errs = append(errs, errors.New("reason is required"))
	}
	return errors.Join(errs...)
}

var currencyShape = regexp.MustCompile(`^[A-Z]{3}$`)

// newerCurrencies are ISO 4217 codes the CLDR data of golang.org/x/text
// does not know: introduced since 2018 (MRU, VES, UYW, VED, SLE, ZWG, XCG).
var newerCurrencies = []string{"MRU", "SLE", "UYW", "VED", "VES", "XCG", "ZWG"}

// IsCurrencyCode reports whether s is an ISO 4217 currency code, upper case.
// The code list is CLDR's, through golang.org/x/text, with newerCurrencies.
func IsCurrencyCode(s string) bool {
	if !currencyShape.MatchString(s) {
		return false
	}
	if slices.Contains(newerCurrencies, s) {
		return true
	}
	_, err := currency.ParseISO(s)
	return err == nil
}

// Detail renders a payload as a short human-readable string for timelines:
// its fields other than the ids, as key=value pairs.
func Detail(body []byte) string {
	var fields map[string]any
	if err := json.Unmarshal(body, &fields); err != nil {
		return ""
	}
	var parts []string
	for _, k := range []string{"total", "amount", "currency", "paymentMethod", "reason", "previousStatus"} {
		if v, ok := fields[k]; ok && v != nil && v != "" {
			parts = append(parts, fmt.Sprintf("%s=%v", k, v))
		}
	}
	return strings.Join(parts, " ")
}
