package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/web"
)

// Defaults of an order request.
const (
	DefaultCurrency      = "USD"
	DefaultPaymentMethod = "tok_visa"
)

// MaxTotal is the largest total an order may have: contract §2 promises
// any integer > 0, and a total is an int64 end to end. (A client reading
// numbers as doubles, such as JavaScript, reads totals above 2^53 − 1
// inexactly; that is the client's limit, not the contract's.)
const MaxTotal = math.MaxInt64

// idempotencyNamespace is the UUID namespace of order ids derived from an
// Idempotency-Key. Changing it would give a client retrying across the
// change a second order: never do.
var idempotencyNamespace = uuid.MustParse("997b3012-99f1-435f-8089-99fb5677c3fa")

// NewOrder is a validated order request.
type NewOrder struct {
	UserID uuid.UUID
	// Total or Items, never both: an order with items is priced by the
	// inventory (contract §5).
	Total         int64
	Items         []events.Line
	Currency      string
	PaymentMethod string
	// IdempotencyKey, when not empty, makes the order id a function of
	// UserID and the key.
	IdempotencyKey string
}

// IdempotentOrderID is the id of the order that userID creates with
// Idempotency-Key key: the same pair always names the same order.
func IdempotentOrderID(userID uuid.UUID, key string) uuid.UUID {
	return uuid.NewSHA1(idempotencyNamespace, []byte(userID.String()+"\x00"+key))
}

// PlaceOrder publishes the command that creates order o and returns its id
// once the broker confirmed it. The command's message id derives from the
// order id, so a replay is deduplicated by the order service's inbox.
func (g *Gateway) PlaceOrder(ctx context.Context, o NewOrder) (uuid.UUID, error) {
	id := events.NewID()
	if o.IdempotencyKey != "" {
		id = IdempotentOrderID(o.UserID, o.IdempotencyKey)
	}
	msg, err := events.NewMessageWithID(uuid.NewSHA1(id, []byte(events.TypeOrderCreateRequested)),
		events.OrderCreateRequested{OrderPlaced: events.OrderPlaced{
			OrderID:       id,
			UserID:        o.UserID,
			Total:         o.Total,
			Currency:      o.Currency,
			PaymentMethod: o.PaymentMethod,
		}, Items: o.Items}, id.String())
	if err != nil {
		return uuid.Nil, fmt.Errorf("place order %s: %w", id, err)
	}
	if err := g.publish(ctx, msg); err != nil {
		return id, fmt.Errorf("place order %s: %w", id, err)
	}
	return id, nil
}

// CancelOrder publishes the command that cancels order id, unless the order
// is unknown (ErrNotFound) or already cancelled or failed (ErrConflict).
// The order service decides in the end: the state read here may be stale.
func (g *Gateway) CancelOrder(ctx context.Context, id uuid.UUID) error {
	var o struct {
		Status string `json:"status"`
	}
	if err := g.orders.getJSON(ctx, "/api/orders/"+id.String(), &o); err != nil {
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("order %s: %w", id, ErrNotFound)
		}
		return fmt.Errorf("cancel order %s: %w", id, err)
	}
	if o.Status == events.StatusCancelled || o.Status == events.StatusFailed {
		return fmt.Errorf("order %s is already %s: %w", id, o.Status, ErrConflict)
	}
	msg, err := events.NewMessage(events.OrderCancelRequested{OrderID: id, Reason: events.ReasonUserRequested}, id.String())
	if err != nil {
		return fmt.Errorf("cancel order %s: %w", id, err)
	}
	if err := g.publish(ctx, msg); err != nil {
		return fmt.Errorf("cancel order %s: %w", id, err)
	}
	return nil
}

func (g *Gateway) publish(ctx context.Context, msg events.Message) error {
	if err := g.pub.Publish(ctx, msg); err != nil {
		g.commands.WithLabelValues(msg.Type, "failed").Inc()
		return fmt.Errorf("%w: publish %s: %w", ErrUnavailable, msg.Type, err)
	}
	g.commands.WithLabelValues(msg.Type, "confirmed").Inc()
	return nil
}

