package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/saga"

	"github.com/ordersaga/ordersaga/apps/gateway/internal/gateway"
)

func newUUID() string { return uuid.NewString() }

// chunked hides the length of body, so that the client sends it chunked and
// only reading tells how large it is.
type chunked struct{ r io.Reader }

func (c chunked) Read(p []byte) (int, error) { return c.r.Read(p) }

func TestCreateOrderRejects(t *testing.T) {
	t.Parallel()
	h := startGateway(t, closedURL(t), closedURL(t))
	user := newUUID()
	valid := `{"userId":"` + user + `","total":100}`
	huge := `{"userId":"` + user + `","total":100,"pad":"` + strings.Repeat("x", 70_000) + `"}`

	cases := []struct {
		name    string
		headers http.Header
		body    io.Reader
		status  int
		fields  []string
	}{
		// 413 before anything else.
		{"Content-Length over 64 KiB", jsonHeaders(), strings.NewReader(huge), 413, nil},
		{"chunked body over 64 KiB", jsonHeaders(), chunked{strings.NewReader(huge)}, 413, nil},
		{"too large wins over media type", http.Header{"Content-Type": {"text/plain"}}, strings.NewReader(huge), 413, nil},
		{"too large wins over idempotency key", jsonHeaders("Idempotency-Key", ""), strings.NewReader(huge), 413, nil},

		// 415.
		{"no Content-Type", nil, strings.NewReader(valid), 415, nil},
		{"text/plain", http.Header{"Content-Type": {"text/plain"}}, strings.NewReader(valid), 415, nil},
		{"form", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, strings.NewReader(valid), 415, nil},
		{"json suffix type", http.Header{"Content-Type": {"application/merge-patch+json"}}, strings.NewReader(valid), 415, nil},
		{"malformed media type", http.Header{"Content-Type": {"application/json; charset"}}, strings.NewReader(valid), 415, nil},
		{"JSON in another charset", http.Header{"Content-Type": {"application/json; charset=iso-8859-1"}}, strings.NewReader(valid), 415, nil},
		{"media type wins over idempotency key", http.Header{"Content-Type": {"text/plain"}, "Idempotency-Key": {""}}, strings.NewReader(valid), 415, nil},

		// Idempotency-Key.
		{"empty key", jsonHeaders("Idempotency-Key", ""), strings.NewReader(valid), 400, []string{"Idempotency-Key"}},
		{"key of 256 characters", jsonHeaders("Idempotency-Key", strings.Repeat("k", 256)), strings.NewReader(valid), 400, []string{"Idempotency-Key"}},
		{"key with a space", jsonHeaders("Idempotency-Key", "a b"), strings.NewReader(valid), 400, []string{"Idempotency-Key"}},
		{"key with non-ASCII", jsonHeaders("Idempotency-Key", "clé"), strings.NewReader(valid), 400, []string{"Idempotency-Key"}},
		{"key with a tab", jsonHeaders("Idempotency-Key", "a\tb"), strings.NewReader(valid), 400, []string{"Idempotency-Key"}},
		{"key given twice", jsonHeaders("Idempotency-Key", "a", "Idempotency-Key", "b"), strings.NewReader(valid), 400, []string{"Idempotency-Key"}},
		{"key wins over body errors", jsonHeaders("Idempotency-Key", ""), strings.NewReader(`{"x":1}`), 400, []string{"Idempotency-Key"}},

		// Not one JSON object.
		{"empty body", jsonHeaders(), strings.NewReader(""), 400, []string{"body"}},
		{"truncated JSON", jsonHeaders(), strings.NewReader(`{"userId":`), 400, []string{"body"}},
		{"unterminated object", jsonHeaders(), strings.NewReader(`{"total":1`), 400, []string{"body"}},
		{"syntax error", jsonHeaders(), strings.NewReader(`{"total":1,}`), 400, []string{"body"}},
		{"array", jsonHeaders(), strings.NewReader(`[` + valid + `]`), 400, []string{"body"}},
		{"null", jsonHeaders(), strings.NewReader(`null`), 400, []string{"body"}},
		{"string", jsonHeaders(), strings.NewReader(`"order"`), 400, []string{"body"}},
		{"two objects", jsonHeaders(), strings.NewReader(valid + valid), 400, []string{"body"}},
		{"trailing garbage", jsonHeaders(), strings.NewReader(valid + ` x`), 400, []string{"body"}},
		{"invalid UTF-8 in a string", jsonHeaders(), strings.NewReader(`{"userId":"` + user + `","total":1,"paymentMethod":"tok_` + "\xff" + `"}`), 400, []string{"body"}},
		{"invalid UTF-8 in a name", jsonHeaders(), strings.NewReader(`{"userId":"` + user + `","total":1,"` + "\xc3" + `":1}`), 400, []string{"body"}},

		// Unknown and repeated fields, wrong types: 400.
		{"unknown field", jsonHeaders(), strings.NewReader(`{"userId":"` + user + `","total":1,"discount":5}`), 400, []string{"discount"}},
		{"field name in other case", jsonHeaders(), strings.NewReader(`{"userid":"` + user + `","total":1}`), 400, []string{"userid"}},
		{"repeated field", jsonHeaders(), strings.NewReader(`{"userId":"` + user + `","total":1,"total":2}`), 400, []string{"total"}},
		{"userId null", jsonHeaders(), strings.NewReader(`{"userId":null,"total":1}`), 400, []string{"userId"}},
		{"userId number", jsonHeaders(), strings.NewReader(`{"userId":42,"total":1}`), 400, []string{"userId"}},
		{"userId object", jsonHeaders(), strings.NewReader(`{"userId":{},"total":1}`), 400, []string{"userId"}},
		{"total string", jsonHeaders(), strings.NewReader(`{"userId":"` + user + `","total":"100"}`), 400, []string{"total"}},
		{"total null after blanks", jsonHeaders(), strings.NewReader(`{"userId":"` + user + `","total" :  null }`), 400, []string{"total"}},
		{"total null", jsonHeaders(), strings.NewReader(`{"userId":"` + user + `","total":null}`), 400, []string{"total"}},
		{"total bool", jsonHeaders(), strings.NewReader(`{"userId":"` + user + `","total":true}`), 400, []string{"total"}},
		{"total array", jsonHeaders(), strings.NewReader(`{"userId":"` + user + `","total":[1]}`), 400, []string{"total"}},
		{"currency number", jsonHeaders(), strings.NewReader(`{"userId":"` + user + `","total":1,"currency":840}`), 400, []string{"currency"}},
		{"paymentMethod bool", jsonHeaders(), strings.NewReader(`{"userId":"` + user + `","total":1,"paymentMethod":false}`), 400, []string{"paymentMethod"}},
		{"every wrong type at once", jsonHeaders(), strings.NewReader(`{"userId":1,"total":"1","currency":[],"paymentMethod":{},"x":0}`), 400,
			[]string{"userId", "total", "currency", "paymentMethod", "x"}},
		{"wrong types win over invalid values", jsonHeaders(), strings.NewReader(`{"userId":1,"total":0,"currency":"usd"}`), 400, []string{"userId"}},

		// Invalid values: 422.
		{"nothing", jsonHeaders(), strings.NewReader(`{}`), 422, []string{"userId", "total"}},
		{"userId missing", jsonHeaders(), strings.NewReader(`{"total":1}`), 422, []string{"userId"}},
		{"userId not a UUID", jsonHeaders(), strings.NewReader(`{"userId":"nope","total":1}`), 422, []string{"userId"}},
		{"userId without hyphens", jsonHeaders(), strings.NewReader(`{"userId":"` + strings.ReplaceAll(user, "-", "") + `","total":1}`), 422, []string{"userId"}},
		{"userId in braces", jsonHeaders(), strings.NewReader(`{"userId":"{` + user + `}","total":1}`), 422, []string{"userId"}},
		{"userId as URN", jsonHeaders(), strings.NewReader(`{"userId":"urn:uuid:` + user + `","total":1}`), 422, []string{"userId"}},
		{"userId nil UUID", jsonHeaders(), strings.NewReader(`{"userId":"00000000-0000-0000-0000-000000000000","total":1}`), 422, []string{"userId"}},
		{"total missing", jsonHeaders(), strings.NewReader(`{"userId":"` + user + `"}`), 422, []string{"total"}},
		{"total fractional", jsonHeaders(), strings.NewReader(`{"userId":"` + user + `","total":10.5}`), 422, []string{"total"}},
		{"total fractional by exponent", jsonHeaders(), strings.NewReader(`{"userId":"` + user + `","total":15e-1}`), 422, []string{"total"}},
		{"total tiny", jsonHeaders(), strings.NewReader(`{"userId":"` + user + `","total":1e-999999999999}`), 422, []string{"total"}},
		{"total zero", jsonHeaders(), strings.NewReader(`{"userId":"` + user + `","total":0}`), 422, []string{"total"}},
		{"total zero as float", jsonHeaders(), strings.NewReader(`{"userId":"` + user + `","total":0.0}`), 422, []string{"total"}},
		{"total negative", jsonHeaders(), strings.NewReader(`{"userId":"` + user + `","total":-5}`), 422, []string{"total"}},
		{"total over int64", jsonHeaders(), strings.NewReader(`{"userId":"` + user + `","total":9223372036854775808}`), 422, []string{"total"}},
		{"total huge by exponent", jsonHeaders(), strings.NewReader(`{"userId":"` + user + `","total":1e30}`), 422, []string{"total"}},
		{"total enormous by exponent", jsonHeaders(), strings.NewReader(`{"userId":"` + user + `","total":1e999999999999}`), 422, []string{"total"}},
		{"currency lower case", jsonHeaders(), strings.NewReader(`{"userId":"` + user + `","total":1,"currency":"usd"}`), 422, []string{"currency"}},
		{"currency unknown", jsonHeaders(), strings.NewReader(`{"userId":"` + user + `","total":1,"currency":"ABC"}`), 422, []string{"currency"}},
		{"currency empty", jsonHeaders(), strings.NewReader(`{"userId":"` + user + `","total":1,"currency":""}`), 422, []string{"currency"}},
		{"currency too long", jsonHeaders(), strings.NewReader(`{"userId":"` + user + `","total":1,"currency":"EURO"}`), 422, []string{"currency"}},
		{"currency too short", jsonHeaders(), strings.NewReader(`{"userId":"` + user + `","total":1,"currency":"US"}`), 422, []string{"currency"}},
		{"currency withdrawn", jsonHeaders(), strings.NewReader(`{"userId":"` + user + `","total":1,"currency":"DEM"}`), 422, []string{"currency"}},
		{"currency not ISO 4217", jsonHeaders(), strings.NewReader(`{"userId":"` + user + `","total":1,"currency":"CNH"}`), 422, []string{"currency"}},
		{"paymentMethod empty", jsonHeaders(), strings.NewReader(`{"userId":"` + user + `","total":1,"paymentMethod":""}`), 422, []string{"paymentMethod"}},
		{"paymentMethod too long", jsonHeaders(), strings.NewReader(`{"userId":"` + user + `","total":1,"paymentMethod":"` + strings.Repeat("t", 65) + `"}`), 422, []string{"paymentMethod"}},
		{"paymentMethod with a space", jsonHeaders(), strings.NewReader(`{"userId":"` + user + `","total":1,"paymentMethod":"tok visa"}`), 422, []string{"paymentMethod"}},
		{"every invalid value at once", jsonHeaders(), strings.NewReader(`{"userId":"x","total":0,"currency":"x","paymentMethod":"!"}`), 422,
			[]string{"userId", "total", "currency", "paymentMethod"}},
	}
	// The group returns once its parallel cases are done.
	t.Run("cases", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				resp, body := do(t, h.URL, request{method: http.MethodPost, path: "/api/orders", body: tc.body, headers: tc.headers})
				assertProblem(t, resp, body, tc.status, tc.fields...)
				assert.Empty(t, resp.Header.Get("Location"), "no Location on a rejection")
			})
		}
	})
	assert.Zero(t, queueLength(t, h.Broker, saga.QueueOrderCommands), "commands published for rejected requests")
}

