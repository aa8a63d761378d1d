package bench

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Error kinds, as they appear in reports.
const (
	ErrNon202       = "non_202"         // the gateway answered something else (suffixed with the status)
	ErrPostTimeout  = "post_timeout"    // no answer within -post-timeout
	ErrTransport    = "transport"       // connection refused, reset…
	ErrBadBody      = "bad_202_body"    // a 202 without an orderId
	ErrOverload     = "client_overload" // open loop: -max-inflight POSTs already waiting, this one not sent
	ErrNotFinal     = "saga_not_final"  // accepted but no final event before the deadline
	ErrOutcome      = "outcome_"        // prefix: final, but not PAID (outcome_cancelled, outcome_failed)
	ErrDuplicateID  = "duplicate_order_id"
	outcomePaid     = "paid"
	histogramMaxUS  = int64(10 * time.Minute / time.Microsecond)
	histogramDigits = 3
)

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, histogramMaxUS, histogramDigits)
}

func record(h *hdrhistogram.Histogram, d time.Duration) {
	us := d.Microseconds()
	us = max(us, 1)
	us = min(us, histogramMaxUS)
	_ = h.RecordValue(us) // cannot fail: clamped to the trackable range
}

// Latency summarises a histogram, in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
	Mean  float64 `json:"mean_ms"`
}

// Summarize reads the percentiles of a histogram of microseconds.
func Summarize(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Latency{
		Count: h.TotalCount(),
		P50:   ms(h.ValueAtQuantile(50)),
		P90:   ms(h.ValueAtQuantile(90)),
		P99:   ms(h.ValueAtQuantile(99)),
		Max:   ms(h.Max()),
		Mean:  h.Mean() / 1000,
	}
}

// Recorder collects one step's figures. Latencies are recorded only for
// orders whose origin (the intended send time) lies in the measured
// window; throughput counts final events that arrive in the window.
type Recorder struct {
	mu          sync.Mutex
	windowStart time.Time
	windowEnd   time.Time
	closed      bool

	posted, accepted, windowAccepted int
	finals, paid, windowFinals, late int
	lastFinal                        time.Time
	errors                           map[string]int
	post, final, lag                 *hdrhistogram.Histogram
}

// NewRecorder returns a recorder measuring [windowStart, windowEnd).
func NewRecorder(windowStart, windowEnd time.Time) *Recorder {
	return &Recorder{
		windowStart: windowStart, windowEnd: windowEnd,
		errors: map[string]int{},
		post:   newHistogram(), final: newHistogram(), lag: newHistogram(),
	}
}

func (r *Recorder) inWindow(t time.Time) bool {
	return !t.Before(r.windowStart) && t.Before(r.windowEnd)
}

// PostFailed counts a POST that did not yield an accepted order.
func (r *Recorder) PostFailed(kind string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.posted++
	r.errors[kind]++
}

// Lag records how late the open loop sent a request behind its schedule.
func (r *Recorder) Lag(origin time.Time, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inWindow(origin) {
		record(r.lag, d)
	}
}

func (r *Recorder) postAccepted(origin, answered time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.posted++
	r.accepted++
	if r.inWindow(origin) {
		r.windowAccepted++
		record(r.post, answered.Sub(origin))
	}
}

func (r *Recorder) finalArrived(origin, at time.Time, outcome string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		r.late++
		return
	}
	r.finals++
	if at.After(r.lastFinal) {
		r.lastFinal = at
	}
	if outcome == outcomePaid {
		r.paid++
	} else {
		r.errors[ErrOutcome+outcome]++
	}
	if r.inWindow(at) {
		r.windowFinals++
	}
	if r.inWindow(origin) {
		record(r.final, at.Sub(origin))
	}
}

// LastFinal is the arrival time of the latest final event counted.
func (r *Recorder) LastFinal() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastFinal
}

// Outstanding is the number of accepted orders without a final event yet.
func (r *Recorder) Outstanding() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.accepted - r.finals
}

