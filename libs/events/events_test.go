package events_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/events"
)

func TestDecode(t *testing.T) {
	t.Parallel()
	order, user, payment := uuid.NewString(), uuid.NewString(), uuid.NewString()
	cases := []struct {
		name    string
		typ     string
		body    string
		wantErr string
	}{
		{"create command", events.TypeOrderCreateRequested,
			`{"orderId":"` + order + `","userId":"` + user + `","total":100,"currency":"EUR","paymentMethod":"tok_visa"}`, ""},
		{"unknown fields are ignored (forward compatible)", events.TypeOrderCreated,
			`{"orderId":"` + order + `","userId":"` + user + `","total":100,"currency":"EUR","paymentMethod":"tok_visa","coupon":"X"}`, ""},
		{"cancel command", events.TypeOrderCancelRequested, `{"orderId":"` + order + `","reason":"USER_REQUESTED"}`, ""},
		{"cancelled", events.TypeOrderCancelled, `{"orderId":"` + order + `","reason":"USER_REQUESTED","previousStatus":"PAID"}`, ""},
		{"paid", events.TypeOrderPaid, `{"orderId":"` + order + `","paymentId":"` + payment + `"}`, ""},
		{"approved", events.TypePaymentApproved, `{"paymentId":"` + payment + `","orderId":"` + order + `","amount":5,"currency":"USD"}`, ""},
		{"declined", events.TypePaymentDeclined, `{"paymentId":"` + payment + `","orderId":"` + order + `","amount":5,"currency":"USD","reason":"CARD_DECLINED"}`, ""},

		{"unknown type", "order.shipped", `{}`, "unknown message type"},
		{"not JSON", events.TypeOrderCreated, `not json`, "body"},
		{"JSON but not an object", events.TypeOrderCreated, `[1]`, "body"},
		{"bad uuid", events.TypeOrderPaid, `{"orderId":"nope","paymentId":"` + payment + `"}`, "body"},
		{"wrong type", events.TypeOrderCreated, `{"orderId":"` + order + `","userId":"` + user + `","total":"100","currency":"EUR","paymentMethod":"x"}`, "body"},
		{"fractional total", events.TypeOrderCreated, `{"orderId":"` + order + `","userId":"` + user + `","total":1.5,"currency":"EUR","paymentMethod":"x"}`, "body"},
		{"missing order id", events.TypeOrderCreated, `{"userId":"` + user + `","total":100,"currency":"EUR","paymentMethod":"x"}`, "orderId is required"},
		{"non-positive total", events.TypeOrderCreated, `{"orderId":"` + order + `","userId":"` + user + `","total":0,"currency":"EUR","paymentMethod":"x"}`, "total must be"},
		{"bad currency", events.TypeOrderCreated, `{"orderId":"` + order + `","userId":"` + user + `","total":1,"currency":"EURO","paymentMethod":"x"}`, "ISO 4217"},
		{"declined without reason", events.TypePaymentDeclined, `{"paymentId":"` + payment + `","orderId":"` + order + `","amount":5,"currency":"USD"}`, "reason is required"},
		{"cancelled without previous status", events.TypeOrderCancelled, `{"orderId":"` + order + `","reason":"X"}`, "previousStatus is required"},

		{"create command with items", events.TypeOrderCreateRequested,
			`{"orderId":"` + order + `","userId":"` + user + `","items":[{"sku":"A","quantity":2},{"sku":"b.1_-","quantity":1000}],"currency":"EUR","paymentMethod":"tok_visa"}`, ""},
		{"create command with a total and items", events.TypeOrderCreateRequested,
			`{"orderId":"` + order + `","userId":"` + user + `","total":5,"items":[{"sku":"A","quantity":2}],"currency":"EUR","paymentMethod":"tok_visa"}`, "never both"},
		{"create command with neither", events.TypeOrderCreateRequested,
			`{"orderId":"` + order + `","userId":"` + user + `","currency":"EUR","paymentMethod":"tok_visa"}`, "total must be"},
		{"create command with an empty list", events.TypeOrderCreateRequested,
			`{"orderId":"` + order + `","userId":"` + user + `","items":[],"currency":"EUR","paymentMethod":"tok_visa"}`, "1 to 50 lines"},
		{"placed with a bad sku", events.TypeOrderPlaced,
			`{"orderId":"` + order + `","userId":"` + user + `","items":[{"sku":"a b","quantity":2}],"currency":"EUR","paymentMethod":"tok_visa"}`, "items[0].sku"},
		{"placed with a sku twice", events.TypeOrderPlaced,
			`{"orderId":"` + order + `","userId":"` + user + `","items":[{"sku":"A","quantity":2},{"sku":"A","quantity":1}],"currency":"EUR","paymentMethod":"tok_visa"}`, "items[1].sku"},
		{"placed with too many units", events.TypeOrderPlaced,
			`{"orderId":"` + order + `","userId":"` + user + `","items":[{"sku":"A","quantity":1001}],"currency":"EUR","paymentMethod":"tok_visa"}`, "items[0].quantity"},
		{"reserved with a wrong total", events.TypeStockReserved,
			`{"orderId":"` + order + `","items":[{"sku":"A","quantity":2,"unitPrice":150}],"total":301,"currency":"EUR"}`, "not the sum"},
		{"reserved", events.TypeStockReserved,
			`{"orderId":"` + order + `","items":[{"sku":"A","quantity":2,"unitPrice":150}],"total":300,"currency":"EUR"}`, ""},
		{"rejected", events.TypeStockRejected,
			`{"orderId":"` + order + `","reason":"OUT_OF_STOCK","items":[{"sku":"A","requested":2,"available":1}]}`, ""},
		{"adjustment of 0", events.TypeStockAdjustRequested, `{"adjustmentId":"` + payment + `","sku":"A","delta":0}`, "delta must not be 0"},
		{"product with a negative stock", events.TypeProductCreateRequested,
			`{"sku":"A","name":"a","price":100,"currency":"USD","onHand":-1}`, "onHand must not be negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := events.Decode(tc.typ, []byte(tc.body))
			if tc.wantErr == "" {
				require.NoError(t, err)
				assert.NotNil(t, p)
				return
			}
			require.ErrorIs(t, err, events.ErrInvalid, "every decoding failure is permanent")
			assert.Contains(t, err.Error(), tc.wantErr)
		})
	}
}