// accepted is the body of a 202 to POST /api/orders.
type accepted struct {
	OrderID string `json:"orderId"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

// postOrder posts body and requires a 202, checking its headers and body.
func postOrder(t testing.TB, h *harness, body string, headers http.Header) accepted {
	t.Helper()
	resp, raw := do(t, h.URL, request{method: http.MethodPost, path: "/api/orders", body: strings.NewReader(body), headers: headers})
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "POST /api/orders: %s", raw)
	assert.Equal(t, "application/json; charset=utf-8", resp.Header.Get("Content-Type"))
	var a accepted
	require.NoError(t, json.Unmarshal(raw, &a))
	id, err := uuid.Parse(a.OrderID)
	require.NoError(t, err, "orderId is a UUID")
	assert.Equal(t, id.String(), a.OrderID, "orderId is canonical")
	assert.JSONEq(t, fmt.Sprintf(`{"orderId":%q,"status":"PENDING_PAYMENT","message":"Order creation request accepted"}`, a.OrderID), string(raw))
	assert.Equal(t, "/api/orders/"+a.OrderID, resp.Header.Get("Location"))
	return a
}

func TestCreateOrderAccepts(t *testing.T) {
	t.Parallel()
	h := startGateway(t, closedURL(t), closedURL(t))
	user := newUUID()
	type placed struct {
		OrderID       string `json:"orderId"`
		UserID        string `json:"userId"`
		Total         int64  `json:"total"`
		Currency      string `json:"currency"`
		PaymentMethod string `json:"paymentMethod"`
	}
	// exactly64KiB pads a valid body with blanks to the largest size allowed.
	exactly64KiB := func(body string) string { return body + strings.Repeat(" ", gateway.MaxBodyBytes-len(body)) }

	cases := []struct {
		name    string
		headers http.Header
		body    string
		want    placed // OrderID is filled in
	}{
		{"defaults", jsonHeaders(), `{"userId":"` + user + `","total":4200}`, placed{UserID: user, Total: 4200, Currency: "USD", PaymentMethod: "tok_visa"}},
		{"every field", jsonHeaders(), `{"userId":"` + user + `","total":1,"currency":"EUR","paymentMethod":"tok_decline"}`, placed{UserID: user, Total: 1, Currency: "EUR", PaymentMethod: "tok_decline"}},
		{"null optionals take defaults", jsonHeaders(), `{"userId":"` + user + `","total":7,"currency":null,"paymentMethod":null}`, placed{UserID: user, Total: 7, Currency: "USD", PaymentMethod: "tok_visa"}},
		{"upper-case userId", jsonHeaders(), `{"userId":"` + strings.ToUpper(user) + `","total":7}`, placed{UserID: user, Total: 7, Currency: "USD", PaymentMethod: "tok_visa"}},
		{"total with exponent", jsonHeaders(), `{"userId":"` + user + `","total":1e2}`, placed{UserID: user, Total: 100, Currency: "USD", PaymentMethod: "tok_visa"}},
		{"total with fraction and exponent", jsonHeaders(), `{"userId":"` + user + `","total":1.5E+2}`, placed{UserID: user, Total: 150, Currency: "USD", PaymentMethod: "tok_visa"}},
		{"total with zero fraction", jsonHeaders(), `{"userId":"` + user + `","total":100.00}`, placed{UserID: user, Total: 100, Currency: "USD", PaymentMethod: "tok_visa"}},
		{"total with negative exponent", jsonHeaders(), `{"userId":"` + user + `","total":2500e-2}`, placed{UserID: user, Total: 25, Currency: "USD", PaymentMethod: "tok_visa"}},
		{"largest total", jsonHeaders(), `{"userId":"` + user + `","total":9223372036854775807}`, placed{UserID: user, Total: 9223372036854775807, Currency: "USD", PaymentMethod: "tok_visa"}},
		{"total over 2^53", jsonHeaders(), `{"userId":"` + user + `","total":9007199254740993}`, placed{UserID: user, Total: 9007199254740993, Currency: "USD", PaymentMethod: "tok_visa"}},
		{"currency without minor unit", jsonHeaders(), `{"userId":"` + user + `","total":5,"currency":"XAU"}`, placed{UserID: user, Total: 5, Currency: "XAU", PaymentMethod: "tok_visa"}},
		{"charset parameter", http.Header{"Content-Type": {"Application/JSON; charset=utf-8"}}, `{"userId":"` + user + `","total":3}`, placed{UserID: user, Total: 3, Currency: "USD", PaymentMethod: "tok_visa"}},
		{"charset in upper case", http.Header{"Content-Type": {"application/json;charset=UTF-8"}}, `{"userId":"` + user + `","total":3}`, placed{UserID: user, Total: 3, Currency: "USD", PaymentMethod: "tok_visa"}},
		{"currency of zero-decimal minor unit", jsonHeaders(), `{"userId":"` + user + `","total":500,"currency":"JPY"}`, placed{UserID: user, Total: 500, Currency: "JPY", PaymentMethod: "tok_visa"}},
		{"body of exactly 64 KiB", jsonHeaders(), exactly64KiB(`{"userId":"` + user + `","total":5}`), placed{UserID: user, Total: 5, Currency: "USD", PaymentMethod: "tok_visa"}},
		{"longest payment method", jsonHeaders(), `{"userId":"` + user + `","total":5,"paymentMethod":"` + strings.Repeat("a_-9", 16) + `"}`, placed{UserID: user, Total: 5, Currency: "USD", PaymentMethod: strings.Repeat("a_-9", 16)}},
		{"longest idempotency key", jsonHeaders("Idempotency-Key", strings.Repeat("~", 255)), `{"userId":"` + user + `","total":6}`, placed{UserID: user, Total: 6, Currency: "USD", PaymentMethod: "tok_visa"}},
		{"whitespace everywhere", jsonHeaders(), "{ \"userId\" :\t\"" + user + "\" ,\n \"total\" :  1e2 , \"currency\" : null }", placed{UserID: user, Total: 100, Currency: "USD", PaymentMethod: "tok_visa"}},
		{"whitespace around the object", jsonHeaders(), "\n\t {\"userId\":\"" + user + "\",\"total\":8} \r\n", placed{UserID: user, Total: 8, Currency: "USD", PaymentMethod: "tok_visa"}},
	}
	// Sequential: each case reads its own command back from the queue.
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := postOrder(t, h, tc.body, tc.headers)
			d := nextMessage(t, h.Broker, saga.QueueOrderCommands)
			var got placed
			require.NoError(t, json.Unmarshal(d.Body, &got), "command body %s", d.Body)
			want := tc.want
			want.OrderID = a.OrderID
			assert.Equal(t, want, got, "command body")
		})
	}
}

func TestCreateOrderPublishesConfirmedCommand(t *testing.T) {
	t.Parallel()
	h := startGateway(t, closedURL(t), closedURL(t))
	user := newUUID()
	before := time.Now().Add(-time.Second)
	a := postOrder(t, h, `{"userId":"`+user+`","total":4200,"currency":"EUR","paymentMethod":"tok_visa"}`, jsonHeaders())

	d := nextMessage(t, h.Broker, saga.QueueOrderCommands)
	orderID := uuid.MustParse(a.OrderID)
	assert.Equal(t, "application/json", d.ContentType)
	assert.Equal(t, amqp.Persistent, d.DeliveryMode, "persistent")
	assert.Equal(t, uuid.NewSHA1(orderID, []byte(events.TypeOrderCreateRequested)).String(), d.MessageId,
		"message id derives from the order id")
	assert.Equal(t, events.TypeOrderCreateRequested, d.Type)
	assert.Equal(t, events.TypeOrderCreateRequested, d.RoutingKey)
	assert.Equal(t, events.ExchangeOrderCommands, d.Exchange)
	assert.Equal(t, a.OrderID, d.CorrelationId, "correlation id is the order id")
	assert.Equal(t, "gateway", d.AppId)
	assert.WithinRange(t, d.Timestamp, before, time.Now().Add(time.Second), "timestamp")
	assert.EqualValues(t, 1, d.Headers["x-schema-version"], "schema version header")
	assert.JSONEq(t, fmt.Sprintf(`{"orderId":%q,"userId":%q,"total":4200,"currency":"EUR","paymentMethod":"tok_visa"}`, a.OrderID, user),
		string(d.Body))
	p, err := events.Decode(d.Type, d.Body)
	require.NoError(t, err, "the command passes the consumer's validation")
	assert.Equal(t, orderID, p.(*events.OrderCreateRequested).OrderID)
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	h := startGateway(t, closedURL(t), closedURL(t))
	user, otherUser := newUUID(), newUUID()
	post := func(user, key string, total int) accepted {
		t.Helper()
		headers := jsonHeaders()
		if key != "" {
			headers.Set("Idempotency-Key", key)
		}
		return postOrder(t, h, fmt.Sprintf(`{"userId":%q,"total":%d}`, user, total), headers)
	}

	first := post(user, "checkout-1", 100)
	assert.Equal(t, gateway.IdempotentOrderID(uuid.MustParse(user), "checkout-1").String(), first.OrderID,
		"the order id derives from user and key")
	// Pinned: a change of derivation would give clients retrying across a
	// deployment a second order.
	namespace := uuid.MustParse("997b3012-99f1-435f-8089-99fb5677c3fa")
	assert.Equal(t, uuid.NewSHA1(namespace, []byte(user+"\x00checkout-1")).String(), first.OrderID,
		"the derivation is SHA-1 of user, NUL, key in the gateway's namespace")
	replay := post(user, "checkout-1", 999)
	assert.Equal(t, first, replay, "a replay, even with another body, answers the same")
	upperUser := post(strings.ToUpper(user), "checkout-1", 100)
	assert.Equal(t, first.OrderID, upperUser.OrderID, "the user id is compared as a UUID, not as text")

	assert.NotEqual(t, first.OrderID, post(user, "checkout-2", 100).OrderID, "another key, another order")
	assert.NotEqual(t, first.OrderID, post(otherUser, "checkout-1", 100).OrderID, "another user, another order")
	assert.NotEqual(t, post(user, "", 100).OrderID, post(user, "", 100).OrderID, "without a key, every request is a new order")

	// The first three posts published the same command: same message id,
	// so the order service's inbox keeps only one.
	var ids []string
	for range 3 {
		d := nextMessage(t, h.Broker, saga.QueueOrderCommands)
		assert.Equal(t, first.OrderID, d.CorrelationId)
		ids = append(ids, d.MessageId)
	}
	assert.Equal(t, ids[0], ids[1], "a replay has the same message id")
	assert.Equal(t, ids[0], ids[2], "a replay has the same message id")
}

func TestCreateOrderWithBrokerDown(t *testing.T) {
	t.Parallel()
	h := startGateway(t, closedURL(t), closedURL(t))
	user := newUUID()
	postOrder(t, h, `{"userId":"`+user+`","total":1}`, jsonHeaders())
	require.NoError(t, h.Conn.Close(), "close the broker connection")

	resp, body := do(t, h.URL, request{method: http.MethodPost, path: "/api/orders", headers: jsonHeaders("Idempotency-Key", "k1"),
		body: strings.NewReader(`{"userId":"` + user + `","total":1}`)})
	p := assertProblem(t, resp, body, http.StatusServiceUnavailable)
	assert.Contains(t, p.Detail, "broker")
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))
	assert.Empty(t, resp.Header.Get("Location"))
}

// orderService fakes the order service's GET /api/orders/{id} for orders
// with the given statuses; any other id is unknown.
func orderService(t testing.TB, statuses map[string]string) *fakeService {
	t.Helper()
	return newFakeService(t, map[string]http.HandlerFunc{
		"GET /api/orders/{id}": func(w http.ResponseWriter, r *http.Request) {
			id := r.PathValue("id")
			status, ok := statuses[id]
			if !ok {
				answer(http.StatusNotFound, "application/problem+json", `{"status":404,"detail":"order not found"}`)(w, r)
				return
			}
			answer(http.StatusOK, "application/json", fmt.Sprintf(`{"id":%q,"userId":%q,"total":100,"currency":"USD","status":%q,"cancelReason":null}`,
				id, newUUID(), status))(w, r)
		},
	})
}

func TestCancelOrder(t *testing.T) {
	t.Parallel()
	pending, paid, cancelled, failed := newUUID(), newUUID(), newUUID(), newUUID()
	orders := orderService(t, map[string]string{pending: "PENDING_PAYMENT", paid: "PAID", cancelled: "CANCELLED", failed: "FAILED"})
	h := startGateway(t, orders.URL, closedURL(t))

	viaCancel := func(id string) request {
		// The body of PATCH …/cancel is ignored, whatever it is.
		return request{method: http.MethodPatch, path: "/api/orders/" + id + "/cancel", body: strings.NewReader(`ignored`),
			headers: http.Header{"Content-Type": {"text/plain"}}}
	}
	viaStatus := func(id string) request {
		return request{method: http.MethodPatch, path: "/api/orders/" + id, headers: jsonHeaders(),
			body: strings.NewReader(`{"status":"CANCELLED"}`)}
	}
	cases := []struct {
		name    string
		request request
		id      string
		status  int
	}{
		{"pending, via /cancel", viaCancel(pending), pending, http.StatusAccepted},
		{"pending, via status", viaStatus(pending), pending, http.StatusAccepted},
		{"paid, via /cancel", viaCancel(paid), paid, http.StatusAccepted},
		{"paid, via status", viaStatus(paid), paid, http.StatusAccepted},
		{"cancelled, via /cancel", viaCancel(cancelled), cancelled, http.StatusConflict},
		{"cancelled, via status", viaStatus(cancelled), cancelled, http.StatusConflict},
		{"failed, via /cancel", viaCancel(failed), failed, http.StatusConflict},
		{"failed, via status", viaStatus(failed), failed, http.StatusConflict},
		{"unknown, via /cancel", viaCancel(newUUID()), "", http.StatusNotFound},
		{"unknown, via status", viaStatus(newUUID()), "", http.StatusNotFound},
	}
	// Sequential: each accepted case reads its own command back.
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := time.Now().Add(-time.Second)
			resp, body := do(t, h.URL, tc.request)
			if tc.status != http.StatusAccepted {
				p := assertProblem(t, resp, body, tc.status)
				if tc.status == http.StatusConflict {
					assert.Regexp(t, `^order [0-9a-f-]{36} is already (CANCELLED|FAILED)$`, p.Detail, "a detail for people")
				}
				assert.Zero(t, queueLength(t, h.Broker, saga.QueueOrderCommands), "no command for a refused cancellation")
				return
			}
			require.Equal(t, http.StatusAccepted, resp.StatusCode, "body %s", body)
			assert.JSONEq(t, fmt.Sprintf(`{"orderId":%q,"message":"Order cancellation request accepted"}`, tc.id), string(body))

			d := nextMessage(t, h.Broker, saga.QueueOrderCommands)
			assert.Equal(t, events.TypeOrderCancelRequested, d.Type)
			assert.Equal(t, tc.id, d.CorrelationId)
			assert.Equal(t, "application/json", d.ContentType)
			assert.Equal(t, amqp.Persistent, d.DeliveryMode)
			assert.Equal(t, "gateway", d.AppId)
			assert.WithinRange(t, d.Timestamp, before, time.Now().Add(time.Second))
			assert.EqualValues(t, 1, d.Headers["x-schema-version"])
			_, err := uuid.Parse(d.MessageId)
			assert.NoError(t, err, "message id is a UUID")
			assert.JSONEq(t, fmt.Sprintf(`{"orderId":%q,"reason":"USER_REQUESTED"}`, tc.id), string(d.Body))
		})
	}

	t.Run("each cancellation is a new message", func(t *testing.T) {
		for range 2 {
			resp, body := do(t, h.URL, viaCancel(pending))
			require.Equal(t, http.StatusAccepted, resp.StatusCode, "body %s", body)
		}
		first := nextMessage(t, h.Broker, saga.QueueOrderCommands)
		second := nextMessage(t, h.Broker, saga.QueueOrderCommands)
		assert.NotEqual(t, first.MessageId, second.MessageId)
	})
	t.Run("broker down", func(t *testing.T) {
		// Last: it closes the harness's broker connection.
		require.NoError(t, h.Conn.Close())
		resp, body := do(t, h.URL, viaCancel(pending))
		assertProblem(t, resp, body, http.StatusServiceUnavailable)
		assert.Equal(t, "1", resp.Header.Get("Retry-After"))
	})
}

func TestCancelOrderByStatusRejects(t *testing.T) {
	t.Parallel()
	id := newUUID()
	orders := orderService(t, map[string]string{id: "PENDING_PAYMENT"})
	h := startGateway(t, orders.URL, closedURL(t))
	huge := `{"status":"CANCELLED","pad":"` + strings.Repeat("x", 70_000) + `"}`

	cases := []struct {
		name    string
		path    string
		headers http.Header
		body    io.Reader
		status  int
		fields  []string
	}{
		{"order id not a UUID", "/api/orders/42", jsonHeaders(), strings.NewReader(`{"status":"CANCELLED"}`), 400, []string{"id"}},
		{"body over 64 KiB", "/api/orders/" + id, jsonHeaders(), strings.NewReader(huge), 413, nil},
		{"chunked body over 64 KiB", "/api/orders/" + id, jsonHeaders(), chunked{strings.NewReader(huge)}, 413, nil},
		{"not JSON", "/api/orders/" + id, http.Header{"Content-Type": {"text/plain"}}, strings.NewReader(`{"status":"CANCELLED"}`), 415, nil},
		{"no body", "/api/orders/" + id, jsonHeaders(), nil, 400, []string{"body"}},
		{"malformed", "/api/orders/" + id, jsonHeaders(), strings.NewReader(`{"status":`), 400, []string{"body"}},
		{"not an object", "/api/orders/" + id, jsonHeaders(), strings.NewReader(`"CANCELLED"`), 400, []string{"body"}},
		{"trailing data", "/api/orders/" + id, jsonHeaders(), strings.NewReader(`{"status":"CANCELLED"}]`), 400, []string{"body"}},
		{"unknown field", "/api/orders/" + id, jsonHeaders(), strings.NewReader(`{"status":"CANCELLED","reason":"x"}`), 400, []string{"reason"}},
		{"status null", "/api/orders/" + id, jsonHeaders(), strings.NewReader(`{"status":null}`), 400, []string{"status"}},
		{"status number", "/api/orders/" + id, jsonHeaders(), strings.NewReader(`{"status":3}`), 400, []string{"status"}},
		{"status missing", "/api/orders/" + id, jsonHeaders(), strings.NewReader(`{}`), 422, []string{"status"}},
		{"status other than CANCELLED", "/api/orders/" + id, jsonHeaders(), strings.NewReader(`{"status":"PAID"}`), 422, []string{"status"}},
		{"status in lower case", "/api/orders/" + id, jsonHeaders(), strings.NewReader(`{"status":"cancelled"}`), 422, []string{"status"}},
	}
	t.Run("cases", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				resp, body := do(t, h.URL, request{method: http.MethodPatch, path: tc.path, body: tc.body, headers: tc.headers})
				assertProblem(t, resp, body, tc.status, tc.fields...)
			})
		}
	})
	assert.Empty(t, orders.requests(), "the order service was asked about an invalid request")
	assert.Zero(t, queueLength(t, h.Broker, saga.QueueOrderCommands), "commands published for rejected requests")
}
