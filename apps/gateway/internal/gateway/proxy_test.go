package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/web"

	"github.com/ordersaga/ordersaga/apps/gateway/internal/gateway"
)

func TestQueriesAreForwarded(t *testing.T) {
	t.Parallel()
	orderID, paymentID, user := newUUID(), newUUID(), newUUID()
	orderJSON := fmt.Sprintf(`{"id":%q,"userId":%q,"total":100,"currency":"USD","status":"PAID","cancelReason":null,"createdAt":"2025-01-01T00:00:00Z","updatedAt":"2025-01-01T00:00:01Z"}`, orderID, user)
	paymentJSON := fmt.Sprintf(`{"id":%q,"orderId":%q,"amount":100,"currency":"USD","status":"APPROVED","reason":null}`, paymentID, orderID)
	notFound := `{"type":"https://ordersaga.dev/problems/not-found","title":"Not Found","status":404,"detail":"order not found"}`
	orders := newFakeService(t, map[string]http.HandlerFunc{
		"GET /api/orders":            answer(http.StatusOK, "application/json; charset=utf-8", `{"data":[`+orderJSON+`],"meta":{"page":2,"limit":1,"total":3,"totalPages":3}}`),
		"GET /api/orders/" + orderID: answer(http.StatusOK, "application/json; charset=utf-8", orderJSON),
		"GET /api/orders/{id}":       answer(http.StatusNotFound, web.ProblemContentType, notFound),
	})
	payments := newFakeService(t, map[string]http.HandlerFunc{
		"GET /api/payments":                  answer(http.StatusOK, "application/json; charset=utf-8", `{"data":[],"meta":{"page":1,"limit":10,"total":0,"totalPages":0}}`),
		"GET /api/payments/stats":            answer(http.StatusOK, "application/json; charset=utf-8", `{"byStatus":[{"status":"APPROVED","count":1,"totalAmount":100}]}`),
		"GET /api/payments/" + paymentID:     answer(http.StatusOK, "application/json; charset=utf-8", paymentJSON),
		"GET /api/payments/order/" + orderID: answer(http.StatusOK, "application/json; charset=utf-8", paymentJSON),
		"GET /api/payments/{id}":             answer(http.StatusNotFound, web.ProblemContentType, notFound),
		"GET /api/payments/order/{id}":       answer(http.StatusNotFound, web.ProblemContentType, notFound),
	})
	h := startGateway(t, orders.URL, payments.URL)

	cases := []struct {
		name        string
		path        string
		service     *fakeService
		wantPath    string
		wantQuery   string
		status      int
		contentType string
		body        string
	}{
		{"order list with every parameter", "/api/orders?page=2&limit=1&status=PAID&userId=" + user, orders,
			"/api/orders", "page=2&limit=1&status=PAID&userId=" + user, 200, "application/json; charset=utf-8", `{"data":[` + orderJSON + `],"meta":{"page":2,"limit":1,"total":3,"totalPages":3}}`},
		{"order list, unknown parameters kept", "/api/orders?x=1", orders, "/api/orders", "x=1", 200, "", ""},
		{"order", "/api/orders/" + orderID, orders, "/api/orders/" + orderID, "", 200, "application/json; charset=utf-8", orderJSON},
		{"order id in upper case", "/api/orders/" + strings.ToUpper(orderID), orders, "/api/orders/" + orderID, "", 200, "", orderJSON},
		{"unknown order", "/api/orders/" + user, orders, "/api/orders/" + user, "", 404, web.ProblemContentType, notFound},
		{"payment list", "/api/payments?status=DECLINED&limit=5", payments, "/api/payments", "status=DECLINED&limit=5", 200, "application/json; charset=utf-8", ""},
		{"payment stats", "/api/payments/stats", payments, "/api/payments/stats", "", 200, "application/json; charset=utf-8", `{"byStatus":[{"status":"APPROVED","count":1,"totalAmount":100}]}`},
		{"payment", "/api/payments/" + paymentID, payments, "/api/payments/" + paymentID, "", 200, "", paymentJSON},
		{"unknown payment", "/api/payments/" + orderID, payments, "/api/payments/" + orderID, "", 404, web.ProblemContentType, notFound},
		{"payment of an order", "/api/payments/order/" + orderID, payments, "/api/payments/order/" + orderID, "", 200, "", paymentJSON},
		{"payment of an unknown order", "/api/payments/order/" + user, payments, "/api/payments/order/" + user, "", 404, web.ProblemContentType, notFound},
	}
	// Sequential: each case checks the last request its service saw.
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			requestID := "req-" + newUUID()
			resp, body := do(t, h.URL, request{method: http.MethodGet, path: tc.path, headers: http.Header{web.RequestIDHeader: {requestID}}})
			assert.Equal(t, tc.status, resp.StatusCode, "status; body %s", body)
			if tc.contentType != "" {
				assert.Equal(t, tc.contentType, resp.Header.Get("Content-Type"))
			}
			if tc.body != "" {
				assert.Equal(t, tc.body, string(body), "body passed through unchanged")
			}
			seen := tc.service.requests()
			require.NotEmpty(t, seen, "the service was called")
			last := seen[len(seen)-1]
			assert.Equal(t, tc.wantPath, last.Path)
			assert.Equal(t, tc.wantQuery, last.RawQuery)
			assert.Equal(t, requestID, last.RequestID, "X-Request-ID propagated")
			assert.Equal(t, requestID, resp.Header.Get(web.RequestIDHeader), "X-Request-ID echoed")
		})
	}
}

