package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/apps/loadgen/internal/bench"
	"github.com/ordersaga/ordersaga/libs/rabbit/mgmt"
	"github.com/ordersaga/ordersaga/libs/testinfra"
)

// buildServices builds the five services into a temporary directory.
func buildServices(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOWORK").Output()
	require.NoError(t, err)
	work := strings.TrimSpace(string(out))
	require.NotContains(t, []string{"", "off"}, work, "the test runs inside the go.work workspace")
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+"/", "./apps/gateway", "./apps/order-service", "./apps/payment-service", "./apps/inventory-service", "./apps/invoice-service")
	cmd.Dir = filepath.Dir(work)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "build the services: %s", b)
	return dir
}

func freePorts(t *testing.T, n int) []int { return testinfra.ReservePorts(t, n) }

// benchRun is one run of the tool against the real services, Postgres
// and RabbitMQ, on scratch resources of its own and free ports.
type benchRun struct {
	infra  bench.Infra
	id     string // in the scratch resources' names
	ports  []int  // gateway, order, payment, inventory, invoice
	out    string // what it printed
	report string // the JSON report's path
	rep    bench.Report
}

func (r *benchRun) url(i int) string { return fmt.Sprintf("http://127.0.0.1:%d", r.ports[i]) }

// runBench runs the tool with the scratch resources' and ports' flags and
// args, requires it to succeed, and reads its JSON report.
func runBench(ctx context.Context, t *testing.T, args ...string) *benchRun {
	t.Helper()
	servers := testinfra.Need(t)
	bin := buildServices(t)
	id := strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	r := &benchRun{id: id, ports: freePorts(t, 5), report: filepath.Join(t.TempDir(), "report.json"), infra: bench.Infra{
		AMQPURL: servers.AMQPURL, MgmtURL: servers.ManagementURL, PGAdminURL: servers.PostgresURL,
		VHost: "bench-test-" + id, OrderDB: "bench_test_" + id + "_orders", PaymentDB: "bench_test_" + id + "_payments",
		InventoryDB: "bench_test_" + id + "_inventory", InvoiceDB: "bench_test_" + id + "_invoices", FloorDB: "bench_test_" + id + "_floor",
	}}
	in := r.infra
	t.Cleanup(func() {
		// The tool removes them itself; this only matters when it failed.
		ctx := context.Background()
		_ = in.DeleteVHost(ctx)
		for _, db := range []string{in.OrderDB, in.PaymentDB, in.InventoryDB, in.InvoiceDB, in.FloorDB} {
			_ = in.DropDatabase(ctx, db)
		}
	})
	args = append([]string{
		"-bin", bin, "-log-dir", t.TempDir(), "-json", r.report,
		"-gateway", r.url(0), "-order-url", r.url(1), "-payment-url", r.url(2), "-inventory-url", r.url(3), "-invoice-url", r.url(4),
		"-amqp", in.AMQPURL, "-mgmt", in.MgmtURL, "-pg-admin", in.PGAdminURL, "-vhost", in.VHost, "-order-db", in.OrderDB,
		"-payment-db", in.PaymentDB, "-inventory-db", in.InventoryDB, "-invoice-db", in.InvoiceDB, "-floor-db", in.FloorDB,
	}, args...)
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, func(string) string { return "" }, &stdout, &stderr)
	require.Equal(t, 0, code, "loadgen exit code; stderr:\n%s\nstdout:\n%s", stderr.String(), stdout.String())
	r.out = stdout.String()
	b, err := os.ReadFile(r.report)
	require.NoError(t, err, "the JSON report")
	require.NoError(t, json.Unmarshal(b, &r.rep))
	return r
}

