package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/testinfra"
	"github.com/ordersaga/ordersaga/libs/web"
	"github.com/ordersaga/ordersaga/saga"

	"github.com/ordersaga/ordersaga/apps/gateway/internal/gateway"
)

var quiet = slog.New(slog.DiscardHandler)

// harness is a gateway served over HTTP, publishing to its own vhost of the
// real broker and calling the given services.
type harness struct {
	URL     string
	Broker  testinfra.Broker
	Conn    *rabbit.Conn
	Gateway *gateway.Gateway
}

// startGateway starts a gateway whose services are at orderURL and
// paymentURL; stream, when given, times its order event streams.
func startGateway(t testing.TB, orderURL, paymentURL string, stream ...gateway.StreamOptions) *harness {
	t.Helper()
	return startGatewayOn(t, testinfra.VHost(t), 5*time.Second, orderURL, paymentURL, stream...)
}

// startGatewayOn is startGateway on broker b, waiting at most
// publishTimeout for a confirm.
func startGatewayOn(t testing.TB, b testinfra.Broker, publishTimeout time.Duration, orderURL, paymentURL string,
	stream ...gateway.StreamOptions) *harness {
	t.Helper()
	o := gateway.Options{Participants: []gateway.Participant{
		participantAt(t, gateway.OrderService, orderURL), participantAt(t, gateway.PaymentService, paymentURL)}}
	if len(stream) > 0 {
		o.Stream = stream[0]
	}
	return startGatewayWithOn(t, b, publishTimeout, o)
}

// participantAt is the participant name of the saga's table at url.
func participantAt(t testing.TB, name, url string) gateway.Participant {
	t.Helper()
	p, ok := saga.Lookup(name)
	require.True(t, ok, "%s is a participant", name)
	return gateway.Participant{Name: p.Name, URL: url, Timeline: p.MergedTimeline()}
}

// startGatewayWith starts a gateway with o's participants and stream
// options, publishing to its own vhost.
func startGatewayWith(t testing.TB, o gateway.Options) *harness {
	t.Helper()
	return startGatewayWithOn(t, testinfra.VHost(t), 5*time.Second, o)
}

// startGatewayWithOn is startGatewayWith on broker b, waiting at most
// publishTimeout for a confirm.
func startGatewayWithOn(t testing.TB, b testinfra.Broker, publishTimeout time.Duration, o gateway.Options) *harness {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := rabbit.Dial(ctx, b.AMQPURL, t.Name(), saga.Topology(), quiet)
	require.NoError(t, err, "dial broker")
	pub := rabbit.NewPublisher(conn, "gateway", publishTimeout)
	client := gateway.NewClient(2 * time.Second)
	o.Publisher, o.BrokerCheck, o.Client = pub, conn.Check, client
	o.Log, o.Registry = quiet, prometheus.NewRegistry()
	g, err := gateway.New(o)
	require.NoError(t, err, "new gateway")
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(func() {
		g.Shutdown() // as the server's shutdown does: streams end
		srv.Close()
		client.CloseIdleConnections()
		pub.Close()
		conn.Close()
	})
	return &harness{URL: srv.URL, Broker: b, Conn: conn, Gateway: g}
}

// fakeService stands in for the order or payment service: it answers from
// the handlers given and remembers every request.
type fakeService struct {
	*httptest.Server
	mu   sync.Mutex
	seen []seenRequest
}

type seenRequest struct {
	Path      string
	RawQuery  string
	RequestID string
}

func newFakeService(t testing.TB, routes map[string]http.HandlerFunc) *fakeService {
	t.Helper()
	mux := http.NewServeMux()
	if _, ok := routes["GET /healthz"]; !ok {
		mux.HandleFunc("GET /healthz", answer(http.StatusOK, "application/json", `{"status":"ok"}`))
	}
	for pattern, h := range routes {
		mux.HandleFunc(pattern, h)
	}
	f := &fakeService{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			f.mu.Lock()
			f.seen = append(f.seen, seenRequest{r.URL.Path, r.URL.RawQuery, r.Header.Get(web.RequestIDHeader)})
			f.mu.Unlock()
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// requests returns the requests seen so far, except health checks.
func (f *fakeService) requests() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.seen...)
}