func TestBadQueriesAreNotForwarded(t *testing.T) {
	t.Parallel()
	orders := newFakeService(t, nil)
	payments := newFakeService(t, nil)
	h := startGateway(t, orders.URL, payments.URL)

	cases := []struct {
		name  string
		path  string
		field string
	}{
		{"page zero", "/api/orders?page=0", "page"},
		{"page not a number", "/api/orders?page=one", "page"},
		{"limit over 100", "/api/orders?limit=101", "limit"},
		{"limit zero", "/api/orders?limit=0", "limit"},
		{"limit given twice", "/api/orders?limit=1&limit=2", "limit"},
		{"empty limit", "/api/orders?limit=", "limit"},
		{"unknown order status", "/api/orders?status=SHIPPED", "status"},
		{"payment status for an order", "/api/orders?status=APPROVED", "status"},
		{"userId not a UUID", "/api/orders?userId=nope", "userId"},
		{"order id not a UUID", "/api/orders/42", "id"},
		{"timeline of a non-UUID", "/api/orders/42/timeline", "id"},
		{"payment page zero", "/api/payments?page=0", "page"},
		{"unknown payment status", "/api/payments?status=PAID", "status"},
		{"payment id not a UUID", "/api/payments/42", "id"},
		{"payment order id not a UUID", "/api/payments/order/42", "orderId"},
		{"payment order without an id", "/api/payments/order", "id"},
		{"near the stats route", "/api/payments/statsx", "id"},
	}
	t.Run("cases", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				resp, body := do(t, h.URL, request{method: http.MethodGet, path: tc.path})
				assertProblem(t, resp, body, http.StatusBadRequest, tc.field)
			})
		}
	})
	assert.Empty(t, orders.requests(), "order service called for a bad query")
	assert.Empty(t, payments.requests(), "payment service called for a bad query")
}

func TestServicesDown(t *testing.T) {
	t.Parallel()
	h := startGateway(t, closedURL(t), closedURL(t))
	id := newUUID()
	cases := []struct {
		method, path, service string
	}{
		{http.MethodGet, "/api/orders", "order-service"},
		{http.MethodGet, "/api/orders/" + id, "order-service"},
		{http.MethodGet, "/api/orders/" + id + "/timeline", "order-service"},
		{http.MethodPatch, "/api/orders/" + id + "/cancel", "order-service"},
		{http.MethodGet, "/api/payments", "payment-service"},
		{http.MethodGet, "/api/payments/stats", "payment-service"},
		{http.MethodGet, "/api/payments/" + id, "payment-service"},
		{http.MethodGet, "/api/payments/order/" + id, "payment-service"},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			t.Parallel()
			resp, body := do(t, h.URL, request{method: tc.method, path: tc.path})
			p := assertProblem(t, resp, body, http.StatusServiceUnavailable)
			assert.Contains(t, p.Detail, tc.service, "the problem names the service")
			assert.NotContains(t, p.Detail, "127.0.0.1", "the problem does not expose addresses")
		})
	}
	t.Run("PATCH with a body", func(t *testing.T) {
		t.Parallel()
		resp, body := do(t, h.URL, request{method: http.MethodPatch, path: "/api/orders/" + id, headers: jsonHeaders(),
			body: strings.NewReader(`{"status":"CANCELLED"}`)})
		assertProblem(t, resp, body, http.StatusServiceUnavailable)
	})
}

