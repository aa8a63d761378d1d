package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSagaFloor(t *testing.T) {
	t.Parallel()
	assert.InDelta(t, 50.0, SagaFloor(300, 300), 1e-9, "3/300 + 3/300 = 20 ms a saga")
	assert.InDelta(t, 1/(3.0/1000+3.0/250), SagaFloor(1000, 250), 1e-9)
	assert.Zero(t, SagaFloor(0, 100), "an unmeasured rate gives no floor")
}

func TestFormatting(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "0", FormatErrors(nil))
	assert.Equal(t, "0", FormatErrors(map[string]int{ErrNotFinal: 0}))
	assert.Equal(t, "non_202_503:2 saga_not_final:1", FormatErrors(map[string]int{ErrNotFinal: 1, "non_202_503": 2}), "sorted by kind")
	for in, want := range map[float64]string{0: "0", 0.01234: "0.012", 1.234: "1.23", 12.34: "12.3", 1234.5: "1234"} {
		assert.Equal(t, want, num(in), "num(%v)", in)
	}
	assert.Equal(t, "-", lookup(map[string]float64{}, "x"), "not measured is not zero")
	assert.Equal(t, "c=16", Step{Kind: KindClosed, Concurrency: 16}.Load())
	assert.Equal(t, "400/s (got 398)", Step{Kind: KindOpen, Rate: 400, AcceptedPerSec: 398.2}.Load())
	assert.Equal(t, "c=64", Step{Kind: KindItems, Concurrency: 64}.Load(), "the closed loop with items")
	assert.Equal(t, "200/s (got 199)", Step{Kind: KindItems, Rate: 200, AcceptedPerSec: 199.4}.Load(), "the open loop with items")
}

func sampleReport() *Report {
	return &Report{
		Started: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), Finished: time.Date(2026, 12, 1, 10, 3, 0, 0, time.UTC),
		Machine: Machine{CPUs: 2, CPUModel: "Test CPU", MemoryGiB: 24, Kernel: "6.1", LoadAvg: "0.1 0.1 0.1", GoVersion: "go1.26", GitCommit: "abc123", RabbitMQ: "3.10", PostgreSQL: "15"},
		Floors:  []Floor{{Concurrency: 1, PublishPerSec: 1000, TxPerSec: 500, SagasPerSec: SagaFloor(1000, 500)}},
		Steps: []Step{
			{Name: "closed-1", Kind: KindClosed, Concurrency: 1, SagasPerSec: 100, FloorRatio: 0.9, FloorConcurrency: 1,
				Counts: Counts{Posted: 1000, Accepted: 1000, Finals: 999, Unfinished: 1, Errors: map[string]int{ErrNotFinal: 1}},
				Post:   Latency{P50: 1, P99: 3}, Final: Latency{P50: 8, P90: 9, P99: 12, Max: 40},
				CPU:    CPUUse{MSPerSaga: map[string]float64{Gateway: 0.5, KeyBroker: 2}, MachineBusyPct: 80},
				Memory: MemoryUse{PeakRSSMiB: map[string]float64{Gateway: 20}}},
			{Name: "backlog-10", Kind: KindBacklog, Counts: Counts{Posted: 10, Accepted: 10, Finals: 10},
				Backlog: &Backlog{Orders: 10, PostSeconds: 0.1, PostPerSec: 100, ReadySeconds: 0.5, DrainSeconds: 1, DrainPerSec: 10}},
			{Name: "invoice-backlog-40", Kind: KindInvoiceBacklog, Counts: Counts{Posted: 40, Accepted: 40, Finals: 40, Paid: 40},
				CPU:      CPUUse{MSPerSaga: map[string]float64{InvoiceService: 1.5}},
				Invoices: &Invoices{Paid: 40, Invoiced: 39, Uninvoiced: 1, PerSec: 78, Lag: Latency{P50: 300, P90: 400, P99: 480, Max: 500}},
				InvoiceBacklog: &InvoiceBacklog{Orders: 40, ReadySeconds: 0.25, DrainSeconds: 0.5, DrainPerSec: 78,
					PDF: &PDFs{Fetched: 5, SizeP50Bytes: 1834, SizeMaxBytes: 1840, First: Latency{P50: 4.5}, Second: Latency{P50: 0.8}}}},
		},
		Soak:  &Soak{Samples: []SoakSample{{AtSec: 10}}, Trend: Trends([]SoakSample{{Goroutines: map[string]float64{Gateway: 10}}, {Goroutines: map[string]float64{Gateway: 12}}})},
		Notes: []string{"a note"},
	}
}

func TestPrint(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	sampleReport().Print(&buf)
	out := buf.String()
	for _, want := range []string{
		"2 CPU × Test CPU", "commit abc123", "3m0s",
		"naive saga floor", "111", // 1/(3/1000+3/500)
		"closed-1", "0.90@1", "saga_not_final:1", "999",
		"backlog   10 orders", "drained them in 1.0 s (10.0 sagas/s)",
		"goroutines", "10 → 12 (12)",
		"invoices/s", "uninvoiced", "invoice-backlog-40", "40 invoices queued",
		"invoices  40 orders paid while invoice-service was stopped; it was ready after 0.25 s and issued their invoices in 0.5 s (78.0 invoices/s)",
		"PDF       5 invoices fetched twice from invoice-service: 1834 bytes (p50, max 1840); first fetch (renders) p50 4.50 ms, second (stored) p50 0.800 ms",
		"gateway  order  payment  invoice  services", "peak RSS MiB gw  order  payment  invoice",
		"note      a note",
	} {
		assert.Contains(t, out, want)
	}
	// Right-aligned tables: every row as wide as its header.
	found := false
	for _, table := range strings.Split(out, "\n\n") {
		lines := strings.Split(table, "\n")
		if len(lines) < 3 || !strings.HasPrefix(lines[0], "throughput") && !strings.HasPrefix(lines[0], "resources") && !strings.HasPrefix(lines[0], "invoices (") {
			continue
		}
		found = true
		for _, row := range lines[2:] {
			assert.Equal(t, utf8.RuneCountInString(lines[1]), utf8.RuneCountInString(row), "row %q", row)
		}
	}
	assert.True(t, found, "the tables are printed")
	assert.NotContains(t, out, "inventory", "no column of a service without figures")
}

func TestWriteJSON(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "r.json")
	require.NoError(t, sampleReport().WriteJSON(path))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var back Report
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, 999, back.Steps[0].Counts.Finals)
	assert.Equal(t, 2.0, back.Steps[0].CPU.MSPerSaga[KeyBroker])
	assert.Contains(t, string(b), `"p99_ms": 12`)
}

func TestParseMetrics(t *testing.T) {
	t.Parallel()
	in := `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 42
go_goroutines_extra 1
go_memstats_heap_inuse_bytes 1.048576e+06
ordersaga_http_requests_total{route="/x"} 3
`
	m, err := ParseMetrics(strings.NewReader(in), metricGoroutines, metricHeapInuse)
	require.NoError(t, err)
	assert.Equal(t, map[string]float64{metricGoroutines: 42, metricHeapInuse: 1 << 20}, m)
}

func TestScratch(t *testing.T) {
	t.Parallel()
	assert.NoError(t, Scratch("database", "bench_orders"))
	assert.NoError(t, Scratch("vhost", "bench-test-1"))
	assert.Error(t, Scratch("database", "orders"), "a developer's database is never dropped")
	assert.Error(t, Scratch("database", `bench"; DROP DATABASE orders; --`), "names go into SQL")
}
