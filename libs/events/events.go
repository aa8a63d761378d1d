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

	ExchangeInventoryCommands = "inventory.commands"
	ExchangeInventoryEvents   = "inventory.events"
	ExchangeUserEvents        = "users.events"
	ExchangeInvoiceEvents     = "invoices.events"
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

	TypeOrderPlaced = "order.placed"

	TypeProductCreateRequested = "product.create.requested"
	TypeStockAdjustRequested   = "stock.adjust.requested"

	TypeStockReserved  = "stock.reserved"
	TypeStockRejected  = "stock.rejected"
	TypeStockCommitted = "stock.committed"
	TypeStockReleased  = "stock.released"
	TypeStockReturned  = "stock.returned"
	TypeUserRegistered = "user.registered"

	TypeInvoiceIssued   = "invoice.issued"
	TypeInvoiceCredited = "invoice.credited"
)

// Cancel reasons of an order (contract §3).
const (
	ReasonUserRequested   = "USER_REQUESTED"
	ReasonPaymentDeclined = "PAYMENT_DECLINED"
	ReasonPaymentTimeout  = "PAYMENT_TIMEOUT"

	// The stock reasons (contract §5); when an order's lines fail for
	// several reasons, the first in this order wins.
	ReasonUnknownProduct   = "UNKNOWN_PRODUCT"
	ReasonCurrencyMismatch = "CURRENCY_MISMATCH"
	ReasonOutOfStock       = "OUT_OF_STOCK"
	ReasonStockTimeout     = "STOCK_TIMEOUT"
)

// ErrInvalid marks a message that can never be processed: undecodable, of an
// unknown type or with an invalid payload. Consumers dead-letter it at once.
var ErrInvalid = errors.New("invalid message")

// Statuses of an order (contract §3): the order service moves an order
// through them and the gateway shows and filters by them.
const (
	StatusPendingStock   = "PENDING_STOCK"
	StatusPendingPayment = "PENDING_PAYMENT"
	StatusPaid           = "PAID"
	StatusCancelled      = "CANCELLED"
	StatusFailed         = "FAILED"
)

// OrderStatuses lists every status of an order, for validation.
var OrderStatuses = []string{StatusPendingStock, StatusPendingPayment, StatusPaid, StatusCancelled, StatusFailed}

// SagaFinished reports whether an order with status has reached the saga's
// outcome (contract §3). PAID is one, though a user may still cancel.
func SagaFinished(status string) bool {
	return status == StatusPaid || status == StatusCancelled || status == StatusFailed
}

// Message is one logical message, independent of the transport. ID is stable
// across re-publishes; CorrelationID is the order id of the saga.
type Message struct {
	ID            uuid.UUID
	Type          string
	CorrelationID string
	CausationID   string
	Timestamp     time.Time
	Body          []byte
	// TraceParent and TraceState are the W3C trace context of the span
	// that emitted the message, "" when it was not traced: the message is
	// published as a child of it, so that a saga is one trace.
	TraceParent, TraceState string
}