// assertCountsAddUp checks a step's order accounting, and that on a
// working system every order was accepted and paid.
func assertCountsAddUp(t *testing.T, s bench.Step, services []string) {
	t.Helper()
	c := s.Counts
	postErrors := 0
	for kind, n := range c.Errors {
		if !strings.HasPrefix(kind, bench.ErrOutcome) && kind != bench.ErrNotFinal {
			postErrors += n
		}
	}
	assert.Equal(t, c.Posted, c.Accepted+postErrors, "%s: every POST counted once: accepted or an error", s.Name)
	assert.Equal(t, c.Accepted, c.Finals+c.Unfinished, "%s: every accepted order final or unfinished", s.Name)
	assert.LessOrEqual(t, c.Paid, c.Finals, s.Name)
	assert.LessOrEqual(t, c.WindowFinals, c.Finals, s.Name)
	assert.LessOrEqual(t, c.WindowAccepted, c.Accepted, s.Name)
	assert.Positive(t, c.Accepted, "%s: some orders", s.Name)
	// On a working system every order is paid: a functional check.
	assert.Empty(t, c.Errors, "%s: errors; first: %v", s.Name, s.FirstErrors)
	assert.Equal(t, c.Accepted, c.Paid, "%s: all paid", s.Name)
	for what, l := range map[string]bench.Latency{"POST": s.Post, "final": s.Final} {
		assert.Positive(t, l.Count, "%s: %s latencies recorded", s.Name, what)
		assertOrdered(t, l, "%s: %s", s.Name, what)
	}
	assert.LessOrEqual(t, s.Final.Count, int64(c.Finals), "%s: final latencies only of final orders", s.Name)
	assert.InDelta(t, float64(c.WindowFinals)/s.WindowSec, s.SagasPerSec, 1e-9, "%s: sagas/s = finals in the window / window", s.Name)
	for _, svc := range services {
		assert.Positive(t, s.Memory.PeakRSSMiB[svc], "%s: RSS of %s sampled", s.Name, svc)
	}
}

// assertOrdered checks that a latency's percentiles are in order.
func assertOrdered(t *testing.T, l bench.Latency, what string, args ...any) {
	t.Helper()
	assert.True(t, l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max, "%s: percentiles ordered: %+v", fmt.Sprintf(what, args...), l)
}