// Request body validation. Bodies are decoded field by field rather than
// into a struct, to tell a wrong JSON type (400) from an invalid value (422)
// and to reject what encoding/json would silently accept: unknown or
// repeated fields, null for a required field, a float for an integer.

// invalidBody is a body that fails validation: Status is 400 for what is not
// the expected JSON (malformed, unknown field, wrong type), 422 for values
// that are well-formed but invalid.
type invalidBody struct {
	Status int
	Detail string
	Errors []web.FieldError
}

func (e *invalidBody) Error() string { return e.Detail }

// fieldErrors collects the errors of a body by class; a 400 error wins over
// every 422 error.
type fieldErrors struct {
	malformed []web.FieldError // 400
	invalid   []web.FieldError // 422
}

func (f *fieldErrors) wrongType(field, want string) {
	f.malformed = append(f.malformed, web.FieldError{Field: field, Message: "must be " + want})
}

func (f *fieldErrors) bad(field, msg string) {
	f.invalid = append(f.invalid, web.FieldError{Field: field, Message: msg})
}

func (f *fieldErrors) err() error {
	switch {
	case len(f.malformed) > 0:
		return &invalidBody{Status: http.StatusBadRequest, Detail: "the request body has wrong or unknown fields", Errors: f.malformed}
	case len(f.invalid) > 0:
		return &invalidBody{Status: http.StatusUnprocessableEntity, Detail: "the request body has invalid values", Errors: f.invalid}
	}
	return nil
}

// jsonField is one member of a JSON object, in document order.
type jsonField struct {
	name string
	raw  json.RawMessage
}

// decodeObject reads body as exactly one JSON object, returning its members
// in document order. It rejects repeated names.
func decodeObject(body []byte) (map[string]json.RawMessage, []jsonField, error) {
	malformed := func(msg string) error {
		return &invalidBody{Status: http.StatusBadRequest, Detail: "malformed JSON body: " + msg,
			Errors: []web.FieldError{{Field: "body", Message: msg}}}
	}
	if !utf8.Valid(body) {
		return nil, nil, malformed("is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if errors.Is(err, io.EOF) {
		return nil, nil, malformed("must be a JSON object, not empty")
	}
	if err != nil {
		return nil, nil, malformed(syntaxError(err, dec))
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, nil, malformed("must be a JSON object")
	}
	fields := map[string]json.RawMessage{}
	var order []jsonField
	var repeated fieldErrors
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, malformed(syntaxError(err, dec))
		}
		name, _ := tok.(string) // the decoder only yields strings as keys
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, malformed(syntaxError(err, dec))
		}
		if _, dup := fields[name]; dup {
			repeated.malformed = append(repeated.malformed, web.FieldError{Field: name, Message: "must be given once"})
			continue
		}
		fields[name] = raw
		order = append(order, jsonField{name, raw})
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, nil, malformed("unexpected end of input")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, nil, malformed("unexpected data after the JSON object")
	}
	if err := repeated.err(); err != nil {
		return nil, nil, err
	}
	return fields, order, nil
}

// syntaxError says what is wrong with a body dec failed to read, and where.
func syntaxError(err error, dec *json.Decoder) string {
	var syntax *json.SyntaxError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of JSON input"
	case errors.As(err, &syntax):
		return fmt.Sprintf("%s at byte %d", syntax.Error(), syntax.Offset)
	}
	return fmt.Sprintf("%s at byte %d", err.Error(), dec.InputOffset())
}

