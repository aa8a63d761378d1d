package bench

import (
	"context"
	"maps"
	"slices"
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
	paid                             int
	finals                           arrivals
	errors                           map[string]int
	post, final, lag                 *hdrhistogram.Histogram

	// The invoice.issued of the step's paid orders (with invoices).
	invoices   arrivals
	invoiceLag *hdrhistogram.Histogram // PAID → invoice.issued
	invoiceIDs []string                // the first few
}

// arrivals counts the events of one kind of a step's orders: all of
// them, those in the window, those after the step closed, and when the
// last one came.
type arrivals struct {
	n, window, late int
	last            time.Time
}

// add counts an event that arrived at at, and says whether the step still
// counts it (false: it came after Close, a late one).
func (a *arrivals) add(r *Recorder, at time.Time) bool {
	if r.closed {
		a.late++
		return false
	}
	a.n++
	if at.After(a.last) {
		a.last = at
	}
	if r.inWindow(at) {
		a.window++
	}
	return true
}

// keptInvoiceIDs is how many invoice ids a step keeps, for its PDFs.
const keptInvoiceIDs = 20

// NewRecorder returns a recorder measuring [windowStart, windowEnd).
func NewRecorder(windowStart, windowEnd time.Time) *Recorder {
	return &Recorder{
		windowStart: windowStart, windowEnd: windowEnd,
		errors: map[string]int{},
		post:   newHistogram(), final: newHistogram(), lag: newHistogram(), invoiceLag: newHistogram(),
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
	if !r.finals.add(r, at) {
		return
	}
	if outcome == outcomePaid {
		r.paid++
	} else {
		r.errors[ErrOutcome+outcome]++
	}
	if r.inWindow(origin) {
		record(r.final, at.Sub(origin))
	}
}

// invoiceArrived counts the invoice.issued of a paid order sent at origin
// whose order.paid arrived at paid.
func (r *Recorder) invoiceArrived(origin, paid, at time.Time, invoiceID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.invoices.add(r, at) {
		return
	}
	if len(r.invoiceIDs) < keptInvoiceIDs {
		r.invoiceIDs = append(r.invoiceIDs, invoiceID)
	}
	if r.inWindow(origin) {
		record(r.invoiceLag, at.Sub(paid))
	}
}

// LastInvoice is the arrival time of the latest invoice.issued counted.
func (r *Recorder) LastInvoice() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.invoices.last
}

// InvoiceIDs are the first invoices issued for the step's orders.
func (r *Recorder) InvoiceIDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.invoiceIDs)
}

// LastFinal is the arrival time of the latest final event counted.
func (r *Recorder) LastFinal() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.finals.last
}

// Outstanding is the number of accepted orders without a final event yet.
func (r *Recorder) Outstanding() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.accepted - r.finals.n
}

// Uninvoiced is the number of paid orders without an invoice.issued yet.
func (r *Recorder) Uninvoiced() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.paid - r.invoices.n
}

// WaitFinal waits until every accepted order has its final event, the
// deadline passes, or ctx ends; it polls the recorder, never the system.
func (r *Recorder) WaitFinal(ctx context.Context, deadline time.Time) {
	r.waitFor(ctx, deadline, r.Outstanding)
}

// WaitInvoices waits likewise until every paid order has its invoice.
func (r *Recorder) WaitInvoices(ctx context.Context, deadline time.Time) {
	r.waitFor(ctx, deadline, r.Uninvoiced)
}

// waitFor polls left until it is 0, the deadline passes or ctx ends.
func (r *Recorder) waitFor(ctx context.Context, deadline time.Time, left func() int) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for left() > 0 && time.Now().Before(deadline) {
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
	if n := r.accepted - r.finals.n; n > 0 {
		r.errors[ErrNotFinal] += n
	}
}

// Invoices are a step's invoice accounting: Paid = Invoiced + Uninvoiced.
type Invoices struct {
	Paid       int `json:"paid"`
	Invoiced   int `json:"invoiced"`
	Uninvoiced int `json:"uninvoiced"`
	// WindowInvoiced are the invoice.issued that arrived in the window.
	WindowInvoiced int `json:"window_invoiced"`
	LateInvoices   int `json:"late_invoices"`
	// PerSec is WindowInvoiced ÷ the window (the drain's invoices/s in
	// the invoice-backlog step).
	PerSec float64 `json:"invoices_per_sec"`
	// Lag runs from an order's order.paid to its invoice.issued, both as
	// they reached the listener.
	Lag Latency `json:"paid_to_invoice_lag"`
}