func TestSlowServiceTimesOut(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	slow := newFakeService(t, map[string]http.HandlerFunc{
		"GET /api/payments/stats": func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		},
	})
	t.Cleanup(func() { close(release) })
	h := startGateway(t, closedURL(t), slow.URL) // the harness's client gives up after 2s
	resp, body := do(t, h.URL, request{method: http.MethodGet, path: "/api/payments/stats"})
	p := assertProblem(t, resp, body, http.StatusServiceUnavailable)
	assert.Contains(t, p.Detail, "payment-service")
}

func TestServiceErrors(t *testing.T) {
	t.Parallel()
	id := newUUID()
	broken := newFakeService(t, map[string]http.HandlerFunc{
		"GET /api/orders":               answer(http.StatusInternalServerError, web.ProblemContentType, `{"status":500}`),
		"GET /api/orders/{id}":          answer(http.StatusServiceUnavailable, web.ProblemContentType, `{"status":503}`),
		"GET /api/orders/{id}/timeline": answer(http.StatusOK, "application/json", `not json`),
		"GET /api/payments/stats":       answer(http.StatusBadGateway, "text/plain", `oops`),
		"GET /api/payments/order/{id}":  answer(http.StatusInternalServerError, "text/plain", `oops`),
		"GET /api/payments/{id}":        answer(http.StatusOK, "application/json", strings.Repeat(" ", 9<<20)),
	})
	h := startGateway(t, broken.URL, broken.URL)
	cases := []struct {
		method, path, service string
		status                int
	}{
		{http.MethodGet, "/api/orders", "order-service", http.StatusBadGateway},
		// A service that says it is unavailable (its database is down) is
		// unavailable to the client too.
		{http.MethodGet, "/api/orders/" + id, "order-service", http.StatusServiceUnavailable},
		{http.MethodGet, "/api/orders/" + id + "/timeline", "order-service", http.StatusBadGateway},
		{http.MethodPatch, "/api/orders/" + id + "/cancel", "order-service", http.StatusServiceUnavailable},
		{http.MethodGet, "/api/payments/stats", "payment-service", http.StatusBadGateway},
		{http.MethodGet, "/api/payments/order/" + id, "payment-service", http.StatusBadGateway},
		{http.MethodGet, "/api/payments/" + id, "payment-service", http.StatusBadGateway},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			t.Parallel()
			resp, body := do(t, h.URL, request{method: tc.method, path: tc.path})
			p := assertProblem(t, resp, body, tc.status)
			assert.Contains(t, p.Detail, tc.service, "the problem names the service")
		})
	}
}

type timelineEvent struct {
	At        time.Time `json:"at"`
	Service   string    `json:"service"`
	Type      string    `json:"type"`
	MessageID string    `json:"messageId"`
	Detail    string    `json:"detail"`
}

func timelineJSON(t testing.TB, orderID string, evs ...timelineEvent) string {
	t.Helper()
	if evs == nil {
		evs = []timelineEvent{}
	}
	b, err := json.Marshal(map[string]any{"orderId": orderID, "events": evs})
	require.NoError(t, err)
	return string(b)
}