// jsonKind names the JSON type of a valid raw value.
func jsonKind(raw json.RawMessage) string {
	switch raw[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// unknownFields reports every member not in known.
func unknownFields(order []jsonField, f *fieldErrors, known ...string) {
	for _, m := range order {
		if !slices.Contains(known, m.name) {
			f.malformed = append(f.malformed, web.FieldError{Field: m.name, Message: "is not a known field"})
		}
	}
}

// stringField reads field name as a string. required: absent is a 422 and
// null a wrong type; optional: absent or null is def.
func stringField(fields map[string]json.RawMessage, f *fieldErrors, name string, required bool, def string) (string, bool) {
	raw, ok := fields[name]
	if !ok {
		if required {
			f.bad(name, "is required")
			return "", false
		}
		return def, true
	}
	kind := jsonKind(raw)
	if kind == "null" && !required {
		return def, true
	}
	if kind != "string" {
		f.wrongType(name, "a string, not "+kind)
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		f.wrongType(name, "a string")
		return "", false
	}
	return s, true
}

var paymentMethodShape = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// decodeNewOrder validates the body of POST /api/orders. The error is an
// *invalidBody naming every offending field.
func decodeNewOrder(body []byte) (NewOrder, error) {
	fields, order, err := decodeObject(body)
	if err != nil {
		return NewOrder{}, err
	}
	var f fieldErrors
	var o NewOrder

	if s, ok := stringField(fields, &f, "userId", true, ""); ok {
		id, err := web.ParseUUID(s)
		switch {
		case err != nil:
			f.bad("userId", "must be a UUID")
		case id == uuid.Nil:
			f.bad("userId", "must not be the nil UUID")
		default:
			o.UserID = id
		}
	}

	rawItems, withItems := fields["items"]
	_, withTotal := fields["total"]
	if withItems {
		if withTotal {
			f.bad("items", "an order has a total or items, never both")
		}
		o.Items = decodeItems(rawItems, &f)
	}
	if raw, ok := fields["total"]; !ok {
		if !withItems {
			f.bad("total", "is required, or items")
		}
	} else if kind := jsonKind(raw); kind != "number" {
		f.wrongType("total", "an integer number of minor units, not "+kind)
	} else if n, msg := parseTotal(string(raw)); msg != "" {
		f.bad("total", msg)
	} else {
		o.Total = n
	}

	if s, ok := stringField(fields, &f, "currency", false, DefaultCurrency); ok {
		if IsCurrency(s) && events.IsCurrencyCode(s) {
			o.Currency = s
		} else {
			f.bad("currency", "must be a current ISO 4217 currency code, in upper case, such as USD")
		}
	}

	if s, ok := stringField(fields, &f, "paymentMethod", false, DefaultPaymentMethod); ok {
		if paymentMethodShape.MatchString(s) {
			o.PaymentMethod = s
		} else {
			f.bad("paymentMethod", "must be 1 to 64 characters from A-Z, a-z, 0-9, _ and -")
		}
	}

	unknownFields(order, &f, "userId", "total", "items", "currency", "paymentMethod")
	return o, f.err()
}

// decodeItems validates the items of an order (contract §5): 1 to 50
// lines, each {"sku", "quantity"}, no sku twice. Errors name the line,
// items[i].sku, from 0.
func decodeItems(raw json.RawMessage, f *fieldErrors) []events.Line {
	if kind := jsonKind(raw); kind != "array" {
		f.wrongType("items", "an array of {sku, quantity}, not "+kind)
		return nil
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		f.wrongType("items", "an array of {sku, quantity}")
		return nil
	}
	if len(elems) == 0 || len(elems) > events.MaxLines {
		f.bad("items", fmt.Sprintf("must have 1 to %d lines", events.MaxLines))
	}
	lines := make([]events.Line, 0, len(elems))
	seen := make(map[string]bool, len(elems))
	for i, elem := range elems {
		name := fmt.Sprintf("items[%d]", i)
		if kind := jsonKind(elem); kind != "object" {
			f.wrongType(name, "an object {sku, quantity}, not "+kind)
			continue
		}
		fields, order, err := decodeObject(elem)
		if err != nil {
			f.wrongType(name, "an object {sku, quantity} with each field once")
			continue
		}
		var l events.Line
		var line fieldErrors
		if s, ok := stringField(fields, &line, "sku", true, ""); ok {
			switch {
			case !events.IsSKU(s):
				line.bad("sku", "must be 1 to 64 characters from A-Z, a-z, 0-9, ., _ and -")
			case seen[s]:
				line.bad("sku", "is already on an earlier line: give each sku once")
			default:
				seen[s] = true
				l.SKU = s
			}
		}
		if raw, ok := fields["quantity"]; !ok {
			line.bad("quantity", "is required")
		} else if kind := jsonKind(raw); kind != "number" {
			line.wrongType("quantity", "an integer, not "+kind)
		} else if n, msg := parseTotal(string(raw)); msg != "" || n > events.MaxQuantity {
			line.bad("quantity", fmt.Sprintf("must be an integer from 1 to %d", events.MaxQuantity))
		} else {
			l.Quantity = n
		}
		unknownFields(order, &line, "sku", "quantity")
		for _, e := range line.malformed {
			f.malformed = append(f.malformed, web.FieldError{Field: name + "." + e.Field, Message: e.Message})
		}
		for _, e := range line.invalid {
			f.invalid = append(f.invalid, web.FieldError{Field: name + "." + e.Field, Message: e.Message})
		}
		lines = append(lines, l)
	}
	return lines
}

// decodeStatusChange validates the body of PATCH /api/orders/{id}: the only
// change a client may ask for is {"status": "CANCELLED"}.
func decodeStatusChange(body []byte) error {
	fields, order, err := decodeObject(body)
	if err != nil {
		return err
	}
	var f fieldErrors
	if s, ok := stringField(fields, &f, "status", true, ""); ok && s != events.StatusCancelled {
		f.bad("status", `must be "CANCELLED": cancelling is the only change a client can ask for`)
	}
	unknownFields(order, &f, "status")
	return f.err()
}

// parseTotal reads a JSON number (already known to be valid JSON) as a
// total from 1 to MaxTotal. A number written with a fraction or an exponent is
// accepted when its value is an exact integer (100.0, 1e2). It returns a
// message for an invalid value. It works on the digits, never on a float or
// a big number built from the exponent, so that 1e999999999 costs nothing.
func parseTotal(s string) (int64, string) {
	const positive = "must be greater than 0"
	tooLarge := fmt.Sprintf("must be at most %d", int64(MaxTotal))
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	mantissa, exp := s, ""
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mantissa, exp = s[:i], s[i+1:]
	}
	intPart, frac := mantissa, ""
	if i := strings.IndexByte(mantissa, '.'); i >= 0 {
		intPart, frac = mantissa[:i], mantissa[i+1:]
	}
	digits := strings.TrimLeft(intPart+frac, "0")
	if digits == "" || neg {
		return 0, positive
	}
	// The value is digits × 10^e.
	e := -len(frac)
	if exp != "" {
		expNeg := strings.HasPrefix(exp, "-")
		expDigits := strings.TrimLeft(strings.TrimLeft(exp, "+-"), "0")
		if len(expDigits) > 6 {
			if expNeg {
				return 0, "must be an integer number of minor units, not a fraction"
			}
			return 0, tooLarge
		}
		n, _ := strconv.Atoi("0" + expDigits)
		if expNeg {
			n = -n
		}
		e += n
	}
	trimmed := strings.TrimRight(digits, "0")
	e += len(digits) - len(trimmed)
	digits = trimmed
	if e < 0 {
		return 0, "must be an integer number of minor units, not a fraction"
	}
	if len(digits)+e > 19 {
		return 0, tooLarge
	}
	n, err := strconv.ParseInt(digits+strings.Repeat("0", e), 10, 64)
	if err != nil || n > MaxTotal {
		return 0, tooLarge
	}
	return n, ""
}