func TestNewMessageRoundTrips(t *testing.T) {
	t.Parallel()
	id, user := uuid.New(), uuid.New()
	in := events.OrderCancelled{OrderID: id, Reason: events.ReasonPaymentTimeout, PreviousStatus: "PENDING_PAYMENT", UserID: user}
	m, err := events.NewMessage(in, id.String())
	require.NoError(t, err)
	assert.Equal(t, events.TypeOrderCancelled, m.Type, "the payload names the type")
	assert.Equal(t, id.String(), m.CorrelationID)
	assert.Equal(t, events.ExchangeOrderEvents, events.ExchangeOf(m.Type))
	out, err := events.Decode(m.Type, m.Body)
	require.NoError(t, err)
	assert.Equal(t, &in, out)
	assert.Equal(t, "reason=PAYMENT_TIMEOUT previousStatus=PENDING_PAYMENT", events.Detail(m.Body))
}

// TestEveryTypeHasItsOwnPayload walks the contract's one list: each type
// decodes to a payload of its own Go type that names it, on a known
// exchange, and an empty body is invalid for every one of them.
func TestEveryTypeHasItsOwnPayload(t *testing.T) {
	t.Parallel()
	types := events.Types()
	require.Len(t, types, 22, "contract §4 has eleven message types, §5 eight more, §6 two, §7 one")
	goTypes := map[string]string{}
	for _, typ := range types {
		t.Run(typ, func(t *testing.T) {
			assert.True(t, events.Known(typ))
			assert.NotEmpty(t, events.ExchangeOf(typ), "published to an exchange")
			_, err := events.Decode(typ, []byte(`{}`))
			require.ErrorIs(t, err, events.ErrInvalid, "an empty body is invalid")
		})
		items := `"items":[{"sku":"A-1","quantity":1,"unitPrice":1}],`
		if typ == events.TypeOrderCreateRequested {
			items = "" // a total or items, never both
		}
		p, err := events.Decode(typ, []byte(`{"orderId":"`+uuid.NewString()+`","paymentId":"`+uuid.NewString()+
			`","userId":"`+uuid.NewString()+`","total":1,"amount":1,"currency":"USD","paymentMethod":"x","reason":"X","previousStatus":"PAID",`+
			items+`"sku":"A-1","name":"A","price":1,"onHand":0,"adjustmentId":"`+uuid.NewString()+`","delta":-1,"email":"a@example.com",`+
			`"invoiceId":"`+uuid.NewString()+`","number":"INV-2026-000001","creditNoteNumber":"CN-2026-000001"}`))
		require.NoError(t, err, typ)
		assert.Equal(t, typ, p.MessageType(), "the payload of %s names its type", typ)
		goType := fmt.Sprintf("%T", p)
		assert.NotContains(t, goTypes, goType, "%s shares its payload type with %s", typ, goTypes[goType])
		goTypes[goType] = typ
	}
	var exchanges []string
	for _, e := range events.Exchanges() {
		exchanges = append(exchanges, e.Name)
	}
	assert.Equal(t, []string{events.ExchangeOrderCommands, events.ExchangeOrderEvents, events.ExchangePaymentEvents,
		events.ExchangeInventoryCommands, events.ExchangeInventoryEvents, events.ExchangeUserEvents,
		events.ExchangeInvoiceEvents}, exchanges)
}