func TestTimeline(t *testing.T) {
	t.Parallel()
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	full, orderOnly, empty, unknown, paymentGone := newUUID(), newUUID(), newUUID(), newUUID(), newUUID()

	fromOrders := []timelineEvent{
		{at(0), "order-service", events.TypeOrderCreateRequested, "m1", "received total=100"},
		{at(1), "order-service", events.TypeOrderCreated, "m2", "emitted total=100"},
		{at(5), "order-service", events.TypePaymentApproved, "m4", "received amount=100"},
		{at(6), "order-service", events.TypeOrderPaid, "m5", "emitted"},
	}
	fromPayments := []timelineEvent{
		{at(1), "payment-service", events.TypeOrderCreated, "m2", "received total=100"}, // same instant as m2 emitted
		{at(4), "payment-service", events.TypePaymentApproved, "m4", "emitted amount=100"},
	}
	orders := newFakeService(t, map[string]http.HandlerFunc{
		"GET /api/orders/" + full + "/timeline":        answer(200, "application/json", timelineJSON(t, full, fromOrders...)),
		"GET /api/orders/" + orderOnly + "/timeline":   answer(200, "application/json", timelineJSON(t, orderOnly, fromOrders[:2]...)),
		"GET /api/orders/" + empty + "/timeline":       answer(200, "application/json", `{"orderId":"`+empty+`","events":null}`),
		"GET /api/orders/" + paymentGone + "/timeline": answer(200, "application/json", timelineJSON(t, paymentGone, fromOrders[:1]...)),
		"GET /api/orders/{id}/timeline":                answer(404, web.ProblemContentType, `{"status":404}`),
	})
	payments := newFakeService(t, map[string]http.HandlerFunc{
		"GET /api/payments/order/" + full + "/timeline":        answer(200, "application/json", timelineJSON(t, full, fromPayments...)),
		"GET /api/payments/order/" + paymentGone + "/timeline": answer(404, web.ProblemContentType, `{"status":404}`),
		"GET /api/payments/order/{id}/timeline":                answer(200, "application/json", `{"events":[]}`),
	})
	h := startGateway(t, orders.URL, payments.URL)

	get := func(t *testing.T, id string) (*http.Response, []byte) {
		t.Helper()
		return do(t, h.URL, request{method: http.MethodGet, path: "/api/orders/" + id + "/timeline"})
	}
	decode := func(t *testing.T, body []byte) (string, []timelineEvent) {
		t.Helper()
		var tl struct {
			OrderID string          `json:"orderId"`
			Events  []timelineEvent `json:"events"`
		}
		require.NoError(t, json.Unmarshal(body, &tl), "timeline body %s", body)
		return tl.OrderID, tl.Events
	}

	t.Run("both services, merged in time order", func(t *testing.T) {
		resp, body := get(t, full)
		require.Equal(t, http.StatusOK, resp.StatusCode, "body %s", body)
		id, evs := decode(t, body)
		assert.Equal(t, full, id)
		assert.Equal(t, []timelineEvent{fromOrders[0], fromOrders[1], fromPayments[0], fromPayments[1], fromOrders[2], fromOrders[3]}, evs)
	})
	t.Run("order service only", func(t *testing.T) {
		resp, body := get(t, orderOnly)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		_, evs := decode(t, body)
		assert.Equal(t, fromOrders[:2], evs)
	})
	t.Run("payment service does not know the order", func(t *testing.T) {
		resp, body := get(t, paymentGone)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		_, evs := decode(t, body)
		assert.Equal(t, fromOrders[:1], evs)
	})
	t.Run("no events is an empty list, never null", func(t *testing.T) {
		resp, body := get(t, empty)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.JSONEq(t, `{"orderId":"`+empty+`","events":[]}`, string(body))
	})
	t.Run("unknown order", func(t *testing.T) {
		resp, body := get(t, unknown)
		assertProblem(t, resp, body, http.StatusNotFound)
	})
}

