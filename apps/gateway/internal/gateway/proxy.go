package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ordersaga/ordersaga/libs/web"
)

// maxUpstreamBody bounds what the gateway buffers of one upstream answer;
// the largest legitimate one is a page of 100 items.
const maxUpstreamBody = 8 << 20

// upstream is one service the gateway forwards queries to.
type upstream struct {
	name   string
	base   string
	client *http.Client
}

// response is an upstream answer, read in full so that a failure while
// reading becomes a clean error rather than a truncated answer.
type response struct {
	status      int
	contentType string
	header      http.Header
	body        []byte
}

// upstreamError is a failed call to a service: unreachable or timed out
// (status 0), or answered with a server error.
type upstreamError struct {
	service string
	status  int
	err     error
}

func (e *upstreamError) Error() string {
	if e.status == 0 {
		return fmt.Sprintf("%s unavailable: %v", e.service, e.err)
	}
	return fmt.Sprintf("%s answered %d: %v", e.service, e.status, e.err)
}

// unavailable reports whether the service could not serve at all: not
// reachable, or saying so itself (503: its database is down, say).
func (e *upstreamError) unavailable() bool {
	return e.status == 0 || e.status == http.StatusServiceUnavailable
}

func (e *upstreamError) Unwrap() []error {
	if e.unavailable() {
		return []error{ErrUnavailable, e.err}
	}
	return []error{ErrBadGateway, e.err}
}

type requestIDKey struct{}

// withRequestID returns ctx carrying the request id to pass upstream.
func withRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// get calls GET path?rawQuery on the service. A transport failure or a 5xx
// answer is an *upstreamError; any other answer is returned as it is.
func (u upstream) get(ctx context.Context, path, rawQuery string) (response, error) {
	return u.send(ctx, http.MethodGet, path, rawQuery, nil, nil)
}

// send calls method path?rawQuery on the service with header and body (nil:
// none), as get does.
func (u upstream) send(ctx context.Context, method, path, rawQuery string, header http.Header, body []byte) (response, error) {
	target := u.base + path
	if rawQuery != "" {
		target += "?" + rawQuery
	}
	var reqBody io.Reader
	if body != nil {
		reqBody = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, reqBody)
	if err != nil {
		return response{}, fmt.Errorf("%s: build request: %w", u.name, err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", "application/json")
	if id, _ := ctx.Value(requestIDKey{}).(string); id != "" {
		req.Header.Set(web.RequestIDHeader, id)
	}
	resp, err := u.client.Do(req)
	if err != nil {
		return response{}, &upstreamError{service: u.name, err: unwrapURLError(err)}
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, maxUpstreamBody+1))
	if err != nil {
		return response{}, &upstreamError{service: u.name, err: fmt.Errorf("read answer: %w", unwrapURLError(err))}
	}
	if len(respBody) > maxUpstreamBody {
		return response{}, &upstreamError{service: u.name, status: resp.StatusCode,
			err: fmt.Errorf("answer over %d bytes", maxUpstreamBody)}
	}
	if resp.StatusCode >= 500 {
		return response{}, &upstreamError{service: u.name, status: resp.StatusCode, err: errors.New(http.StatusText(resp.StatusCode))}
	}
	return response{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), header: resp.Header, body: respBody}, nil
}

// getJSON calls GET path and decodes a 200 answer into out. A 404 is
// ErrNotFound; any other answer is an *upstreamError.
func (u upstream) getJSON(ctx context.Context, path string, out any) error {
	resp, err := u.get(ctx, path, "")
	if err != nil {
		return err
	}
	switch resp.status {
	case http.StatusOK:
	case http.StatusNotFound:
		return ErrNotFound
	default:
		return &upstreamError{service: u.name, status: resp.status, err: errors.New("unexpected answer")}
	}
	if err := json.Unmarshal(resp.body, out); err != nil {
		return &upstreamError{service: u.name, status: resp.status, err: fmt.Errorf("decode answer: %w", err)}
	}
	return nil
}

// check is the readiness check of the service: its /healthz answers 200.
func (u upstream) check(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.base+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := u.client.Do(req)
	if err != nil {
		return unwrapURLError(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz answered %d", resp.StatusCode)
	}
	return nil
}

// unwrapURLError drops the method and URL *url.Error adds: problems and
// readiness name the service instead of exposing its address.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Timeline is the merged history of one order's saga.
type Timeline struct {
	OrderID uuid.UUID         `json:"orderId"`
	Events  []json.RawMessage `json:"events"`
}

// timelineAnswer is what each service answers for a timeline. Events stay
// raw so that fields the gateway does not know pass through unchanged.
type timelineAnswer struct {
	Events []json.RawMessage `json:"events"`
}

// Timeline returns every command and event of order id recorded by any
// participant, in time order. ErrNotFound when the order service does not
// know the order. A participant that cannot answer fails the whole timeline
// (503 or 502, naming it) rather than leaving a gap nobody would notice.
func (g *Gateway) Timeline(ctx context.Context, id uuid.UUID) (Timeline, error) {
	answers := make([]timelineAnswer, len(g.participants))
	errs := make([]error, len(g.participants))
	var wg sync.WaitGroup
	for i, p := range g.participants {
		if p.timeline == NoTimeline {
			continue
		}
		wg.Go(func() {
			errs[i] = p.getJSON(ctx, strings.Replace(p.timeline, "{id}", id.String(), 1), &answers[i])
		})
	}
	wg.Wait()
	// The order service's answer decides whether the order exists, whatever
	// the others said.
	for i, p := range g.participants {
		if p.name == OrderService && errors.Is(errs[i], ErrNotFound) {
			return Timeline{}, fmt.Errorf("order %s: %w", id, ErrNotFound)
		}
	}
	var events []timedEvent
	for i, p := range g.participants {
		// A participant may not have heard of the order yet: no events.
		if err := errs[i]; err != nil && !errors.Is(err, ErrNotFound) {
			return Timeline{}, err
		}
		more, err := timed(p.name, answers[i].Events)
		if err != nil {
			return Timeline{}, err
		}
		events = append(events, more...)
	}
	// Stable: events at the same instant keep the participants' order.
	slices.SortStableFunc(events, func(a, b timedEvent) int { return a.at.Compare(b.at) })
	merged := make([]json.RawMessage, len(events))
	for i, e := range events {
		merged[i] = e.raw
	}
	return Timeline{OrderID: id, Events: merged}, nil
}

// timedEvent is a timeline event with its time read.
type timedEvent struct {
	at  time.Time
	raw json.RawMessage
}

func timed(service string, raws []json.RawMessage) ([]timedEvent, error) {
	out := make([]timedEvent, 0, len(raws))
	for _, raw := range raws {
		var e struct {
			At time.Time `json:"at"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, &upstreamError{service: service, status: http.StatusOK, err: fmt.Errorf("timeline event: %w", err)}
		}
		out = append(out, timedEvent{e.At, raw})
	}
	return out, nil
}
