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

// buildServices builds the four services into a temporary directory.
func buildServices(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOWORK").Output()
	require.NoError(t, err)
	work := strings.TrimSpace(string(out))
	require.NotContains(t, []string{"", "off"}, work, "the test runs inside the go.work workspace")
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+"/", "./apps/gateway", "./apps/order-service", "./apps/payment-service", "./apps/inventory-service")
	cmd.Dir = filepath.Dir(work)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "build the services: %s", b)
	return dir
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// TestBenchAgainstRealSystem runs every step briefly against the real
// services, Postgres and RabbitMQ, and checks that the report is complete
// and its counts add up. It never looks at how fast anything was.
func TestBenchAgainstRealSystem(t *testing.T) {
	servers := testinfra.Need(t)
	bin := buildServices(t)
	ports := freePorts(t, 4)
	id := strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	infra := bench.Infra{
		AMQPURL: servers.AMQPURL, MgmtURL: servers.ManagementURL, PGAdminURL: servers.PostgresURL,
		VHost: "bench-test-" + id, OrderDB: "bench_test_" + id + "_orders", PaymentDB: "bench_test_" + id + "_payments",
		InventoryDB: "bench_test_" + id + "_inventory", FloorDB: "bench_test_" + id + "_floor",
	}
	t.Cleanup(func() {
		// The tool removes them itself; this only matters when it failed.
		ctx := context.Background()
		_ = infra.DeleteVHost(ctx)
		for _, db := range []string{infra.OrderDB, infra.PaymentDB, infra.InventoryDB, infra.FloorDB} {
			_ = infra.DropDatabase(ctx, db)
		}
	})
	report := filepath.Join(t.TempDir(), "report.json")
	url := func(p int) string { return fmt.Sprintf("http://127.0.0.1:%d", p) }
	args := []string{
		"-bin", bin, "-log-dir", t.TempDir(), "-json", report,
		"-gateway", url(ports[0]), "-order-url", url(ports[1]), "-payment-url", url(ports[2]), "-inventory-url", url(ports[3]),
		"-amqp", infra.AMQPURL, "-mgmt", infra.MgmtURL, "-pg-admin", infra.PGAdminURL,
		"-vhost", infra.VHost, "-order-db", infra.OrderDB, "-payment-db", infra.PaymentDB, "-inventory-db", infra.InventoryDB, "-floor-db", infra.FloorDB,
		"-concurrency", "1,4", "-rates", "20", "-catalogue", "20", "-items-concurrency", "4", "-items-rates", "20", "-duration", "1s", "-warmup", "200ms", "-pause", "100ms",
		"-backlog", "50", "-latency-step", "200ms", "-latency-rate", "20", "-latency-duration", "1s",
		"-soak", "1s", "-soak-rate", "20", "-soak-interval", "300ms",
		"-floor-duration", "300ms", "-saga-timeout", "60s",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, func(string) string { return "" }, &stdout, &stderr)
	require.Equal(t, 0, code, "loadgen exit code; stderr:\n%s\nstdout:\n%s", stderr.String(), stdout.String())

	out := stdout.String()
	for _, want := range []string{"machine floor", "throughput and latency", "resources", "backlog   50 orders", "soak", "items-open-20 ÷ open-20", "JSON report: " + report} {
		assert.Contains(t, out, want, "the printed report")
	}

	b, err := os.ReadFile(report)
	require.NoError(t, err, "the JSON report")
	var rep bench.Report
	require.NoError(t, json.Unmarshal(b, &rep))

	assert.Len(t, rep.Floors, 2, "a floor per closed-loop concurrency")
	for _, f := range rep.Floors {
		assert.Positive(t, f.PublishPerSec, "publish floor at %d measured something", f.Concurrency)
		assert.Positive(t, f.TxPerSec, "tx floor at %d measured something", f.Concurrency)
		assert.InDelta(t, bench.SagaFloor(f.PublishPerSec, f.TxPerSec), f.SagasPerSec, 1e-9)
	}

	var names []string
	for _, s := range rep.Steps {
		names = append(names, s.Name)
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
			assert.True(t, l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max, "%s: %s percentiles ordered: %+v", s.Name, what, l)
		}
		assert.LessOrEqual(t, s.Final.Count, int64(c.Finals), "%s: final latencies only of final orders", s.Name)
		assert.InDelta(t, float64(c.WindowFinals)/s.WindowSec, s.SagasPerSec, 1e-9, "%s: sagas/s = finals in the window / window", s.Name)
		for _, svc := range bench.Services {
			assert.Positive(t, s.Memory.PeakRSSMiB[svc], "%s: RSS of %s sampled", s.Name, svc)
		}
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
	for _, svc := range bench.Services {
		assert.Positive(t, rep.Soak.Trend[svc].GoroutinesEnd, "goroutines of %s scraped from /metrics", svc)
	}
	assert.Zero(t, rep.UnattributedFinals)
	assert.Zero(t, rep.DuplicateFinals)
	assert.Empty(t, rep.Notes)
	assert.Positive(t, rep.Machine.CPUs, "machine described")
	assert.NotEqual(t, "unknown", rep.Machine.PostgreSQL, "server versions read")

	// Nothing left behind: the services stopped, the scratch resources gone.
	for _, p := range ports {
		_, err := http.Get(url(p) + "/healthz")
		assert.Error(t, err, "port %d still answers after the run", p)
	}
	assertScratchRemoved(ctx, t, infra, id)
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