// TestTimelineMergesEveryParticipant checks that the timeline is not about
// two services: a third participant's events are merged in time order, its
// not knowing the order leaves a gap-free timeline, and its being down or
// broken fails the timeline, naming it.
func TestTimelineMergesEveryParticipant(t *testing.T) {
	t.Parallel()
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	known, unheard := newUUID(), newUUID()
	fromOrders := []timelineEvent{
		{at(0), "order-service", events.TypeOrderCreateRequested, "m1", "received total=100"},
		{at(3), "order-service", "stock.reserved", "m3", "received"},
	}
	fromPayments := []timelineEvent{{at(4), "payment-service", events.TypePaymentApproved, "m4", "emitted"}}
	fromStock := []timelineEvent{
		{at(0), "inventory-service", "order.created", "m2", "received"}, // same instant as m1: after it
		{at(2), "inventory-service", "stock.reserved", "m3", "emitted"},
	}
	orderTimeline := func(id string, evs ...timelineEvent) http.HandlerFunc {
		return answer(200, "application/json", timelineJSON(t, id, evs...))
	}
	orders := newFakeService(t, map[string]http.HandlerFunc{
		"GET /api/orders/{id}/timeline": func(w http.ResponseWriter, r *http.Request) {
			orderTimeline(r.PathValue("id"), fromOrders...)(w, r)
		},
	})
	payments := newFakeService(t, map[string]http.HandlerFunc{
		"GET /api/payments/order/{id}/timeline": func(w http.ResponseWriter, r *http.Request) {
			orderTimeline(r.PathValue("id"), fromPayments...)(w, r)
		},
	})
	stock := newFakeService(t, map[string]http.HandlerFunc{
		"GET /internal/sagas/" + known + "/history": orderTimeline(known, fromStock...),
		"GET /internal/sagas/{id}/history":          answer(404, web.ProblemContentType, `{"status":404}`),
	})
	broken := newFakeService(t, map[string]http.HandlerFunc{
		"GET /internal/sagas/{id}/history": answer(500, "text/plain", "oops"),
	})
	// A participant without a timeline is never asked for one: any request
	// to it but its readiness would fail the timeline.
	noTimeline := newFakeService(t, map[string]http.HandlerFunc{
		"/": answer(500, "text/plain", "asked for a timeline"),
	})
	gatewayWith := func(t *testing.T, inventoryURL string) *harness {
		return startGatewayWith(t, gateway.Options{Participants: []gateway.Participant{
			participantAt(t, gateway.OrderService, orders.URL),
			participantAt(t, gateway.PaymentService, payments.URL),
			{Name: "inventory-service", URL: inventoryURL, Timeline: "/internal/sagas/{id}/history"},
			{Name: "users-service", URL: noTimeline.URL, Timeline: gateway.NoTimeline},
		}})
	}
	t.Cleanup(func() { assert.Empty(t, noTimeline.requests(), "the participant without a timeline was asked for one") })
	get := func(t *testing.T, h *harness, id string) (*http.Response, []byte) {
		t.Helper()
		return do(t, h.URL, request{method: http.MethodGet, path: "/api/orders/" + id + "/timeline"})
	}
	decode := func(t *testing.T, body []byte) []timelineEvent {
		t.Helper()
		var tl struct {
			Events []timelineEvent `json:"events"`
		}
		require.NoError(t, json.Unmarshal(body, &tl), "timeline body %s", body)
		return tl.Events
	}

	t.Run("three participants, merged in time order", func(t *testing.T) {
		t.Parallel()
		resp, body := get(t, gatewayWith(t, stock.URL), known)
		require.Equal(t, http.StatusOK, resp.StatusCode, "body %s", body)
		assert.Equal(t, []timelineEvent{fromOrders[0], fromStock[0], fromStock[1], fromOrders[1], fromPayments[0]}, decode(t, body))
	})
	t.Run("a participant that has not heard of the order", func(t *testing.T) {
		t.Parallel()
		resp, body := get(t, gatewayWith(t, stock.URL), unheard)
		require.Equal(t, http.StatusOK, resp.StatusCode, "body %s", body)
		assert.Equal(t, []timelineEvent{fromOrders[0], fromOrders[1], fromPayments[0]}, decode(t, body))
	})
	for _, tc := range []struct {
		name, url string
		status    int
	}{
		{"a participant down", closedURL(t), http.StatusServiceUnavailable},
		{"a participant failing", broken.URL, http.StatusBadGateway},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, body := get(t, gatewayWith(t, tc.url), known)
			p := assertProblem(t, resp, body, tc.status)
			assert.Contains(t, p.Detail, "inventory-service", "the problem names the participant")
		})
	}
}
