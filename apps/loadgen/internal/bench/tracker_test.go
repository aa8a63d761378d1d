package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func closedChan(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestTrackerPairsEitherOrder(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	rec := NewRecorder(t0, t0.Add(time.Hour))
	tr := NewTracker()

	// 202 first, then the event.
	done := tr.Accepted("a", rec, t0, t0.Add(2*time.Millisecond))
	assert.False(t, closedChan(done), "no final event yet")
	tr.Final("a", "paid", t0.Add(10*time.Millisecond))
	assert.True(t, closedChan(done), "closed by the final event")

	// The event overtakes the 202.
	tr.Final("b", "paid", t0.Add(20*time.Millisecond))
	done = tr.Accepted("b", rec, t0.Add(5*time.Millisecond), t0.Add(30*time.Millisecond))
	assert.True(t, closedChan(done), "the final event was already there")

	c, post, final, _ := rec.Snapshot()
	assert.Equal(t, 2, c.Accepted)
	assert.Equal(t, 2, c.Finals)
	assert.Equal(t, 2, c.Paid)
	assert.Equal(t, int64(2), final.Count)
	assert.InDelta(t, 10.0, final.P50, 0.05, "a: 10 ms from origin to final")
	assert.InDelta(t, 15.0, final.Max, 0.05, "b: 15 ms, even though its 202 came after the event")
	assert.InDelta(t, 25.0, post.Max, 0.05, "b's POST took 25 ms")
}

func TestTrackerStraysAndDuplicates(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	rec := NewRecorder(t0, t0.Add(time.Hour))
	tr := NewTracker()
	tr.Accepted("a", rec, t0, t0)
	tr.Final("a", "paid", t0)
	tr.Final("a", "cancelled", t0) // a second final of one order
	tr.Final("ghost", "paid", t0)  // no 202 seen for it
	unattributed, dup := tr.Strays()
	assert.Equal(t, 1, unattributed)
	assert.Equal(t, 1, dup)
	c, _, _, _ := rec.Snapshot()
	assert.Equal(t, 1, c.Finals, "only the first final event counts")
	assert.Equal(t, 1, c.Paid)
	assert.Empty(t, c.Errors)

	tr.Accepted("a", rec, t0, t0)
	c, _, _, _ = rec.Snapshot()
	assert.Equal(t, 1, c.Errors[ErrDuplicateID], "a second 202 with one id is an error")
}

func TestRecorderWindowAndClose(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	ws, we := t0.Add(time.Second), t0.Add(2*time.Second)
	rec := NewRecorder(ws, we)
	tr := NewTracker()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

	tr.Accepted("warm", rec, at(900), at(905)) // sent in the warm-up…
	tr.Final("warm", "paid", at(1010))         // …final in the window
	tr.Accepted("in", rec, at(1500), at(1505))
	tr.Final("in", "cancelled", at(2100)) // final after the window
	tr.Accepted("slow", rec, at(1600), at(1610))
	rec.PostFailed(ErrNon202 + "_503")
	rec.PostFailed(ErrPostTimeout)

	c, post, final, _ := rec.Snapshot()
	assert.Equal(t, 1, c.WindowFinals, "only warm's final arrived in the window")
	assert.Equal(t, 2, c.WindowAccepted, "in and slow were sent in the window")
	assert.Equal(t, int64(2), post.Count, "POST latency only for requests sent in the window")
	assert.Equal(t, int64(1), final.Count, "final latency only for orders sent in the window")
	assert.InDelta(t, 600.0, final.P50, 1, "in: 1500 → 2100 ms")
	assert.Equal(t, 1, rec.Outstanding())
	assert.Equal(t, at(2100), rec.LastFinal())

	rec.Close()
	tr.Final("slow", "paid", at(2500))
	c, _, _, _ = rec.Snapshot()
	assert.Equal(t, map[string]int{ErrNon202 + "_503": 1, ErrPostTimeout: 1, ErrOutcome + "cancelled": 1, ErrNotFinal: 1}, c.Errors)
	assert.Equal(t, 1, c.LateFinals, "a final after Close is late, not a completion")
	assert.Equal(t, c.Posted, c.Accepted+2, "posted = accepted + POST errors")
	assert.Equal(t, c.Accepted, c.Finals+c.Unfinished, "accepted = finals + unfinished")
	assert.Equal(t, 1, c.Paid)
}

// TestTrackerInvoices pairs each paid order's invoice.issued with its
// order.paid, in whichever order the 202 and the events were seen, and
// counts what cannot be paired as strays.
func TestTrackerInvoices(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	rec := NewRecorder(at(1000), at(2000))
	tr := NewTracker()

	tr.Accepted("a", rec, at(1100), at(1105))
	tr.Final("a", "paid", at(1110))
	tr.Invoice("a", "inv-a", at(1150)) // the usual order: 202, paid, invoice
	tr.Invoice("a", "inv-a", at(1160)) // a repeated invoice.issued
	tr.Final("b", "paid", at(1200))
	tr.Invoice("b", "inv-b", at(1240))
	tr.Accepted("b", rec, at(1190), at(2500)) // the 202 parsed last, invoice after the window
	tr.Accepted("c", rec, at(1300), at(1305))
	tr.Final("c", "paid", at(1310)) // never invoiced
	tr.Accepted("d", rec, at(1400), at(1405))
	tr.Final("d", "cancelled", at(1410))
	tr.Invoice("d", "inv-d", at(1420)) // not paid: a stray
	tr.Invoice("ghost", "inv-g", at(1500))
	tr.Accepted("w", rec, at(900), at(905)) // sent in the warm-up
	tr.Final("w", "paid", at(950))
	tr.Invoice("w", "inv-w", at(2100)) // invoiced after the window

	assert.Equal(t, 1, rec.Uninvoiced(), "c")
	assert.Equal(t, at(2100), rec.LastInvoice())
	assert.Equal(t, []string{"inv-a", "inv-b", "inv-w"}, rec.InvoiceIDs())
	v := rec.InvoiceSnapshot(1)
	assert.Equal(t, 4, v.Paid)
	assert.Equal(t, 3, v.Invoiced)
	assert.Equal(t, v.Paid, v.Invoiced+v.Uninvoiced)
	assert.Equal(t, 2, v.WindowInvoiced, "a and b arrived in the window")
	assert.InDelta(t, 2.0, v.PerSec, 1e-9)
	assert.Equal(t, int64(2), v.Lag.Count, "lags of the orders sent in the window")
	assert.InDelta(t, 40.0, v.Lag.P50, 0.05, "a: paid at 1110, invoiced at 1150")
	assert.InDelta(t, 40.0, v.Lag.Max, 0.05, "b: 1200 → 1240")
	unattributed, dup := tr.InvoiceStrays()
	assert.Equal(t, 2, unattributed, "d's (not paid) and ghost's")
	assert.Equal(t, 1, dup)
	finals, _ := tr.Strays()
	assert.Zero(t, finals, "an invoice alone is no final event of an unknown order")

	ctx := context.Background()
	start := time.Now()
	rec.WaitInvoices(ctx, start.Add(30*time.Millisecond))
	assert.GreaterOrEqual(t, time.Since(start), 30*time.Millisecond, "c's invoice never comes: the wait ends at its deadline")
	rec.Close()
	tr.Invoice("c", "inv-c", at(3000))
	v = rec.InvoiceSnapshot(0)
	assert.Equal(t, 1, v.LateInvoices, "an invoice after Close is late")
	assert.Equal(t, 1, v.Uninvoiced)
	assert.Zero(t, v.PerSec, "no window, no rate")
}

// TestTrackerConcurrent races 202s against final events; every order must
// be counted once, whichever comes first.
func TestTrackerConcurrent(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	rec := NewRecorder(t0.Add(-time.Hour), t0.Add(time.Hour))
	tr := NewTracker()
	const n = 2000
	var wg sync.WaitGroup
	for i := range n {
		id := fmt.Sprint(i)
		accept := func() { tr.Accepted(id, rec, t0, t0.Add(time.Millisecond)) }
		final := func() { tr.Final(id, "paid", t0.Add(3*time.Millisecond)) }
		if rand.IntN(2) == 0 {
			accept, final = final, accept
		}
		wg.Go(accept)
		wg.Go(final)
	}
	wg.Wait()
	c, _, final, _ := rec.Snapshot()
	assert.Equal(t, n, c.Accepted)
	assert.Equal(t, n, c.Finals)
	assert.Equal(t, int64(n), final.Count)
	assert.Equal(t, 0, rec.Outstanding())
	u, d := tr.Strays()
	assert.Zero(t, u+d)
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	h := newHistogram()
	assert.Equal(t, Latency{}, Summarize(h), "empty: zeros")
	for i := 1; i <= 1000; i++ {
		record(h, time.Duration(i)*time.Millisecond/10) // 0.1 … 100 ms
	}
	record(h, 0) // clamped to 1 µs, never dropped
	l := Summarize(h)
	require.Equal(t, int64(1001), l.Count)
	assert.InDelta(t, 50.0, l.P50, 0.1)
	assert.InDelta(t, 90.0, l.P90, 0.1)
	assert.InDelta(t, 99.0, l.P99, 0.1)
	assert.InDelta(t, 100.0, l.Max, 0.1)
	assert.True(t, l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max, "percentiles ordered")
	record(h, time.Hour)
	assert.InDelta(t, float64(histogramMaxUS)/1000, Summarize(h).Max, float64(histogramMaxUS)/1000*0.001, "beyond the range: clamped")
}