func TestOrderOutcomesAcceptAMissingUserID(t *testing.T) {
	t.Parallel()
	order, payment := uuid.NewString(), uuid.NewString()
	for _, tc := range []struct{ name, typ, body string }{
		{"paid", events.TypeOrderPaid, `{"orderId":"` + order + `","paymentId":"` + payment + `"}`},
		{"failed", events.TypeOrderFailed, `{"orderId":"` + order + `","paymentId":"` + payment + `"}`},
		{"cancelled", events.TypeOrderCancelled, `{"orderId":"` + order + `","reason":"X","previousStatus":"PAID"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := events.Decode(tc.typ, []byte(tc.body))
			assert.NoError(t, err, "a producer older than userId is still understood")
		})
	}
}

func TestSagaFinished(t *testing.T) {
	t.Parallel()
	for _, status := range events.OrderStatuses {
		t.Run(status, func(t *testing.T) {
			waiting := status == events.StatusPendingPayment || status == events.StatusPendingStock
			assert.Equal(t, !waiting, events.SagaFinished(status), "every status but the two pending ones is an outcome")
		})
	}
	assert.False(t, events.SagaFinished("SHIPPED"), "an unknown status is no outcome")
}

// TestIsCommand: the commands are the requests, published to the commands
// exchanges; every other type is an event, and an unknown type neither.
func TestIsCommand(t *testing.T) {
	t.Parallel()
	var commands []string
	for _, typ := range events.Types() {
		if events.IsCommand(typ) {
			commands = append(commands, typ)
		}
		assert.Equal(t, strings.HasSuffix(typ, ".requested"), events.IsCommand(typ), "%s: a command is a request", typ)
	}
	assert.ElementsMatch(t, []string{events.TypeOrderCreateRequested, events.TypeOrderCancelRequested,
		events.TypeProductCreateRequested, events.TypeStockAdjustRequested}, commands)
	assert.False(t, events.IsCommand("order.shipped.requested"), "not a type of the contract")
}

// TestOrderPaidExtension: order.paid's invoice fields are additive — an
// order.paid of the original shape still decodes, and the new fields are
// checked where present.
func TestOrderPaidExtension(t *testing.T) {
	t.Parallel()
	order, payment := uuid.New(), uuid.New()
	old := fmt.Sprintf(`{"orderId":%q,"paymentId":%q,"userId":%q}`, order, payment, uuid.New())
	p, err := events.Decode(events.TypeOrderPaid, []byte(old))
	require.NoError(t, err, "an order.paid without the extension is valid")
	assert.Empty(t, p.(*events.OrderPaid).Items)

	full := fmt.Sprintf(`{"orderId":%q,"paymentId":%q,"total":1234,"currency":"JPY","items":[{"sku":"A-1","name":"A","quantity":2,"unitPrice":617}]}`, order, payment)
	p, err = events.Decode(events.TypeOrderPaid, []byte(full))
	require.NoError(t, err)
	paid := p.(*events.OrderPaid)
	assert.Equal(t, int64(1234), paid.Total)
	assert.Equal(t, "A", paid.Items[0].Name)

	bad := fmt.Sprintf(`{"orderId":%q,"paymentId":%q,"currency":"XX","items":[{"sku":"","quantity":0,"unitPrice":1}]}`, order, payment)
	_, err = events.Decode(events.TypeOrderPaid, []byte(bad))
	require.ErrorIs(t, err, events.ErrInvalid)
	assert.ErrorContains(t, err, "currency")
	assert.ErrorContains(t, err, "items[0]")
}