// TestBenchAgainstRealSystem runs every step briefly against the real
// services, Postgres and RabbitMQ, and checks that the report is complete
// and its counts add up. It never looks at how fast anything was.
func TestBenchAgainstRealSystem(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r := runBench(ctx, t,
		"-concurrency", "1,4", "-rates", "20", "-catalogue", "20", "-items-concurrency", "4", "-items-rates", "20", "-duration", "1s", "-warmup", "200ms", "-pause", "100ms",
		"-backlog", "50", "-latency-step", "200ms", "-latency-rate", "20", "-latency-duration", "1s",
		"-soak", "1s", "-soak-rate", "20", "-soak-interval", "300ms",
		"-floor-duration", "1s", "-saga-timeout", "60s",
	)
	infra, id, ports, rep := r.infra, r.id, r.ports, r.rep
	for _, want := range []string{"machine floor", "throughput and latency", "resources", "backlog   50 orders", "soak", "items-open-20 ÷ open-20", "JSON report: " + r.report} {
		assert.Contains(t, r.out, want, "the printed report")
	}
	assert.NotContains(t, r.out, "invoice", "no invoice-service without -invoices")

	assert.Len(t, rep.Floors, 2, "a floor per closed-loop concurrency")
	for _, f := range rep.Floors {
		assert.Positive(t, f.PublishPerSec, "publish floor at %d measured something", f.Concurrency)
		assert.Positive(t, f.TxPerSec, "tx floor at %d measured something", f.Concurrency)
		assert.InDelta(t, bench.SagaFloor(f.PublishPerSec, f.TxPerSec), f.SagasPerSec, 1e-9)
	}

	withInventory := []string{bench.OrderService, bench.PaymentService, bench.InventoryService, bench.Gateway}
	var names []string
	for _, s := range rep.Steps {
		names = append(names, s.Name)
		assertCountsAddUp(t, s, withInventory)
		assert.Nil(t, s.Invoices, "%s: no invoices counted without -invoices", s.Name)
		assert.NotContains(t, s.Memory.PeakRSSMiB, bench.InvoiceService, s.Name)
	}
	assert.Equal(t, []string{"closed-1", "closed-4", "open-20", "items-closed-4", "items-open-20", "latency-200ms", "backlog-50", "soak"}, names)
	for _, s := range rep.Steps[:2] {
		for _, key := range []string{bench.Gateway, bench.OrderService, bench.PaymentService, bench.KeyLoadgen} {
			assert.Contains(t, s.CPU.Seconds, key, "%s: CPU of %s accounted", s.Name, key)
		}
	}
	for _, s := range rep.Steps[3:5] {
		assert.Contains(t, s.CPU.Seconds, bench.InventoryService, "%s: CPU of the inventory accounted", s.Name)
	}
	assert.Len(t, rep.ItemsCost, 2, "each step with items beside its total-only twin")
	backlog := rep.Steps[6]
	require.NotNil(t, backlog.Backlog)
	assert.Equal(t, 50, backlog.Counts.Posted, "exactly the backlog was POSTed")
	assert.Equal(t, 50, backlog.Backlog.Orders)
	assert.Equal(t, 50, backlog.Counts.Finals, "and drained")
	assert.Positive(t, backlog.Backlog.DrainSeconds)
	assert.Equal(t, "200ms", rep.Steps[5].PaymentLatency)

	require.NotNil(t, rep.Soak)
	assert.GreaterOrEqual(t, len(rep.Soak.Samples), 2, "soak sampled every 300ms for 1s")
	for _, svc := range withInventory {
		assert.Positive(t, rep.Soak.Trend[svc].GoroutinesEnd, "goroutines of %s scraped from /metrics", svc)
	}
	assert.NotContains(t, rep.Soak.Trend, bench.InvoiceService, "only the services that ran")
	assert.Zero(t, rep.UnattributedFinals)
	assert.Zero(t, rep.DuplicateFinals)
	assert.Empty(t, rep.Notes)
	assert.Positive(t, rep.Machine.CPUs, "machine described")
	assert.NotEqual(t, "unknown", rep.Machine.PostgreSQL, "server versions read")

	// Nothing left behind: the services stopped, the scratch resources gone.
	assertStopped(t, ports)
	assertScratchRemoved(ctx, t, infra, id)
}

