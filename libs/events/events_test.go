package events_test

import (
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

func TestNewRoundTrips(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	in := events.OrderCancelled{OrderID: id, Reason: events.ReasonPaymentTimeout, PreviousStatus: "PENDING_PAYMENT"}
	m, err := events.New(events.TypeOrderCancelled, id, in)
	require.NoError(t, err)
	assert.Equal(t, id.String(), m.CorrelationID)
	assert.Equal(t, events.ExchangeOrderEvents, events.ExchangeOf(m.Type))
	out, err := events.Decode(m.Type, m.Body)
	require.NoError(t, err)
	assert.Equal(t, &in, out)
	assert.Equal(t, "reason=PAYMENT_TIMEOUT previousStatus=PENDING_PAYMENT", events.Detail(m.Body))

	_, err = events.New("order.shipped", id, in)
	assert.Error(t, err, "only contract types can be built")
}

func TestTopologyBindsEveryPublishedType(t *testing.T) {
	t.Parallel()
	// Publishes are mandatory: every type must reach at least one queue.
	for _, typ := range []string{
		events.TypeOrderCreateRequested, events.TypeOrderCancelRequested,
		events.TypeOrderCreated, events.TypeOrderCancelled, events.TypeOrderPaid, events.TypeOrderFailed,
		events.TypePaymentApproved, events.TypePaymentDeclined, events.TypePaymentFailed,
		events.TypePaymentRefunded, events.TypePaymentCancelled,
	} {
		routed := false
		for _, q := range events.Saga().Queues {
			for _, b := range q.Bindings {
				if b.Exchange == events.ExchangeOf(typ) && matchTopic(b.Key, typ) {
					routed = true
				}
			}
		}
		assert.True(t, routed, "%s reaches a queue", typ)
	}
}

// matchTopic matches the single-word wildcard the topology uses.
func matchTopic(pattern, key string) bool {
	if pattern == key {
		return true
	}
	n := len(pattern)
	return n > 2 && pattern[n-2:] == ".*" && len(key) > n-1 && key[:n-1] == pattern[:n-1] && !contains(key[n-1:], '.')
}

func contains(s string, c byte) bool {
	for i := range len(s) {
		if s[i] == c {
			return true
		}
	}
	return false
}
