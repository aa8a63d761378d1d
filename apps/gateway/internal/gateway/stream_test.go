package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/web"

	"github.com/ordersaga/ordersaga/apps/gateway/internal/gateway"
)

// liveOrders fakes the order service's GET /api/orders/{id} for orders
// whose state the test changes while streams follow them.
type liveOrders struct {
	*fakeService
	mu     sync.Mutex
	orders map[string]*liveOrder
}

type liveOrder struct {
	status string
	// down answers 503, as the order service does when its database is.
	down bool
	// answers counts the answers, to make updatedAt change on each: only a
	// change of status is an event.
	answers int
}

func newLiveOrders(t testing.TB) *liveOrders {
	t.Helper()
	l := &liveOrders{orders: map[string]*liveOrder{}}
	l.fakeService = newFakeService(t, map[string]http.HandlerFunc{
		"GET /api/orders/{id}": func(w http.ResponseWriter, r *http.Request) {
			id := r.PathValue("id")
			l.mu.Lock()
			defer l.mu.Unlock()
			o, ok := l.orders[id]
			switch {
			case !ok:
				answer(http.StatusNotFound, web.ProblemContentType, `{"status":404,"detail":"order not found"}`)(w, r)
			case o.down:
				answer(http.StatusServiceUnavailable, web.ProblemContentType, `{"status":503,"detail":"the order store is unavailable"}`)(w, r)
			default:
				o.answers++
				// Indented, as nothing forbids: the event must still be one line.
				body, _ := json.MarshalIndent(orderOf(id, o.status, o.answers), "", "  ")
				answer(http.StatusOK, "application/json; charset=utf-8", string(body))(w, r)
			}
		},
	})
	return l
}

// orderOf is the order the fake answers with.
func orderOf(id, status string, version int) map[string]any {
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	var reason any
	if status == events.StatusCancelled {
		reason = "USER_REQUESTED"
	}
	return map[string]any{"id": id, "userId": "8d1c7c8e-3c4e-4a51-9d43-6c0c7b3f0a11", "total": 4200, "currency": "USD",
		"status": status, "cancelReason": reason, "createdAt": base.Format(time.RFC3339Nano),
		"updatedAt": base.Add(time.Duration(version) * time.Millisecond).Format(time.RFC3339Nano)}
}

// add adds an order with status and returns its id.
func (l *liveOrders) add(status string) string {
	id := newUUID()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.orders[id] = &liveOrder{status: status}
	return id
}

func (l *liveOrders) set(id, status string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.orders[id].status = status
}

func (l *liveOrders) setDown(id string, down bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.orders[id].down = down
}

// calls counts the requests for order id.
func (l *liveOrders) calls(id string) int {
	n := 0
	for _, r := range l.requests() {
		if r.Path == "/api/orders/"+id {
			n++
		}
	}
	return n
}

// sseEvent is one event of a stream, or one comment.
type sseEvent struct {
	ID, Event, Data string
	Comment         string
}

// sseClient is a client reading an order event stream.
type sseClient struct {
	resp *http.Response
	// events is closed when the stream ends.
	events chan sseEvent
	// leave closes the client's side of the stream.
	leave context.CancelFunc
}

// openEvents opens the event stream of order id and requires a stream.
func openEvents(t testing.TB, base, id string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/orders/"+id+"/events", nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err, "open the event stream")
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
	})
	require.Equal(t, http.StatusOK, resp.StatusCode, "stream status")
	c := &sseClient{resp: resp, events: make(chan sseEvent, 1024), leave: cancel}
	go c.read()
	return c
}

// read parses the stream strictly: any line but "id: ", "event: ",
// "data: " or ": " becomes an event named "malformed".
func (c *sseClient) read() {
	defer close(c.events)
	sc := bufio.NewScanner(c.resp.Body)
	var e sseEvent
	pending := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if pending {
				c.events <- e
			}
			e, pending = sseEvent{}, false
		case strings.HasPrefix(line, ": "):
			c.events <- sseEvent{Comment: strings.TrimPrefix(line, ": ")}
		case strings.HasPrefix(line, "id: "):
			e.ID, pending = strings.TrimPrefix(line, "id: "), true
		case strings.HasPrefix(line, "event: "):
			e.Event, pending = strings.TrimPrefix(line, "event: "), true
		case strings.HasPrefix(line, "data: ") && e.Data == "":
			e.Data, pending = strings.TrimPrefix(line, "data: "), true
		default:
			c.events <- sseEvent{Event: "malformed", Data: line}
		}
	}
	if pending {
		c.events <- sseEvent{Event: "malformed", Data: "unterminated event " + e.Event}
	}
}

