package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/web"
)

// Order event streams: GET /api/orders/{id}/events (contract §2) sends the
// order as Server-Sent Events, one per status change, until the saga's
// outcome. The gateway has no database and no subscription to the events:
// it polls the order service, whose answer is one indexed lookup.

// Defaults of StreamOptions.
const (
	DefaultPollInterval      = 100 * time.Millisecond
	DefaultHeartbeatInterval = 15 * time.Second
	DefaultUnreachableLimit  = 2 * time.Minute
	DefaultMaxLifetime       = 10 * time.Minute
)

// Names of the events of an order event stream.
const (
	// EventStatus carries the order, at once and after each status change.
	EventStatus = "status"
	// EventError ends a stream whose order service stayed unreachable.
	EventError = "error"
	// EventTimeout ends a stream that reached its maximum lifetime.
	EventTimeout = "timeout"
)

// EventStreamContentType is the media type of an order event stream.
const EventStreamContentType = "text/event-stream"

// StreamOptions time the order event streams; a zero field takes its
// default.
type StreamOptions struct {
	// PollInterval is how often the order service is asked for the order
	// (DefaultPollInterval).
	PollInterval time.Duration
	// HeartbeatInterval is how often a comment tells the client, and any
	// proxy on the way, that a quiet stream is alive (DefaultHeartbeatInterval).
	HeartbeatInterval time.Duration
	// UnreachableLimit is how long polls may fail in a row before the
	// stream gives up with an error event (DefaultUnreachableLimit).
	UnreachableLimit time.Duration
	// MaxLifetime bounds a stream, which then ends with a timeout event
	// (DefaultMaxLifetime).
	MaxLifetime time.Duration
}

// withDefaults fills in the zero fields and rejects negative ones.
func (o StreamOptions) withDefaults() (StreamOptions, error) {
	var errs []error
	for _, f := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"poll interval", &o.PollInterval, DefaultPollInterval},
		{"heartbeat interval", &o.HeartbeatInterval, DefaultHeartbeatInterval},
		{"unreachable limit", &o.UnreachableLimit, DefaultUnreachableLimit},
		{"maximum lifetime", &o.MaxLifetime, DefaultMaxLifetime},
	} {
		switch {
		case *f.v < 0:
			errs = append(errs, fmt.Errorf("stream %s %s: must not be negative", f.name, *f.v))
		case *f.v == 0:
			*f.v = f.def
		}
	}
	return o, errors.Join(errs...)
}

// orderState is an order as the order service answers it.
type orderState struct {
	status string
	// json is the whole order on one line, with every field the service
	// sends, known to the gateway or not.
	json []byte
}

// order returns order id from the order service: ErrNotFound when it does
// not know it, an *upstreamError when it does not answer sensibly.
func (g *Gateway) order(ctx context.Context, id uuid.UUID) (orderState, error) {
	var raw json.RawMessage
	if err := g.orders.getJSON(ctx, "/api/orders/"+id.String(), &raw); err != nil {
		if errors.Is(err, ErrNotFound) {
			return orderState{}, fmt.Errorf("order %s: %w", id, ErrNotFound)
		}
		return orderState{}, err
	}
	var o struct {
		Status string `json:"status"`
	}
	var line bytes.Buffer
	if err := json.Unmarshal(raw, &o); err != nil || o.Status == "" {
		return orderState{}, &upstreamError{service: OrderService, status: http.StatusOK, err: fmt.Errorf("order %s: no status in %.100q", id, raw)}
	}
	// An SSE data line ends at a newline: compact JSON has none.
	if err := json.Compact(&line, raw); err != nil {
		return orderState{}, &upstreamError{service: OrderService, status: http.StatusOK, err: fmt.Errorf("order %s: %w", id, err)}
	}
	return orderState{status: o.Status, json: line.Bytes()}, nil
}

// streamEnd is the data of a timeout event; an error event's is a problem.
type streamEnd struct {
	OrderID uuid.UUID `json:"orderId"`
	Detail  string    `json:"detail"`
}

// orderEvents is GET /api/orders/{id}/events. Whether the order exists is
// decided before the stream starts, so that an unknown order is a plain 404.
func (g *Gateway) orderEvents(c *gin.Context) {
	id, ok := orderID(c, "id")
	if !ok {
		return
	}
	ctx := requestContext(c)
	current, err := g.order(ctx, id)
	if err != nil {
		g.fail(c, err)
		return
	}

	// A server's WriteTimeout, should it get one, is meant for ordinary
	// answers, not for a stream. (Its ReadTimeout does not matter: the
	// server clears it once the request is read.)
	_ = http.NewResponseController(c.Writer).SetWriteDeadline(time.Time{})
	h := c.Writer.Header()
	h.Set("Content-Type", EventStreamContentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx would buffer the stream
	c.Status(http.StatusOK)
	if web.IsHead(c) {
		return // the headers are the whole answer; a stream would hold the connection
	}
	s := &eventStream{w: c.Writer}

	if !s.event(EventStatus, current.json) || events.SagaFinished(current.status) {
		return
	}
	poll := time.NewTicker(g.stream.PollInterval)
	defer poll.Stop()
	heartbeat := time.NewTicker(g.stream.HeartbeatInterval)
	defer heartbeat.Stop()
	lifetime := time.NewTimer(g.stream.MaxLifetime)
	defer lifetime.Stop()
	lastAnswer := time.Now()
	for {
		select {
		case <-ctx.Done():
			return // the client went away
		case <-g.closing:
			return // the server shuts down; a client reconnecting gets the order at once
		case <-lifetime.C:
			s.end(EventTimeout, streamEnd{OrderID: id,
				Detail: fmt.Sprintf("the stream reached its maximum lifetime of %s; reconnect to follow the order further", g.stream.MaxLifetime)})
			return
		case <-heartbeat.C:
			if !s.comment("heartbeat") {
				return
			}
		case <-poll.C:
			next, err := g.order(ctx, id)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				if time.Since(lastAnswer) < g.stream.UnreachableLimit {
					continue // heartbeats go on meanwhile
				}
				g.log.WarnContext(ctx, "order event stream gave up", "error", err, "order_id", id.String(),
					"request_id", c.GetString(web.RequestIDHeader))
				s.end(EventError, web.NewProblem(http.StatusServiceUnavailable,
					fmt.Sprintf("%s did not answer for %s; reconnect to follow the order further", OrderService, g.stream.UnreachableLimit)))
				return
			}
			lastAnswer = time.Now()
			if next.status == current.status {
				continue
			}
			current = next
			if !s.event(EventStatus, current.json) || events.SagaFinished(current.status) {
				return
			}
		}
	}
}

// eventStream writes Server-Sent Events, each flushed at once, with ids
// counting from 1 in each stream.
type eventStream struct {
	w    gin.ResponseWriter
	last int
}

// event writes one event whose data is a line of JSON. It returns false
// when the client can no longer be written to.
func (s *eventStream) event(name string, data []byte) bool {
	s.last++
	if _, err := fmt.Fprintf(s.w, "id: %d\nevent: %s\ndata: %s\n\n", s.last, name, data); err != nil {
		return false
	}
	s.w.Flush()
	return true
}

// end writes the last event of a stream, with v as its data.
func (s *eventStream) end(name string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		return // plain structs: cannot happen
	}
	s.event(name, data)
}

// comment writes a comment line, which clients ignore.
func (s *eventStream) comment(text string) bool {
	if _, err := fmt.Fprintf(s.w, ": %s\n\n", text); err != nil {
		return false
	}
	s.w.Flush()
	return true
}