// answer returns a handler that answers status with a JSON body.
func answer(status int, contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// closedURL is the URL of a port nothing listens on.
func closedURL(t testing.TB) string {
	t.Helper()
	return "http://" + testinfra.RefusedAddr(t)
}

// request is one HTTP request to the gateway.
type request struct {
	method  string
	path    string
	body    io.Reader
	headers http.Header
}

func jsonHeaders(extra ...string) http.Header {
	h := http.Header{"Content-Type": {"application/json"}}
	for i := 0; i+1 < len(extra); i += 2 {
		h.Add(extra[i], extra[i+1])
	}
	return h
}

// do sends r to the gateway at base and returns the answer and its body.
func do(t testing.TB, base string, r request) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.method, base+r.path, r.body)
	require.NoError(t, err)
	for k, vs := range r.headers {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err, "%s %s", r.method, r.path)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

// problem is a decoded problem+json body.
type problem struct {
	Type   string           `json:"type"`
	Title  string           `json:"title"`
	Status int              `json:"status"`
	Detail string           `json:"detail"`
	Errors []web.FieldError `json:"errors"`
}

// assertProblem checks that the answer is a problem with status and, when
// fields are given, exactly those fields in errors.
func assertProblem(t testing.TB, resp *http.Response, body []byte, status int, fields ...string) problem {
	t.Helper()
	var p problem
	if !assert.Equal(t, status, resp.StatusCode, "status; body %s", body) {
		return p
	}
	assert.Equal(t, web.ProblemContentType, resp.Header.Get("Content-Type"), "problem content type")
	if !assert.NoError(t, json.Unmarshal(body, &p), "problem body %s", body) {
		return p
	}
	assert.Equal(t, status, p.Status, "problem status")
	assert.NotEmpty(t, p.Type, "problem type")
	assert.Equal(t, http.StatusText(status), p.Title, "problem title")
	assert.NotEmpty(t, p.Detail, "problem detail")
	if len(fields) > 0 {
		var got []string
		for _, e := range p.Errors {
			got = append(got, e.Field)
			assert.NotEmpty(t, e.Message, "message of field %s", e.Field)
		}
		assert.ElementsMatch(t, fields, got, "fields named in errors: %s", body)
	}
	return p
}