// next returns the next event, comments included; false at the end of the
// stream.
func (c *sseClient) next(t testing.TB) (sseEvent, bool) {
	t.Helper()
	select {
	case e, ok := <-c.events:
		return e, ok
	case <-time.After(10 * time.Second):
		t.Fatal("no event and no end of stream within 10s")
		return sseEvent{}, false
	}
}

// nextEvent returns the next event, skipping comments, and requires one.
func (c *sseClient) nextEvent(t testing.TB) sseEvent {
	t.Helper()
	for {
		e, ok := c.next(t)
		require.True(t, ok, "the stream ended early")
		if e.Comment == "" {
			return e
		}
	}
}

// requireEnd requires the stream to end with no other event than comments.
func (c *sseClient) requireEnd(t testing.TB) {
	t.Helper()
	for {
		e, ok := c.next(t)
		if !ok {
			return
		}
		require.NotEmpty(t, e.Comment, "no event after the last one: %+v", e)
	}
}

// assertStatusEvent checks an event carrying the order id with status.
func assertStatusEvent(t testing.TB, e sseEvent, id, wantID, status string) {
	t.Helper()
	assert.Equal(t, gateway.EventStatus, e.Event, "event name")
	assert.Equal(t, wantID, e.ID, "event id")
	var o map[string]any
	if assert.NoError(t, json.Unmarshal([]byte(e.Data), &o), "data is the order as JSON: %s", e.Data) {
		assert.Equal(t, id, o["id"])
		assert.Equal(t, status, o["status"])
		for _, field := range []string{"userId", "total", "currency", "cancelReason", "createdAt", "updatedAt"} {
			assert.Contains(t, o, field, "the order is passed on whole")
		}
	}
}

func TestOrderEventsRejectBeforeStreaming(t *testing.T) {
	t.Parallel()
	orders := newLiveOrders(t)
	down := orders.add(events.StatusPendingPayment)
	orders.setDown(down, true)
	broken := newFakeService(t, map[string]http.HandlerFunc{
		"GET /api/orders/{id}": answer(http.StatusOK, "application/json", `{"id":"x"}`),
	})
	h := startGateway(t, orders.URL, closedURL(t))
	brokenGateway := startGateway(t, broken.URL, closedURL(t))
	unreachableGateway := startGateway(t, closedURL(t), closedURL(t))

	cases := []struct {
		name   string
		base   string
		id     string
		status int
		fields []string
	}{
		{"id not a UUID", h.URL, "42", http.StatusBadRequest, []string{"id"}},
		{"unknown order", h.URL, newUUID(), http.StatusNotFound, nil},
		{"order service unavailable", h.URL, down, http.StatusServiceUnavailable, nil},
		{"order service unreachable", unreachableGateway.URL, newUUID(), http.StatusServiceUnavailable, nil},
		{"order without a status", brokenGateway.URL, newUUID(), http.StatusBadGateway, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, body := do(t, tc.base, request{method: http.MethodGet, path: "/api/orders/" + tc.id + "/events",
				headers: http.Header{"Accept": {"text/event-stream"}}})
			assertProblem(t, resp, body, tc.status, tc.fields...)
		})
	}
}

func TestOrderEventsFollowStatusToOutcome(t *testing.T) {
	t.Parallel()
	orders := newLiveOrders(t)
	h := startGateway(t, orders.URL, closedURL(t), gateway.StreamOptions{PollInterval: 5 * time.Millisecond})

	for _, outcome := range []string{events.StatusPaid, events.StatusCancelled, events.StatusFailed} {
		t.Run(outcome, func(t *testing.T) {
			t.Parallel()
			id := orders.add(events.StatusPendingPayment)
			c := openEvents(t, h.URL, id)
			assert.Equal(t, "text/event-stream", c.resp.Header.Get("Content-Type"))
			assert.Equal(t, "no-cache", c.resp.Header.Get("Cache-Control"))

			assertStatusEvent(t, c.nextEvent(t), id, "1", events.StatusPendingPayment)
			// Answers whose updatedAt changed but not the status are no events.
			require.Eventually(t, func() bool { return orders.calls(id) >= 5 }, 5*time.Second, time.Millisecond, "the stream polls")
			orders.set(id, outcome)
			assertStatusEvent(t, c.nextEvent(t), id, "2", outcome)
			c.requireEnd(t)
		})
	}
	t.Run("already at its outcome", func(t *testing.T) {
		t.Parallel()
		id := orders.add(events.StatusCancelled)
		c := openEvents(t, h.URL, id)
		assertStatusEvent(t, c.nextEvent(t), id, "1", events.StatusCancelled)
		c.requireEnd(t)
		assert.Equal(t, 1, orders.calls(id), "no polling for an order at its outcome")
	})
}