// WaitFinal waits until every accepted order has its final event, the
// deadline passes, or ctx ends; it polls the recorder, never the system.
func (r *Recorder) WaitFinal(ctx context.Context, deadline time.Time) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for r.Outstanding() > 0 && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Counts are a step's order accounting: Posted = Accepted + the POST
// errors, and Accepted = Finals + Unfinished.
type Counts struct {
	Posted         int            `json:"posted"`
	Accepted       int            `json:"accepted"`
	WindowAccepted int            `json:"window_accepted"`
	Finals         int            `json:"finals"`
	Paid           int            `json:"paid"`
	WindowFinals   int            `json:"window_finals"`
	Unfinished     int            `json:"unfinished"`
	LateFinals     int            `json:"late_finals"`
	Errors         map[string]int `json:"errors"`
}

// ErrorTotal is the number of orders that went wrong in any way.
func (c Counts) ErrorTotal() int {
	n := 0
	for _, v := range c.Errors {
		n += v
	}
	return n
}

// Close ends the step: accepted orders without a final event now count as
// ErrNotFinal, and later finals only as late.
func (r *Recorder) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.closed = true
	if n := r.accepted - r.finals; n > 0 {
		r.errors[ErrNotFinal] += n
	}
}

// Snapshot returns the counts and latency summaries so far.
func (r *Recorder) Snapshot() (c Counts, post, final, lag Latency) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c = Counts{
		Posted: r.posted, Accepted: r.accepted, WindowAccepted: r.windowAccepted,
		Finals: r.finals, Paid: r.paid, WindowFinals: r.windowFinals,
		Unfinished: r.accepted - r.finals, LateFinals: r.late,
		Errors: maps.Clone(r.errors),
	}
	return c, Summarize(r.post), Summarize(r.final), Summarize(r.lag)
}

// Tracker pairs each accepted order with its first final event. Either may
// come first: the order service can publish order.paid before the client
// has parsed the gateway's 202.
type Tracker struct {
	mu         sync.Mutex
	orders     map[string]*order
	duplicates int
}

type order struct {
	rec     *Recorder // nil until the 202 is parsed
	origin  time.Time
	final   time.Time // zero until the first final event
	outcome string
	done    chan struct{}
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker { return &Tracker{orders: map[string]*order{}} }

// Accepted records a 202 for id, sent at origin (the intended send time)
// and answered at answered, as part of rec's step. The channel is closed
// when the order's final event has arrived (maybe already).
func (t *Tracker) Accepted(id string, rec *Recorder, origin, answered time.Time) <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	o := t.orders[id]
	if o == nil {
		o = &order{done: make(chan struct{})}
		t.orders[id] = o
	} else if o.rec != nil {
		// Two 202s with one id: only possible with idempotency keys, which
		// the generator never sends.
		rec.PostFailed(ErrDuplicateID)
		return o.done
	}
	o.rec, o.origin = rec, origin
	rec.postAccepted(origin, answered)
	if !o.final.IsZero() {
		rec.finalArrived(origin, o.final, o.outcome)
	}
	return o.done
}

// Final records a final event (outcome paid, cancelled or failed) of
// order id that arrived at at. Only the first one per order counts.
func (t *Tracker) Final(id, outcome string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	o := t.orders[id]
	if o == nil {
		o = &order{done: make(chan struct{})}
		t.orders[id] = o
	}
	if !o.final.IsZero() {
		t.duplicates++
		return
	}
	o.final, o.outcome = at, outcome
	close(o.done)
	if o.rec != nil {
		o.rec.finalArrived(o.origin, at, outcome)
	}
}

// Strays reports final events of orders no 202 was seen for (a POST that
// timed out or got a 503 may still have taken effect), and repeated final
// events of one order.
func (t *Tracker) Strays() (unattributed, duplicates int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, o := range t.orders {
		if o.rec == nil {
			unattributed++
		}
	}
	return unattributed, t.duplicates
}
