package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/saga"
)

// TestCreateOrderWithItemsRejects is contract §5's validation of items.
func TestCreateOrderWithItemsRejects(t *testing.T) {
	t.Parallel()
	h := startGateway(t, closedURL(t), closedURL(t))
	user := newUUID()
	order := func(items string) string { return `{"userId":"` + user + `","items":` + items + `}` }
	lines := func(n int) string {
		l := make([]string, n)
		for i := range l {
			l[i] = fmt.Sprintf(`{"sku":"S-%d","quantity":1}`, i)
		}
		return "[" + strings.Join(l, ",") + "]"
	}
	cases := []struct {
		name   string
		body   string
		status int
		fields []string
	}{
		{"both total and items", `{"userId":"` + user + `","total":5,"items":[{"sku":"A","quantity":1}]}`, 422, []string{"items"}},
		{"neither", `{"userId":"` + user + `"}`, 422, []string{"total"}},
		{"empty list", order(`[]`), 422, []string{"items"}},
		{"51 lines", order(lines(51)), 422, []string{"items"}},
		{"sku with a space", order(`[{"sku":"A","quantity":1},{"sku":"B","quantity":1},{"sku":"a b","quantity":1}]`), 422, []string{"items[2].sku"}},
		{"sku empty", order(`[{"sku":"","quantity":1}]`), 422, []string{"items[0].sku"}},
		{"sku of 65 characters", order(`[{"sku":"` + strings.Repeat("s", 65) + `","quantity":1}]`), 422, []string{"items[0].sku"}},
		{"sku missing", order(`[{"quantity":1}]`), 422, []string{"items[0].sku"}},
		{"quantity missing", order(`[{"sku":"A"}]`), 422, []string{"items[0].quantity"}},
		{"quantity 0", order(`[{"sku":"A","quantity":0}]`), 422, []string{"items[0].quantity"}},
		{"quantity negative", order(`[{"sku":"A","quantity":-1}]`), 422, []string{"items[0].quantity"}},
		{"quantity fractional", order(`[{"sku":"A","quantity":1},{"sku":"B","quantity":1.5}]`), 422, []string{"items[1].quantity"}},
		{"quantity 1001", order(`[{"sku":"A","quantity":1001}]`), 422, []string{"items[0].quantity"}},
		{"the same sku twice names the second", order(`[{"sku":"A","quantity":1},{"sku":"B","quantity":1},{"sku":"A","quantity":2}]`), 422, []string{"items[2].sku"}},
		{"items not an array", order(`{"sku":"A","quantity":1}`), 400, []string{"items"}},
		{"items null", order(`null`), 400, []string{"items"}},
		{"line not an object", order(`["A"]`), 400, []string{"items[0]"}},
		{"sku a number", order(`[{"sku":7,"quantity":1}]`), 400, []string{"items[0].sku"}},
		{"quantity a string", order(`[{"sku":"A","quantity":"1"}]`), 400, []string{"items[0].quantity"}},
		{"unknown field in a line", order(`[{"sku":"A","quantity":1,"price":5}]`), 400, []string{"items[0].price"}},
		{"wrong types win over invalid values", order(`[{"sku":"","quantity":"1"}]`), 400, []string{"items[0].quantity"}},
	}
	t.Run("cases", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				resp, body := do(t, h.URL, request{method: http.MethodPost, path: "/api/orders", body: strings.NewReader(tc.body), headers: jsonHeaders()})
				assertProblem(t, resp, body, tc.status, tc.fields...)
			})
		}
	})
	assert.Zero(t, queueLength(t, h.Broker, saga.QueueOrderCommands), "commands published for rejected requests")
}

func TestCreateOrderWithItemsAccepts(t *testing.T) {
	t.Parallel()
	h := startGateway(t, closedURL(t), closedURL(t))
	user := newUUID()
	body := `{"userId":"` + user + `","items":[{"sku":"MUG.blue_1-x","quantity":1000},{"sku":"B","quantity":2e0}],"currency":"EUR"}`
	resp, raw := do(t, h.URL, request{method: http.MethodPost, path: "/api/orders", body: strings.NewReader(body), headers: jsonHeaders()})
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "%s", raw)
	var a accepted
	require.NoError(t, json.Unmarshal(raw, &a))
	assert.JSONEq(t, fmt.Sprintf(`{"orderId":%q,"status":"PENDING_STOCK","message":"Order creation request accepted"}`, a.OrderID), string(raw))
	assert.Equal(t, "/api/orders/"+a.OrderID, resp.Header.Get("Location"))
	d := nextMessage(t, h.Broker, saga.QueueOrderCommands)
	assert.JSONEq(t, fmt.Sprintf(`{"orderId":%q,"userId":%q,"items":[{"sku":"MUG.blue_1-x","quantity":1000},{"sku":"B","quantity":2}],"currency":"EUR","paymentMethod":"tok_visa"}`,
		a.OrderID, user), string(d.Body), "the command carries the items and no total")
	_, err := events.Decode(d.Type, d.Body)
	require.NoError(t, err, "the command passes the consumer's validation")
}