func TestOrderEventsHeartbeat(t *testing.T) {
	t.Parallel()
	orders := newLiveOrders(t)
	h := startGateway(t, orders.URL, closedURL(t), gateway.StreamOptions{HeartbeatInterval: 20 * time.Millisecond})
	id := orders.add(events.StatusPendingPayment)
	c := openEvents(t, h.URL, id)
	assertStatusEvent(t, c.nextEvent(t), id, "1", events.StatusPendingPayment)
	for i := range 3 {
		e, ok := c.next(t)
		require.True(t, ok, "the stream goes on")
		assert.Equal(t, sseEvent{Comment: "heartbeat"}, e, "heartbeat %d", i)
	}
	orders.set(id, events.StatusPaid)
	assertStatusEvent(t, c.nextEvent(t), id, "2", events.StatusPaid) // heartbeats take no id
	c.requireEnd(t)
}

func TestOrderEventsStopPollingWhenClientLeaves(t *testing.T) {
	t.Parallel()
	orders := newLiveOrders(t)
	h := startGateway(t, orders.URL, closedURL(t), gateway.StreamOptions{PollInterval: 5 * time.Millisecond})
	id := orders.add(events.StatusPendingPayment)
	c := openEvents(t, h.URL, id)
	assertStatusEvent(t, c.nextEvent(t), id, "1", events.StatusPendingPayment)
	require.Eventually(t, func() bool { return orders.calls(id) >= 5 }, 5*time.Second, time.Millisecond, "the stream polls")

	c.leave()
	// Wait for the count of polls to hold still over 200 intervals, then
	// check it holds as long again: a stall of the stream's goroutine on a
	// loaded machine lasts far less than a second.
	var settled int
	require.Eventually(t, func() bool {
		before := orders.calls(id)
		time.Sleep(time.Second)
		settled = orders.calls(id)
		return settled == before
	}, 15*time.Second, time.Millisecond, "polling stops once the client left")
	time.Sleep(time.Second)
	assert.Equal(t, settled, orders.calls(id), "no poll after the client left")
}

func TestOrderEventsWhenOrderServiceFails(t *testing.T) {
	t.Parallel()
	t.Run("unreachable past the limit: error event", func(t *testing.T) {
		t.Parallel()
		orders := newLiveOrders(t)
		const limit = 400 * time.Millisecond
		h := startGateway(t, orders.URL, closedURL(t), gateway.StreamOptions{
			PollInterval: 10 * time.Millisecond, HeartbeatInterval: 50 * time.Millisecond, UnreachableLimit: limit})
		id := orders.add(events.StatusPendingPayment)
		// The limit runs from the last poll answered, which was after the
		// stream opened: the error event comes at least limit after that.
		opened := time.Now()
		c := openEvents(t, h.URL, id)
		assertStatusEvent(t, c.nextEvent(t), id, "1", events.StatusPendingPayment)

		orders.Close() // nothing listens any more
		heartbeats := 0
		var last sseEvent
		for {
			e, ok := c.next(t)
			require.True(t, ok, "the stream ends with an error event")
			if e.Comment == "heartbeat" {
				heartbeats++
				continue
			}
			last = e
			break
		}
		assert.GreaterOrEqual(t, time.Since(opened), limit, "the stream kept trying until the limit")
		assert.Positive(t, heartbeats, "heartbeats go on while the service is unreachable")
		assert.Equal(t, gateway.EventError, last.Event)
		assert.Equal(t, "2", last.ID)
		var p problem
		require.NoError(t, json.Unmarshal([]byte(last.Data), &p), "error data is a problem: %s", last.Data)
		assert.Equal(t, http.StatusServiceUnavailable, p.Status)
		assert.Contains(t, p.Detail, gateway.OrderService)
		c.requireEnd(t)
	})
	t.Run("back within the limit: the stream goes on", func(t *testing.T) {
		t.Parallel()
		orders := newLiveOrders(t)
		h := startGateway(t, orders.URL, closedURL(t), gateway.StreamOptions{
			PollInterval: 5 * time.Millisecond, UnreachableLimit: time.Minute})
		id := orders.add(events.StatusPendingPayment)
		c := openEvents(t, h.URL, id)
		assertStatusEvent(t, c.nextEvent(t), id, "1", events.StatusPendingPayment)

		orders.setDown(id, true)
		failed := orders.calls(id)
		require.Eventually(t, func() bool { return orders.calls(id) >= failed+5 }, 5*time.Second, time.Millisecond, "the stream keeps trying")
		orders.set(id, events.StatusPaid)
		orders.setDown(id, false)
		assertStatusEvent(t, c.nextEvent(t), id, "2", events.StatusPaid)
		c.requireEnd(t)
	})
}