// NewMessage builds the message carrying payload, of the payload's type,
// with a fresh id.
func NewMessage(payload Payload, correlationID string) (Message, error) {
	return NewMessageWithID(NewID(), payload, correlationID)
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

// NewMessageWithID is NewMessage with a caller-chosen id, for messages
// whose identity must be deterministic (an idempotent command, say).
func NewMessageWithID(id uuid.UUID, payload Payload, correlationID string) (Message, error) {
	typ := payload.MessageType()
	body, err := json.Marshal(payload)
	if err != nil {
		return Message{}, fmt.Errorf("new message %s: %w", typ, err)
	}
	return Message{
		ID:            id,
		Type:          typ,
		CorrelationID: correlationID,
		Timestamp:     time.Now().UTC(),
		Body:          body,
	}, nil
}

// ExchangeOf is the exchange a message of type typ is published to, or "" for
// an unknown type.
func ExchangeOf(typ string) string {
	if k, ok := registry[typ]; ok {
		return k.exchange
	}
	return ""
}

// IsCommand reports whether typ is a command of the contract: a request
// published to a commands exchange (orders.commands, inventory.commands),
// by the gateway, which keeps no outbox. Events are facts, each kept in the
// outbox of the service that emitted it; a command is kept only where it
// was received.
func IsCommand(typ string) bool {
	return strings.HasSuffix(ExchangeOf(typ), ".commands")
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

// Prototype returns a zero payload of message type typ (a pointer to its
// struct), or nil for an unknown type: what tools describing the contract
// (docs/asyncapi.json) read the payload's shape from.
func Prototype(typ string) Payload {
	if k, ok := registry[typ]; ok {
		return k.new()
	}
	return nil
}

// Payload is the body of a message of the contract. Each message type has
// its own payload type, which knows the message type, so a message built
// from a payload cannot be of the wrong type.
type Payload interface {
	MessageType() string
	Validate() error
}

// contract is the one list of the contract's exchanges and, for each, the
// payloads of the messages published to it; everything else (the registry,
// Types, Exchanges) derives from it.
var contract = []struct {
	exchange Exchange
	payloads []func() Payload
}{
	{Exchange{Name: ExchangeOrderCommands, Kind: "direct"}, []func() Payload{
		payload[OrderCreateRequested], payload[OrderCancelRequested],
	}},
	{Exchange{Name: ExchangeOrderEvents, Kind: "topic"}, []func() Payload{
		payload[OrderCreated], payload[OrderCancelled], payload[OrderPaid], payload[OrderFailed],
		payload[OrderItemsPlaced],
	}},
	{Exchange{Name: ExchangePaymentEvents, Kind: "topic"}, []func() Payload{
		payload[PaymentApproved], payload[PaymentDeclined], payload[PaymentFailed],
		payload[PaymentRefunded], payload[PaymentCancelled],
	}},
	{Exchange{Name: ExchangeInventoryCommands, Kind: "direct"}, []func() Payload{
		payload[ProductCreateRequested], payload[StockAdjustRequested],
	}},
	{Exchange{Name: ExchangeInventoryEvents, Kind: "topic"}, []func() Payload{
		payload[StockReserved], payload[StockRejected],
		payload[StockCommitted], payload[StockReleased], payload[StockReturned],
	}},
	{Exchange{Name: ExchangeUserEvents, Kind: "topic"}, []func() Payload{
		payload[UserRegistered],
	}},
	{Exchange{Name: ExchangeInvoiceEvents, Kind: "topic"}, []func() Payload{
		payload[InvoiceIssued], payload[InvoiceCredited],
	}},
}

func payload[T any, P interface {
	*T
	Payload
}]() Payload {
	return P(new(T))
}

type kind struct {
	exchange string
	new      func() Payload
}

var registry = func() map[string]kind {
	r := map[string]kind{}
	for _, e := range contract {
		for _, p := range e.payloads {
			r[p().MessageType()] = kind{e.exchange.Name, p}
		}
	}
	return r
}()

// Types returns every message type of the contract, exchange by exchange.
func Types() []string {
	var types []string
	for _, e := range contract {
		for _, p := range e.payloads {
			types = append(types, p().MessageType())
		}
	}
	return types
}

// Exchanges returns the contract's exchanges.
func Exchanges() []Exchange {
	out := make([]Exchange, len(contract))
	for i, e := range contract {
		out[i] = e.exchange
	}
	return out
}

// OrderPlaced is the content of an order at creation; the create command and
// the order.created event carry it. Total is omitted only from a create
// command with items (the inventory prices those orders).
type OrderPlaced struct {
	OrderID       uuid.UUID `json:"orderId"`
	UserID        uuid.UUID `json:"userId"`
	Total         int64     `json:"total,omitempty"`
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

// OrderCreateRequested is the command to create an order: with a total, or
// with items that the inventory reserves and prices (contract §5), never
// both.
type OrderCreateRequested struct {
	OrderPlaced
	Items []Line `json:"items,omitempty"`
}

// MessageType is order.create.requested.
func (OrderCreateRequested) MessageType() string { return TypeOrderCreateRequested }

// Validate checks the command: exactly one of total and items.
func (c OrderCreateRequested) Validate() error {
	if c.Items == nil {
		return c.OrderPlaced.Validate()
	}
	withItems := c.OrderPlaced
	withItems.Total = 1 // checked below: an order with items has none
	err := withItems.Validate()
	if c.Total != 0 {
		err = errors.Join(err, errors.New("an order has a total or items, never both"))
	}
	return errors.Join(err, ValidateLines(c.Items))
}

// Line is one line of an order with items: a product and how many of it.
type Line struct {
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
}

// Limits of an order's lines (contract §5).
const (
	MaxLines    = 50
	MaxQuantity = 1000
)

var skuShape = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// IsSKU reports whether s has the shape of a product's sku: 1-64
// characters of A-Z a-z 0-9 . _ - (contract §5).
func IsSKU(s string) bool { return skuShape.MatchString(s) }

// ValidateLines checks the lines of an order: 1 to MaxLines, each a valid
// sku with a quantity from 1 to MaxQuantity, no sku twice.
func ValidateLines(lines []Line) error {
	if len(lines) == 0 || len(lines) > MaxLines {
		return fmt.Errorf("items must have 1 to %d lines", MaxLines)
	}
	var errs []error
	seen := make(map[string]bool, len(lines))
	for i, l := range lines {
		if !IsSKU(l.SKU) {
			errs = append(errs, fmt.Errorf("items[%d].sku %q is not a sku", i, l.SKU))
		}
		if l.Quantity < 1 || l.Quantity > MaxQuantity {
			errs = append(errs, fmt.Errorf("items[%d].quantity must be from 1 to %d", i, MaxQuantity))
		}
		if seen[l.SKU] {
			errs = append(errs, fmt.Errorf("items[%d].sku %q is there twice", i, l.SKU))
		}
		seen[l.SKU] = true
	}
	return errors.Join(errs...)
}

// OrderItemsPlaced is the fact that an order with items was placed and
// waits for its stock (order.placed).
type OrderItemsPlaced struct {
	OrderID       uuid.UUID `json:"orderId"`
	UserID        uuid.UUID `json:"userId"`
	Items         []Line    `json:"items"`
	Currency      string    `json:"currency"`
	PaymentMethod string    `json:"paymentMethod"`
}

// MessageType is order.placed.
func (OrderItemsPlaced) MessageType() string { return TypeOrderPlaced }

// Validate checks the event.
func (o OrderItemsPlaced) Validate() error {
	var errs []error
	if o.OrderID == uuid.Nil {
		errs = append(errs, errors.New("orderId is required"))
	}
	if o.UserID == uuid.Nil {
		errs = append(errs, errors.New("userId is required"))
	}
	if !IsCurrencyCode(o.Currency) {
		errs = append(errs, fmt.Errorf("currency %q is not an ISO 4217 code", o.Currency))
	}
	if o.PaymentMethod == "" {
		errs = append(errs, errors.New("paymentMethod is required"))
	}
	return errors.Join(append(errs, ValidateLines(o.Items))...)
}

// OrderCreated is the fact that an order was created and awaits payment.
type OrderCreated struct{ OrderPlaced }

// MessageType is order.created.
func (OrderCreated) MessageType() string { return TypeOrderCreated }

// OrderCancelRequested is the command to cancel an order.
type OrderCancelRequested struct {
	OrderID uuid.UUID `json:"orderId"`
	Reason  string    `json:"reason"`
}

// MessageType is order.cancel.requested.
func (OrderCancelRequested) MessageType() string { return TypeOrderCancelRequested }

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

// OrderCancelled is the fact that an order was cancelled. Its producer
// always sets UserID; a consumer accepts a message without it (from a
// producer older than the field).
type OrderCancelled struct {
	OrderID        uuid.UUID `json:"orderId"`
	Reason         string    `json:"reason"`
	PreviousStatus string    `json:"previousStatus"`
	UserID         uuid.UUID `json:"userId"`
}

// MessageType is order.cancelled.
func (OrderCancelled) MessageType() string { return TypeOrderCancelled }

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

// OrderOutcome is what order.paid and order.failed carry: the order, its
// payment and its user. Its producer always sets UserID; a consumer accepts
// a message without it (from a producer older than the field).
type OrderOutcome struct {
	OrderID   uuid.UUID `json:"orderId"`
	PaymentID uuid.UUID `json:"paymentId"`
	UserID    uuid.UUID `json:"userId"`
}

// Validate checks the event.
func (p OrderOutcome) Validate() error {
	var errs []error
	if p.OrderID == uuid.Nil {
		errs = append(errs, errors.New("orderId is required"))
	}
	if p.PaymentID == uuid.Nil {
		errs = append(errs, errors.New("paymentId is required"))
	}
	return errors.Join(errs...)
}

// OrderPaid is the fact that an order's payment was approved. Beyond the
// outcome it carries what an invoice needs (contract §6: order.paid may be
// extended with these fields): the approved amount, its currency and, for
// an order with items, its lines as they were reserved. The fields are
// additive: a consumer accepts an order.paid without them (from a producer
// older than the fields), and Items is empty for a total-only order.
type OrderPaid struct {
	OrderOutcome
	Total    int64      `json:"total,omitempty"`
	Currency string     `json:"currency,omitempty"`
	Items    []PaidLine `json:"items,omitempty"`
}

// PaidLine is a line of a paid order: what was sold, at the price it was
// reserved at. Name is the product's name at reservation time.
type PaidLine struct {
	SKU       string `json:"sku"`
	Name      string `json:"name,omitempty"`
	Quantity  int64  `json:"quantity"`
	UnitPrice int64  `json:"unitPrice"`
}

// Validate checks the event: the outcome, and the extension's fields where
// present (a total with a currency, lines that are lines).
func (p OrderPaid) Validate() error {
	errs := []error{p.OrderOutcome.Validate()}
	if p.Total < 0 {
		errs = append(errs, errors.New("total must not be negative"))
	}
	if p.Currency != "" && !IsCurrencyCode(p.Currency) {
		errs = append(errs, fmt.Errorf("currency %q is not an ISO 4217 code", p.Currency))
	}
	for i, l := range p.Items {
		if !IsSKU(l.SKU) || l.Quantity <= 0 || l.UnitPrice < 0 {
			errs = append(errs, fmt.Errorf("items[%d] is not a line (sku, quantity > 0, unitPrice >= 0)", i))
		}
	}
	return errors.Join(errs...)
}

// MessageType is order.paid.
func (OrderPaid) MessageType() string { return TypeOrderPaid }

// OrderFailed is the fact that an order's payment failed.
type OrderFailed struct{ OrderOutcome }

// MessageType is order.failed.
func (OrderFailed) MessageType() string { return TypeOrderFailed }

// PaymentOutcome is what every payment.* event carries.
type PaymentOutcome struct {
	PaymentID uuid.UUID `json:"paymentId"`
	OrderID   uuid.UUID `json:"orderId"`
	Amount    int64     `json:"amount"`
	Currency  string    `json:"currency"`
}

// Validate checks the event.
func (p PaymentOutcome) Validate() error {
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
	return errors.Join(errs...)
}

// PaymentRefusal is what payment.declined and payment.failed carry: the
// payment and why it was refused.
type PaymentRefusal struct {
	PaymentOutcome
	Reason string `json:"reason"`
}

// Validate checks the event: a refusal always says why.
func (p PaymentRefusal) Validate() error {
	err := p.PaymentOutcome.Validate()
	if p.Reason == "" {
		err = errors.Join(err, errors.New("reason is required"))
	}
	return err
}

// PaymentApproved is the fact that a payment was charged.
type PaymentApproved struct{ PaymentOutcome }

// MessageType is payment.approved.
func (PaymentApproved) MessageType() string { return TypePaymentApproved }

// PaymentRefunded is the fact that a charged payment was refunded.
type PaymentRefunded struct{ PaymentOutcome }

// MessageType is payment.refunded.
func (PaymentRefunded) MessageType() string { return TypePaymentRefunded }

// PaymentCancelled is the fact that a payment was cancelled uncharged.
type PaymentCancelled struct{ PaymentOutcome }

// MessageType is payment.cancelled.
func (PaymentCancelled) MessageType() string { return TypePaymentCancelled }

// PaymentDeclined is the fact that a payment was declined.
type PaymentDeclined struct{ PaymentRefusal }

// MessageType is payment.declined.
func (PaymentDeclined) MessageType() string { return TypePaymentDeclined }

// PaymentFailed is the fact that a payment could not be made.
type PaymentFailed struct{ PaymentRefusal }

// MessageType is payment.failed.
func (PaymentFailed) MessageType() string { return TypePaymentFailed }

// ProductCreateRequested is the command to create a product (correlated by
// its sku); a second create of the same sku changes nothing.
type ProductCreateRequested struct {
	SKU      string `json:"sku"`
	Name     string `json:"name"`
	Price    int64  `json:"price"`
	Currency string `json:"currency"`
	OnHand   int64  `json:"onHand"`
}

// MessageType is product.create.requested.
func (ProductCreateRequested) MessageType() string { return TypeProductCreateRequested }

// Validate checks the command.
func (p ProductCreateRequested) Validate() error {
	var errs []error
	if !IsSKU(p.SKU) {
		errs = append(errs, fmt.Errorf("sku %q is not a sku", p.SKU))
	}
	if strings.TrimSpace(p.Name) == "" {
		errs = append(errs, errors.New("name is required"))
	}
	if p.Price <= 0 {
		errs = append(errs, errors.New("price must be a positive integer"))
	}
	if !IsCurrencyCode(p.Currency) {
		errs = append(errs, fmt.Errorf("currency %q is not an ISO 4217 code", p.Currency))
	}
	if p.OnHand < 0 {
		errs = append(errs, errors.New("onHand must not be negative"))
	}
	return errors.Join(errs...)
}

// StockAdjustRequested is the command to add delta units to a product's
// stock on hand (or take them away, delta < 0).
type StockAdjustRequested struct {
	AdjustmentID uuid.UUID `json:"adjustmentId"`
	SKU          string    `json:"sku"`
	Delta        int64     `json:"delta"`
}

// MessageType is stock.adjust.requested.
func (StockAdjustRequested) MessageType() string { return TypeStockAdjustRequested }

// Validate checks the command.
func (a StockAdjustRequested) Validate() error {
	var errs []error
	if a.AdjustmentID == uuid.Nil {
		errs = append(errs, errors.New("adjustmentId is required"))
	}
	if !IsSKU(a.SKU) {
		errs = append(errs, fmt.Errorf("sku %q is not a sku", a.SKU))
	}
	if a.Delta == 0 {
		errs = append(errs, errors.New("delta must not be 0"))
	}
	return errors.Join(errs...)
}

// PricedLine is a reserved line with the unit price it was reserved at and
// the product's name then (an additive field: absent from older producers).
type PricedLine struct {
	SKU       string `json:"sku"`
	Name      string `json:"name,omitempty"`
	Quantity  int64  `json:"quantity"`
	UnitPrice int64  `json:"unitPrice"`
}

// StockReserved is the fact that every line of an order was reserved, at
// these prices; Total is their sum.
type StockReserved struct {
	OrderID  uuid.UUID    `json:"orderId"`
	Items    []PricedLine `json:"items"`
	Total    int64        `json:"total"`
	Currency string       `json:"currency"`
}

// MessageType is stock.reserved.
func (StockReserved) MessageType() string { return TypeStockReserved }

// Validate checks the event: the total is the sum of its lines.
func (r StockReserved) Validate() error {
	var errs []error
	if r.OrderID == uuid.Nil {
		errs = append(errs, errors.New("orderId is required"))
	}
	if len(r.Items) == 0 {
		errs = append(errs, errors.New("items are required"))
	}
	var sum int64
	for i, l := range r.Items {
		if !IsSKU(l.SKU) || l.Quantity <= 0 || l.UnitPrice <= 0 {
			errs = append(errs, fmt.Errorf("items[%d] needs a sku, a positive quantity and unitPrice", i))
		}
		sum += l.Quantity * l.UnitPrice
	}
	if r.Total <= 0 || r.Total != sum {
		errs = append(errs, fmt.Errorf("total %d is not the sum of the lines, %d", r.Total, sum))
	}
	if !IsCurrencyCode(r.Currency) {
		errs = append(errs, fmt.Errorf("currency %q is not an ISO 4217 code", r.Currency))
	}
	return errors.Join(errs...)
}

// RejectedLine is a line of a rejected order: what it asked for and what
// was available (0 for an unknown sku).
type RejectedLine struct {
	SKU       string `json:"sku"`
	Requested int64  `json:"requested"`
	Available int64  `json:"available"`
}

// StockRejected is the fact that an order's lines could not all be
// reserved, and why (the first reason of the contract's order).
type StockRejected struct {
	OrderID uuid.UUID      `json:"orderId"`
	Reason  string         `json:"reason"`
	Items   []RejectedLine `json:"items"`
}

// MessageType is stock.rejected.
func (StockRejected) MessageType() string { return TypeStockRejected }

// Validate checks the event.
func (r StockRejected) Validate() error {
	var errs []error
	if r.OrderID == uuid.Nil {
		errs = append(errs, errors.New("orderId is required"))
	}
	if r.Reason == "" {
		errs = append(errs, errors.New("reason is required"))
	}
	return errors.Join(errs...)
}

// UserRegistered is the fact that an account was created (contract §7); its
// correlation id is the user id.
type UserRegistered struct {
	UserID uuid.UUID `json:"userId"`
	Email  string    `json:"email"`
	Name   string    `json:"name"`
}

// MessageType is user.registered.
func (UserRegistered) MessageType() string { return TypeUserRegistered }

// Validate checks the event.
func (u UserRegistered) Validate() error {
	var errs []error
	if u.UserID == uuid.Nil {
		errs = append(errs, errors.New("userId is required"))
	}
	if !strings.Contains(u.Email, "@") {
		errs = append(errs, errors.New("email is required"))
	}
	return errors.Join(errs...)
}

// StockMovement is what stock.committed, stock.released and stock.returned
// carry: the order and the units that moved.
type StockMovement struct {
	OrderID uuid.UUID `json:"orderId"`
	Items   []Line    `json:"items"`
}

// Validate checks the event.
func (m StockMovement) Validate() error {
	if m.OrderID == uuid.Nil {
		return errors.New("orderId is required")
	}
	return nil
}

// StockCommitted is the fact that a paid order's reserved units were sold.
type StockCommitted struct{ StockMovement }

// MessageType is stock.committed.
func (StockCommitted) MessageType() string { return TypeStockCommitted }

// StockReleased is the fact that a held reservation was given back.
type StockReleased struct{ StockMovement }

// MessageType is stock.released.
func (StockReleased) MessageType() string { return TypeStockReleased }

// StockReturned is the fact that a cancelled paid order's units went back
// on hand.
type StockReturned struct{ StockMovement }

// MessageType is stock.returned.
func (StockReturned) MessageType() string { return TypeStockReturned }

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
	for _, k := range []string{"total", "amount", "currency", "paymentMethod", "reason", "previousStatus", "sku", "delta", "onHand"} {
		if v, ok := fields[k]; ok && v != nil && v != "" {
			parts = append(parts, fmt.Sprintf("%s=%v", k, v))
		}
	}
	return strings.Join(parts, " ")
}

// InvoiceIssued is the fact that a paid order's invoice was issued
// (contract §6); its correlation id is the order id.
type InvoiceIssued struct {
	InvoiceID uuid.UUID `json:"invoiceId"`
	Number    string    `json:"number"`
	OrderID   uuid.UUID `json:"orderId"`
	UserID    uuid.UUID `json:"userId"`
	Total     int64     `json:"total"`
	Currency  string    `json:"currency"`
}

// MessageType is invoice.issued.
func (InvoiceIssued) MessageType() string { return TypeInvoiceIssued }

// Validate checks the event.
func (i InvoiceIssued) Validate() error {
	var errs []error
	if i.InvoiceID == uuid.Nil {
		errs = append(errs, errors.New("invoiceId is required"))
	}
	if i.Number == "" {
		errs = append(errs, errors.New("number is required"))
	}
	if i.OrderID == uuid.Nil {
		errs = append(errs, errors.New("orderId is required"))
	}
	if !IsCurrencyCode(i.Currency) {
		errs = append(errs, fmt.Errorf("currency %q is not an ISO 4217 code", i.Currency))
	}
	return errors.Join(errs...)
}

// InvoiceCredited is the fact that an invoiced order was cancelled and its
// invoice credited in full by a credit note (contract §6).
type InvoiceCredited struct {
	InvoiceIssued
	CreditNoteNumber string `json:"creditNoteNumber"`
}

// MessageType is invoice.credited.
func (InvoiceCredited) MessageType() string { return TypeInvoiceCredited }

// Validate checks the event.
func (c InvoiceCredited) Validate() error {
	errs := []error{c.InvoiceIssued.Validate()}
	if c.CreditNoteNumber == "" {
		errs = append(errs, errors.New("creditNoteNumber is required"))
	}
	return errors.Join(errs...)
}