// nextMessage waits for one message on queue of the broker.
func nextMessage(t testing.TB, b testinfra.Broker, queue string) amqp.Delivery {
	t.Helper()
	conn, err := amqp.Dial(b.AMQPURL)
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	deadline := time.Now().Add(20 * time.Second)
	for {
		d, ok, err := ch.Get(queue, true)
		require.NoError(t, err)
		if ok {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message on %s within 20s", queue)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// queueLength is the number of ready messages on queue.
func queueLength(t testing.TB, b testinfra.Broker, queue string) int {
	t.Helper()
	conn, err := amqp.Dial(b.AMQPURL)
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	require.NoError(t, err)
	return q.Messages
}

func TestNewRejectsMissingDependencies(t *testing.T) {
	t.Parallel()
	_, err := gateway.New(gateway.Options{Participants: []gateway.Participant{
		{Name: gateway.OrderService, URL: "ftp://x", Timeline: "/t/{id}"},
		{Name: gateway.PaymentService, URL: "http://127.0.0.1:3002", Timeline: "/t/{id}"},
	}})
	require.Error(t, err)
	for _, want := range []string{"publisher", "broker check", "HTTP client", "logger", "registry", "order-service URL"} {
		assert.Contains(t, err.Error(), want)
	}
	assert.NotContains(t, err.Error(), "payment-service", "a valid participant is not reported")
}

func TestNewRejectsBadParticipants(t *testing.T) {
	t.Parallel()
	order := gateway.Participant{Name: gateway.OrderService, URL: "http://127.0.0.1:3001", Timeline: "/t/{id}"}
	payment := gateway.Participant{Name: gateway.PaymentService, URL: "http://127.0.0.1:3002", Timeline: "/t/{id}"}
	cases := []struct {
		name         string
		participants []gateway.Participant
		says         string
	}{
		{"no order service", []gateway.Participant{payment}, "order-service is required"},
		{"no payment service", []gateway.Participant{order}, "payment-service is required"},
		{"a name twice", []gateway.Participant{order, payment, order}, "unique name"},
		{"no name", []gateway.Participant{order, payment, {URL: "http://h", Timeline: "/t/{id}"}}, "unique name"},
		{"timeline without the id", []gateway.Participant{order, payment, {Name: "x", URL: "http://h", Timeline: "/t"}}, "x timeline"},
		{"bad URL", []gateway.Participant{order, payment, {Name: "x", URL: "h:1", Timeline: "/t/{id}"}}, "x URL"},
		{"the order service without a timeline", []gateway.Participant{{Name: gateway.OrderService, URL: "http://127.0.0.1:3001", Timeline: gateway.NoTimeline}, payment}, "order-service timeline: want a path"},
		{"a timeline of two dashes", []gateway.Participant{order, payment, {Name: "x", URL: "http://h", Timeline: "--"}}, "x timeline"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := gateway.New(gateway.Options{Participants: tc.participants})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.says)
		})
	}
}

func TestBaseURL(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in, want string
		ok             bool
	}{
		{"host and port", "http://127.0.0.1:3001", "http://127.0.0.1:3001", true},
		{"trailing slash dropped", "https://orders.internal/", "https://orders.internal", true},
		{"path prefix kept", "http://h/prefix/", "http://h/prefix", true},
		{"no scheme", "127.0.0.1:3001", "", false},
		{"other scheme", "amqp://h", "", false},
		{"no host", "http://", "", false},
		{"query", "http://h?x=1", "", false},
		{"empty", "", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := gateway.BaseURL(tc.in)
			if !tc.ok {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestUnknownRouteAndWrongMethod(t *testing.T) {
	t.Parallel()
	h := startGateway(t, closedURL(t), closedURL(t))
	cases := []struct {
		name   string
		method string
		path   string
		status int
		allow  string
	}{
		{"unknown route", http.MethodGet, "/api/nothing", http.StatusNotFound, ""},
		{"unknown sub-resource", http.MethodGet, "/api/orders/" + newUUID() + "/nothing", http.StatusNotFound, ""},
		{"wrong method on the collection", http.MethodDelete, "/api/orders", http.StatusMethodNotAllowed, "GET, HEAD, OPTIONS, POST"},
		{"wrong method on an order", http.MethodPost, "/api/orders/" + newUUID(), http.StatusMethodNotAllowed, "GET, HEAD, OPTIONS, PATCH"},
		{"wrong method on cancel", http.MethodPost, "/api/orders/" + newUUID() + "/cancel", http.StatusMethodNotAllowed, "OPTIONS, PATCH"},
		{"wrong method on stats", http.MethodPut, "/api/payments/stats", http.StatusMethodNotAllowed, "GET, HEAD, OPTIONS"},
		{"HEAD where there is no GET", http.MethodHead, "/api/orders/" + newUUID() + "/cancel", http.StatusMethodNotAllowed, "OPTIONS, PATCH"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, body := do(t, h.URL, request{method: tc.method, path: tc.path})
			if tc.method == http.MethodHead {
				assert.Equal(t, tc.status, resp.StatusCode)
				assert.Empty(t, body, "no body for a HEAD")
				assert.Equal(t, web.ProblemContentType, resp.Header.Get("Content-Type"))
			} else {
				assertProblem(t, resp, body, tc.status)
			}
			assert.Equal(t, tc.allow, resp.Header.Get("Allow"), "Allow header")
		})
	}
}

// TestHeadAndOptions: every GET resource answers HEAD with the headers of
// its GET and no body, and every route answers OPTIONS with its methods.
func TestHeadAndOptions(t *testing.T) {
	t.Parallel()
	id := newUUID()
	orders := newFakeService(t, map[string]http.HandlerFunc{
		"GET /api/orders/" + id: answer(http.StatusOK, "application/json; charset=utf-8",
			`{"id":"`+id+`","userId":"`+id+`","total":1,"currency":"USD","status":"PENDING_PAYMENT","cancelReason":null,"createdAt":"2025-03-01T12:00:00Z","updatedAt":"2025-03-01T12:00:00Z"}`),
	})
	h := startGateway(t, orders.URL, closedURL(t))
	cases := []struct {
		name        string
		method      string
		path        string
		status      int
		contentType string
		allow       string
	}{
		{"HEAD of an order", http.MethodHead, "/api/orders/" + id, http.StatusOK, "application/json; charset=utf-8", ""},
		{"HEAD of an unknown route", http.MethodHead, "/api/nothing", http.StatusNotFound, web.ProblemContentType, ""},
		{"HEAD of a bad order id", http.MethodHead, "/api/orders/42", http.StatusBadRequest, web.ProblemContentType, ""},
		{"HEAD of the OpenAPI document", http.MethodHead, "/api/openapi.json", http.StatusOK, "application/json; charset=utf-8", ""},
		{"HEAD of the docs", http.MethodHead, "/docs", http.StatusOK, "text/html; charset=utf-8", ""},
		{"HEAD of health", http.MethodHead, "/healthz", http.StatusOK, "application/json; charset=utf-8", ""},
		// A stream that is still waiting for its outcome must not hold a
		// HEAD's connection: its headers are the whole answer.
		{"HEAD of an order's events", http.MethodHead, "/api/orders/" + id + "/events", http.StatusOK, gateway.EventStreamContentType, ""},
		{"OPTIONS of the collection", http.MethodOptions, "/api/orders", http.StatusNoContent, "", "GET, HEAD, OPTIONS, POST"},
		{"OPTIONS of an order", http.MethodOptions, "/api/orders/" + id, http.StatusNoContent, "", "GET, HEAD, OPTIONS, PATCH"},
		{"OPTIONS of cancel", http.MethodOptions, "/api/orders/" + id + "/cancel", http.StatusNoContent, "", "OPTIONS, PATCH"},
		{"OPTIONS of an unknown route", http.MethodOptions, "/api/nothing", http.StatusNotFound, web.ProblemContentType, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, body := do(t, h.URL, request{method: tc.method, path: tc.path})
			assert.Equal(t, tc.status, resp.StatusCode, "status; body %s", body)
			assert.Equal(t, tc.contentType, resp.Header.Get("Content-Type"), "Content-Type")
			assert.Equal(t, tc.allow, resp.Header.Get("Allow"), "Allow header")
			assert.NotEmpty(t, resp.Header.Get(web.RequestIDHeader), "request id")
			if tc.status != http.StatusNotFound || tc.method == http.MethodHead {
				assert.Empty(t, body, "no body")
			}
		})
	}
	t.Run("a HEAD of events does not follow the order", func(t *testing.T) {
		// Not parallel with the cases: it counts the order service's
		// requests after they are done.
		other := newUUID()
		orders := newFakeService(t, map[string]http.HandlerFunc{
			"GET /api/orders/" + other: answer(http.StatusOK, "application/json; charset=utf-8",
				`{"id":"`+other+`","userId":"`+other+`","total":1,"currency":"USD","status":"PENDING_PAYMENT","cancelReason":null,"createdAt":"2025-03-01T12:00:00Z","updatedAt":"2025-03-01T12:00:00Z"}`),
		})
		h := startGateway(t, orders.URL, closedURL(t), gateway.StreamOptions{PollInterval: 10 * time.Millisecond})
		resp, _ := do(t, h.URL, request{method: http.MethodHead, path: "/api/orders/" + other + "/events"})
		require.Equal(t, http.StatusOK, resp.StatusCode)
		time.Sleep(300 * time.Millisecond)
		assert.Len(t, orders.requests(), 1, "the order is read once, not polled after the headers")
	})
}

func TestReadiness(t *testing.T) {
	t.Parallel()
	up := newFakeService(t, nil)
	sick := newFakeService(t, map[string]http.HandlerFunc{
		"GET /healthz": answer(http.StatusInternalServerError, "application/json", `{}`),
	})

	type readiness struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	ready := func(t *testing.T, h *harness) (int, readiness) {
		t.Helper()
		resp, body := do(t, h.URL, request{method: http.MethodGet, path: "/readyz"})
		assert.Equal(t, "application/json; charset=utf-8", resp.Header.Get("Content-Type"))
		var r readiness
		require.NoError(t, json.Unmarshal(body, &r), "readiness body %s", body)
		return resp.StatusCode, r
	}

	t.Run("all up", func(t *testing.T) {
		t.Parallel()
		h := startGateway(t, up.URL, up.URL)
		status, r := ready(t, h)
		assert.Equal(t, http.StatusOK, status)
		assert.Equal(t, readiness{Status: "ok", Checks: map[string]string{
			"broker": "ok", "order-service": "ok", "payment-service": "ok"}}, r)
	})
	t.Run("services down or sick, broker closed", func(t *testing.T) {
		t.Parallel()
		h := startGateway(t, closedURL(t), sick.URL)
		require.NoError(t, h.Conn.Close())
		status, r := ready(t, h)
		assert.Equal(t, http.StatusServiceUnavailable, status)
		assert.Equal(t, "unavailable", r.Status)
		require.Len(t, r.Checks, 3)
		assert.Contains(t, r.Checks["order-service"], "connection refused")
		assert.Contains(t, r.Checks["payment-service"], "500")
		assert.Contains(t, r.Checks["broker"], "broker unavailable")
	})
	// Contract §1: 503 only when the broker or order-service, what POST
	// /api/orders needs, is unavailable; the others are reported.
	t.Run("payment-service down alone", func(t *testing.T) {
		t.Parallel()
		h := startGateway(t, up.URL, closedURL(t))
		status, r := ready(t, h)
		assert.Equal(t, http.StatusOK, status)
		assert.Equal(t, "ok", r.Status)
		assert.Equal(t, "ok", r.Checks["order-service"])
		assert.Contains(t, r.Checks["payment-service"], "connection refused")
	})
	t.Run("order-service down alone", func(t *testing.T) {
		t.Parallel()
		h := startGateway(t, closedURL(t), up.URL)
		status, r := ready(t, h)
		assert.Equal(t, http.StatusServiceUnavailable, status)
		assert.Equal(t, "unavailable", r.Status)
		assert.Equal(t, "ok", r.Checks["payment-service"])
	})
	// A participant without a timeline (users-service) is still checked.
	t.Run("a participant without a timeline down", func(t *testing.T) {
		t.Parallel()
		h := startGatewayWith(t, gateway.Options{Participants: []gateway.Participant{
			participantAt(t, gateway.OrderService, up.URL),
			participantAt(t, gateway.PaymentService, up.URL),
			{Name: "users-service", URL: closedURL(t), Timeline: gateway.NoTimeline},
		}})
		status, r := ready(t, h)
		assert.Equal(t, http.StatusOK, status)
		assert.Contains(t, r.Checks["users-service"], "connection refused")
	})
	t.Run("liveness needs nothing", func(t *testing.T) {
		t.Parallel()
		h := startGateway(t, closedURL(t), closedURL(t))
		resp, body := do(t, h.URL, request{method: http.MethodGet, path: "/healthz"})
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.JSONEq(t, `{"status":"ok"}`, string(body))
	})
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	h := startGateway(t, closedURL(t), closedURL(t))
	resp, _ := do(t, h.URL, request{method: http.MethodPost, path: "/api/orders", headers: jsonHeaders(),
		body: strings.NewReader(`{"userId":"` + newUUID() + `","total":1}`)})
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	resp, body := do(t, h.URL, request{method: http.MethodGet, path: "/metrics"})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(body), `ordersaga_gateway_commands_total{outcome="confirmed",type="order.create.requested"} 1`)
	assert.Contains(t, string(body), `ordersaga_http_requests_total{method="POST",route="/api/orders",status="202"} 1`)
}