func TestOrderEventsMaximumLifetime(t *testing.T) {
	t.Parallel()
	orders := newLiveOrders(t)
	const lifetime = 300 * time.Millisecond
	h := startGateway(t, orders.URL, closedURL(t), gateway.StreamOptions{MaxLifetime: lifetime})
	id := orders.add(events.StatusPendingPayment)
	start := time.Now()
	c := openEvents(t, h.URL, id)
	assertStatusEvent(t, c.nextEvent(t), id, "1", events.StatusPendingPayment)

	e := c.nextEvent(t)
	assert.GreaterOrEqual(t, time.Since(start), lifetime, "not before the maximum lifetime")
	assert.Equal(t, gateway.EventTimeout, e.Event)
	assert.Equal(t, "2", e.ID)
	var end struct {
		OrderID string `json:"orderId"`
		Detail  string `json:"detail"`
	}
	require.NoError(t, json.Unmarshal([]byte(e.Data), &end), "timeout data: %s", e.Data)
	assert.Equal(t, id, end.OrderID)
	assert.NotEmpty(t, end.Detail)
	c.requireEnd(t)
}

func TestOrderEventsEndAtShutdown(t *testing.T) {
	t.Parallel()
	orders := newLiveOrders(t)
	h := startGateway(t, orders.URL, closedURL(t))
	id := orders.add(events.StatusPendingPayment)
	c := openEvents(t, h.URL, id)
	assertStatusEvent(t, c.nextEvent(t), id, "1", events.StatusPendingPayment)
	h.Gateway.Shutdown()
	c.requireEnd(t)
}

func TestOrderEventsOutliveServerTimeouts(t *testing.T) {
	t.Parallel()
	orders := newLiveOrders(t)
	h := startGateway(t, orders.URL, closedURL(t), gateway.StreamOptions{
		HeartbeatInterval: 20 * time.Millisecond, MaxLifetime: 600 * time.Millisecond})
	// Timeouts far shorter than a stream: main has a ReadTimeout, and may
	// one day get a WriteTimeout.
	srv := httptest.NewUnstartedServer(h.Gateway.Handler())
	srv.Config.ReadTimeout = 100 * time.Millisecond
	srv.Config.WriteTimeout = 100 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)

	id := orders.add(events.StatusPendingPayment)
	c := openEvents(t, srv.URL, id)
	assertStatusEvent(t, c.nextEvent(t), id, "1", events.StatusPendingPayment)
	assert.Equal(t, gateway.EventTimeout, c.nextEvent(t).Event, "the stream lasts its lifetime")
	c.requireEnd(t)
}

func TestNewRejectsNegativeStreamTimes(t *testing.T) {
	t.Parallel()
	_, err := gateway.New(gateway.Options{
		Participants: []gateway.Participant{
			participantAt(t, gateway.OrderService, "http://127.0.0.1:3001"),
			participantAt(t, gateway.PaymentService, "http://127.0.0.1:3002"),
		},
		Stream: gateway.StreamOptions{PollInterval: -1, MaxLifetime: -time.Second}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "poll interval")
	assert.Contains(t, err.Error(), "maximum lifetime")
	assert.NotContains(t, err.Error(), "heartbeat", "a zero interval takes its default")
}