func TestProductCommands(t *testing.T) {
	t.Parallel()
	h := startGateway(t, closedURL(t), closedURL(t))
	const queue = "inventory-service.commands"
	post := func(path, body string, headers http.Header) (*http.Response, []byte) {
		return do(t, h.URL, request{method: http.MethodPost, path: path, body: strings.NewReader(body), headers: headers})
	}

	t.Run("rejects", func(t *testing.T) {
		for _, tc := range []struct {
			name, path, body string
			status           int
			fields           []string
		}{
			{"product without currency", "/api/products", `{"sku":"A","name":"a","price":1,"onHand":0}`, 422, []string{"currency"}},
			{"product with a bad sku", "/api/products", `{"sku":"a/b","name":"a","price":1,"currency":"USD","onHand":0}`, 422, []string{"sku"}},
			{"product of price 0", "/api/products", `{"sku":"A","name":"a","price":0,"currency":"USD","onHand":0}`, 422, []string{"price"}},
			{"product with negative stock", "/api/products", `{"sku":"A","name":"a","price":1,"currency":"USD","onHand":-1}`, 422, []string{"onHand"}},
			{"product with an empty name", "/api/products", `{"sku":"A","name":" ","price":1,"currency":"USD","onHand":1}`, 422, []string{"name"}},
			{"product with a string price", "/api/products", `{"sku":"A","name":"a","price":"1","currency":"USD","onHand":1}`, 400, []string{"price"}},
			{"product with an unknown field", "/api/products", `{"sku":"A","name":"a","price":1,"currency":"USD","onHand":1,"x":1}`, 400, []string{"x"}},
			{"adjustment of 0", "/api/products/A/stock", `{"delta":0}`, 422, []string{"delta"}},
			{"adjustment of -0", "/api/products/A/stock", `{"delta":-0}`, 422, []string{"delta"}},
			{"fractional adjustment", "/api/products/A/stock", `{"delta":-1.5}`, 422, []string{"delta"}},
			{"adjustment without delta", "/api/products/A/stock", `{}`, 422, []string{"delta"}},
			{"adjustment a string", "/api/products/A/stock", `{"delta":"1"}`, 400, []string{"delta"}},
			{"adjustment of a bad sku", "/api/products/a%20b/stock", `{"delta":1}`, 400, []string{"sku"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, body := post(tc.path, tc.body, jsonHeaders())
				assertProblem(t, resp, body, tc.status, tc.fields...)
			})
		}
		assert.Zero(t, queueLength(t, h.Broker, queue))
	})

	t.Run("create", func(t *testing.T) {
		resp, raw := post("/api/products", `{"sku":"MUG","name":"Mug","price":1200,"currency":"USD","onHand":0}`, jsonHeaders("Idempotency-Key", "k1"))
		require.Equal(t, http.StatusAccepted, resp.StatusCode, "%s", raw)
		assert.Equal(t, "/api/products/MUG", resp.Header.Get("Location"))
		d := nextMessage(t, h.Broker, queue)
		assert.Equal(t, events.TypeProductCreateRequested, d.Type)
		assert.Equal(t, "MUG", d.CorrelationId, "product commands are correlated by sku")
		assert.JSONEq(t, `{"sku":"MUG","name":"Mug","price":1200,"currency":"USD","onHand":0}`, string(d.Body))
		// A replay, even with another body: the same command (the first
		// body wins), answered with the same body.
		resp, replay := post("/api/products", `{"sku":"MUG","name":"Big mug","price":1500,"currency":"USD","onHand":9}`, jsonHeaders("Idempotency-Key", "k1"))
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
		assert.Equal(t, "/api/products/MUG", resp.Header.Get("Location"))
		assert.JSONEq(t, string(raw), string(replay), "a replay's 202 is the first's")
		assert.Equal(t, d.MessageId, nextMessage(t, h.Broker, queue).MessageId, "a replay is the same command")
		// The same key for another sku names another product's create: it
		// is not dropped as a replay while its 202 names the new sku.
		resp, other := post("/api/products", `{"sku":"CUP","name":"Cup","price":800,"currency":"USD","onHand":1}`, jsonHeaders("Idempotency-Key", "k1"))
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
		assert.JSONEq(t, `{"sku":"CUP","message":"Product creation request accepted"}`, string(other))
		assert.Equal(t, "/api/products/CUP", resp.Header.Get("Location"))
		cup := nextMessage(t, h.Broker, queue)
		assert.NotEqual(t, d.MessageId, cup.MessageId, "another sku's create is another command")
		assert.Equal(t, "CUP", cup.CorrelationId)
	})

	t.Run("adjust", func(t *testing.T) {
		var ids []string
		for range 2 {
			resp, raw := post("/api/products/MUG/stock", `{"delta":-3}`, jsonHeaders("Idempotency-Key", "restock-1"))
			require.Equal(t, http.StatusAccepted, resp.StatusCode, "%s", raw)
			var a struct{ AdjustmentID string }
			require.NoError(t, json.Unmarshal(raw, &a))
			_, err := uuid.Parse(a.AdjustmentID)
			require.NoError(t, err)
			assert.JSONEq(t, `{"adjustmentId":"`+a.AdjustmentID+`","sku":"MUG","delta":-3,"message":"Stock adjustment request accepted"}`, string(raw))
			d := nextMessage(t, h.Broker, queue)
			assert.JSONEq(t, `{"adjustmentId":"`+a.AdjustmentID+`","sku":"MUG","delta":-3}`, string(d.Body))
			ids = append(ids, a.AdjustmentID)
		}
		assert.Equal(t, ids[0], ids[1], "the same key names the same adjustment")
	})
}