// InvoiceSnapshot returns the invoice accounting so far, for a window of
// windowSec seconds.
func (r *Recorder) InvoiceSnapshot(windowSec float64) *Invoices {
	r.mu.Lock()
	defer r.mu.Unlock()
	v := &Invoices{
		Paid: r.paid, Invoiced: r.invoices.n, Uninvoiced: r.paid - r.invoices.n,
		WindowInvoiced: r.invoices.window, LateInvoices: r.invoices.late, Lag: Summarize(r.invoiceLag),
	}
	if windowSec > 0 {
		v.PerSec = float64(r.invoices.window) / windowSec
	}
	return v
}

// Snapshot returns the counts and latency summaries so far.
func (r *Recorder) Snapshot() (c Counts, post, final, lag Latency) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c = Counts{
		Posted: r.posted, Accepted: r.accepted, WindowAccepted: r.windowAccepted,
		Finals: r.finals.n, Paid: r.paid, WindowFinals: r.finals.window,
		Unfinished: r.accepted - r.finals.n, LateFinals: r.finals.late,
		Errors: maps.Clone(r.errors),
	}
	return c, Summarize(r.post), Summarize(r.final), Summarize(r.lag)
}

// Tracker pairs each accepted order with its first final event. Either may
// come first: the order service can publish order.paid before the client
// has parsed the gateway's 202.
type Tracker struct {
	mu                       sync.Mutex
	orders                   map[string]*order
	duplicates, dupeInvoices int
}

type order struct {
	rec       *Recorder // nil until the 202 is parsed
	origin    time.Time
	final     time.Time // zero until the first final event
	outcome   string
	invoice   time.Time // zero until its first invoice.issued
	invoiceID string
	done      chan struct{}
}

// get returns the order id, new if it was not seen yet.
func (t *Tracker) get(id string) *order {
	o := t.orders[id]
	if o == nil {
		o = &order{done: make(chan struct{})}
		t.orders[id] = o
	}
	return o
}

// reportInvoice tells the order's step of its invoice once the order is
// accepted, paid and invoiced, in whatever order the three were seen.
func (o *order) reportInvoice() {
	if o.rec != nil && o.outcome == outcomePaid && !o.invoice.IsZero() {
		o.rec.invoiceArrived(o.origin, o.final, o.invoice, o.invoiceID)
	}
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker { return &Tracker{orders: map[string]*order{}} }

// Accepted records a 202 for id, sent at origin (the intended send time)
// and answered at answered, as part of rec's step. The channel is closed
// when the order's final event has arrived (maybe already).
func (t *Tracker) Accepted(id string, rec *Recorder, origin, answered time.Time) <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	o := t.get(id)
	if o.rec != nil {
		// Two 202s with one id: only possible with idempotency keys, which
		// the generator never sends.
		rec.PostFailed(ErrDuplicateID)
		return o.done
	}
	o.rec, o.origin = rec, origin
	rec.postAccepted(origin, answered)
	if !o.final.IsZero() {
		rec.finalArrived(origin, o.final, o.outcome)
		o.reportInvoice()
	}
	return o.done
}

// Final records a final event (outcome paid, cancelled or failed) of
// order id that arrived at at. Only the first one per order counts.
func (t *Tracker) Final(id, outcome string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	o := t.get(id)
	if !o.final.IsZero() {
		t.duplicates++
		return
	}
	o.final, o.outcome = at, outcome
	close(o.done)
	if o.rec != nil {
		o.rec.finalArrived(o.origin, at, outcome)
		o.reportInvoice()
	}
}

// Invoice records an invoice.issued of order id that arrived at at. Only
// the first one per order counts, and only for a paid order.
func (t *Tracker) Invoice(id, invoiceID string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	o := t.get(id)
	if !o.invoice.IsZero() {
		t.dupeInvoices++
		return
	}
	o.invoice, o.invoiceID = at, invoiceID
	o.reportInvoice()
}

// Strays reports final events of orders no 202 was seen for (a POST that
// timed out or got a 503 may still have taken effect), and repeated final
// events of one order.
func (t *Tracker) Strays() (unattributed, duplicates int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.count(func(o *order) bool { return o.rec == nil && !o.final.IsZero() }), t.duplicates
}

// InvoiceStrays reports invoice.issued of orders not seen accepted and
// paid, and repeated invoice.issued of one order.
func (t *Tracker) InvoiceStrays() (unattributed, duplicates int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.count(func(o *order) bool {
		return !o.invoice.IsZero() && (o.rec == nil || o.outcome != outcomePaid)
	}), t.dupeInvoices
}

// count is the number of orders for which is holds; t.mu is held.
func (t *Tracker) count(is func(*order) bool) int {
	n := 0
	for _, o := range t.orders {
		if is(o) {
			n++
		}
	}
	return n
}