// TestBenchWithInvoices runs the steps that count invoices, with
// invoice-service and without inventory-service, and checks that every
// paid order of a step has its invoice.issued and the PDFs were fetched.
// It never looks at how fast anything was.
func TestBenchWithInvoices(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r := runBench(ctx, t, "-invoices", "-inventory=false", "-floor=false", "-steps", "closed,open,backlog,invoice-backlog",
		"-concurrency", "4", "-rates", "20", "-duration", "1s", "-warmup", "200ms", "-pause", "100ms",
		"-backlog", "30", "-invoice-backlog", "40", "-saga-timeout", "60s")
	for _, want := range []string{"invoices (invoice.issued", "invoices  40 orders paid while invoice-service was stopped",
		"PDF       5 invoices fetched twice", "JSON report: " + r.report} {
		assert.Contains(t, r.out, want, "the printed report")
	}
	rep := r.rep
	withInvoices := []string{bench.OrderService, bench.PaymentService, bench.InvoiceService, bench.Gateway}
	var names []string
	for _, s := range rep.Steps {
		names = append(names, s.Name)
		assertCountsAddUp(t, s, withInvoices)
		v := s.Invoices
		require.NotNil(t, v, "%s: invoices counted", s.Name)
		assert.Equal(t, s.Counts.Paid, v.Paid, "%s: the invoices' paid orders are the step's", s.Name)
		assert.Equal(t, v.Paid, v.Invoiced+v.Uninvoiced, "%s: every paid order invoiced or not", s.Name)
		assert.Equal(t, v.Paid, v.Invoiced, "%s: every paid order invoiced within the wait", s.Name)
		assert.Zero(t, v.LateInvoices, s.Name)
		assert.LessOrEqual(t, v.WindowInvoiced, v.Invoiced, s.Name)
		assert.Positive(t, v.Lag.Count, "%s: PAID → invoice lags recorded", s.Name)
		assert.LessOrEqual(t, v.Lag.Count, int64(v.Invoiced), "%s: lags only of invoiced orders", s.Name)
		assertOrdered(t, v.Lag, "%s: invoice lag", s.Name)
		assert.NotContains(t, s.Memory.PeakRSSMiB, bench.InventoryService, s.Name)
	}
	assert.Equal(t, []string{"closed-4", "open-20", "backlog-30", "invoice-backlog-40"}, names)
	require.Len(t, rep.Steps, 4)
	assert.Contains(t, rep.Steps[0].CPU.Seconds, bench.InvoiceService, "CPU of invoice-service accounted")

	s := rep.Steps[3]
	b := s.InvoiceBacklog
	require.NotNil(t, b, "the invoice backlog's figures")
	assert.Equal(t, 40, b.Orders, "every order of the step paid while invoice-service was stopped")
	assert.Equal(t, 40, s.Invoices.Invoiced, "and invoiced after its start")
	assert.Positive(t, b.DrainSeconds)
	assert.InDelta(t, 40/b.DrainSeconds, b.DrainPerSec, 1e-9, "invoices/s = invoices / drain")
	require.NotNil(t, b.PDF, "PDFs fetched; notes: %v", s.Notes)
	assert.Equal(t, bench.PDFSamples, b.PDF.Fetched)
	assert.Positive(t, b.PDF.SizeP50Bytes)
	assert.LessOrEqual(t, b.PDF.SizeP50Bytes, b.PDF.SizeMaxBytes)
	for what, l := range map[string]bench.Latency{"first": b.PDF.First, "second": b.PDF.Second} {
		assert.Equal(t, int64(bench.PDFSamples), l.Count, "%s fetch of each PDF timed", what)
		assertOrdered(t, l, "%s fetch", what)
	}
	assert.Zero(t, rep.UnattributedInvoices)
	assert.Zero(t, rep.DuplicateInvoices)
	assert.Zero(t, rep.UnattributedFinals)
	assert.Equal(t, []string{"its CPU is per invoice issued during the drain, not per saga"}, s.Notes)
	assert.Empty(t, rep.Notes)
	assertStopped(t, r.ports)
	assertScratchRemoved(ctx, t, r.infra, r.id)
}

// assertStopped checks that no service answers on ports after the run.
func assertStopped(t *testing.T, ports []int) {
	t.Helper()
	for _, p := range ports {
		_, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", p))
		assert.Error(t, err, "port %d still answers after the run", p)
	}
}

// assertScratchRemoved checks that the run dropped its databases (named
// bench_test_<id>...) and deleted its vhost.
func assertScratchRemoved(ctx context.Context, t *testing.T, infra bench.Infra, id string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, infra.PGAdminURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var left int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname LIKE $1", "bench_test_"+id+"%").Scan(&left))
	assert.Zero(t, left, "scratch databases dropped")
	api, err := mgmt.New(infra.MgmtURL)
	require.NoError(t, err)
	err = api.Do(ctx, http.MethodGet, "/api/vhosts/"+infra.VHost, nil, nil)
	assert.ErrorIs(t, err, mgmt.ErrNotFound, "scratch vhost deleted")
}

// TestRefusesBusyPort: an old copy of a service on the port would answer
// the readiness checks and be measured instead of the fresh one.
func TestRefusesBusyPort(t *testing.T) {
	servers := testinfra.Need(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	bin := t.TempDir()
	var stdout, stderr bytes.Buffer
	logs := filepath.Join(t.TempDir(), "logs")
	code := run(context.Background(), []string{"-bin", bin, "-log-dir", logs, "-gateway", "http://" + l.Addr().String(),
		"-amqp", servers.AMQPURL, "-mgmt", servers.ManagementURL, "-pg-admin", servers.PostgresURL,
		"-vhost", "bench-unused", "-steps", "closed"}, func(string) string { return "" }, &stdout, &stderr)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr.String(), "already in use")
	assert.NoDirExists(t, logs, "a refused run leaves the logs of the run holding the ports alone")
}
