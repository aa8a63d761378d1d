package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ordersaga/ordersaga/libs/gatewayclient"
)

// Poster sends POST /api/orders to the gateway, through the client
// generated from its OpenAPI document.
type Poster struct {
	client  *http.Client
	api     *gatewayclient.ClientWithResponses
	timeout time.Duration
}

// NewPoster returns a poster whose client keeps up to idle connections to
// the gateway open, so that a run measures requests, not TCP handshakes.
func NewPoster(gatewayURL string, idle int, timeout time.Duration) (*Poster, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = idle
	tr.MaxIdleConnsPerHost = idle
	tr.MaxConnsPerHost = 0
	client := &http.Client{Transport: tr}
	api, err := gatewayclient.NewClientWithResponses(gatewayURL, gatewayclient.WithHTTPClient(client))
	if err != nil {
		return nil, fmt.Errorf("gateway client of %s: %w", gatewayURL, err)
	}
	return &Poster{client: client, api: api, timeout: timeout}, nil
}

// Close closes idle connections.
func (p *Poster) Close() { p.client.CloseIdleConnections() }

// postResult is one POST's outcome: an order id, or an error kind.
type postResult struct {
	orderID  string
	answered time.Time
	errKind  string
	err      error
}

// TotalOrder is the body of an order placed with a total, of a fresh user,
// paid with the default test card: no inventory step.
func TotalOrder() gatewayclient.NewOrder {
	total, currency, user := int64(4200), "USD", uuid.New()
	return gatewayclient.NewOrder{UserId: &user, Total: &total, Currency: &currency}
}

// Post creates one order, of body. The request is sent and its answer
// parsed in two steps, so that a 202 whose body does not parse counts as
// ErrBadBody, not as a transport error.
func (p *Poster) Post(ctx context.Context, body gatewayclient.NewOrder) postResult {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	raw, err := p.api.CreateOrder(ctx, nil, body)
	if err != nil {
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			return postResult{errKind: ErrPostTimeout, err: err}
		}
		return postResult{errKind: ErrTransport, err: err}
	}
	// Parsing reads the body to EOF, which lets the connection be reused,
	// and closes it; closing it again is harmless.
	defer raw.Body.Close()
	resp, err := gatewayclient.ParseCreateOrderResponse(raw)
	answered := time.Now()
	if err != nil {
		if raw.StatusCode == http.StatusAccepted {
			return postResult{errKind: ErrBadBody, err: fmt.Errorf("POST /api/orders: 202 body: %w", err)}
		}
		return postResult{errKind: ErrTransport, err: err}
	}
	if resp.StatusCode() != http.StatusAccepted {
		return postResult{errKind: ErrNon202 + "_" + strconv.Itoa(resp.StatusCode()), err: fmt.Errorf("POST /api/orders: %s: %.200s", raw.Status, resp.Body)}
	}
	if resp.JSON202 == nil || resp.JSON202.OrderId == uuid.Nil {
		return postResult{errKind: ErrBadBody, err: fmt.Errorf("POST /api/orders: 202 body %.200q", resp.Body)}
	}
	return postResult{orderID: resp.JSON202.OrderId.String(), answered: answered}
}

// errorLog keeps the first few POST errors of a run, for the report.
type errorLog struct {
	mu    sync.Mutex
	first []string
}

func (l *errorLog) add(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.first) < 5 {
		l.first = append(l.first, err.Error())
	}
}

func (l *errorLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.first...)
}

// load drives the gateway and feeds the tracker.
type load struct {
	poster  *Poster
	tracker *Tracker
	errs    *errorLog
	// body makes each order's body: TotalOrder, or a Catalogue's orders
	// with items.
	body func() gatewayclient.NewOrder
}

// one sends one POST whose latency counts from origin, and registers the
// accepted order; it returns the channel closed at the order's final
// event, or nil.
func (l *load) one(ctx context.Context, rec *Recorder, origin time.Time) <-chan struct{} {
	res := l.poster.Post(ctx, l.body())
	if res.errKind != "" {
		if ctx.Err() != nil {
			// Cut off by the end of the run, not the system's fault; still
			// counted so that the sums hold.
			rec.PostFailed("cancelled")
			return nil
		}
		rec.PostFailed(res.errKind)
		l.errs.add(res.err)
		return nil
	}
	return l.tracker.Accepted(res.orderID, rec, origin, res.answered)
}

// closedLoop runs workers that each POST an order, wait for its final
// event (at most sagaTimeout), and repeat until end.
func (l *load) closedLoop(ctx context.Context, rec *Recorder, workers int, end time.Time, sagaTimeout time.Duration) {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(end) {
				origin := time.Now()
				done := l.one(ctx, rec, origin)
				if done == nil {
					// Do not spin on a failing gateway.
					sleepCtx(ctx, 10*time.Millisecond)
					continue
				}
				t := time.NewTimer(sagaTimeout)
				select {
				case <-done:
				case <-t.C:
				case <-ctx.Done():
				}
				t.Stop()
			}
		})
	}
	wg.Wait()
}

// openLoop sends POSTs at a fixed rate from start until end, each on its
// own goroutine, never waiting for earlier ones: the schedule, not the
// system, decides when a request goes out. Latency counts from the
// intended send time, so a stall of the system or of the generator shows
// as latency instead of being left out (coordinated omission). At most
// maxInflight POSTs wait at once; beyond that a send is counted as
// ErrOverload.
func (l *load) openLoop(ctx context.Context, rec *Recorder, rate float64, start, end time.Time, maxInflight int) {
	interval := time.Duration(float64(time.Second) / rate)
	sem := make(chan struct{}, maxInflight)
	var wg sync.WaitGroup
	for i := 0; ctx.Err() == nil; i++ {
		origin := start.Add(time.Duration(i) * interval)
		if !origin.Before(end) {
			break
		}
		if d := time.Until(origin); d > 0 {
			sleepCtx(ctx, d)
		}
		select {
		case sem <- struct{}{}:
		default:
			rec.PostFailed(ErrOverload)
			continue
		}
		rec.Lag(origin, time.Since(origin))
		wg.Go(func() {
			defer func() { <-sem }()
			l.one(ctx, rec, origin)
		})
	}
	wg.Wait()
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
