package main

import (
	"bytes"
	"context"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/apps/loadgen/internal/bench"
)

func noEnv(string) string { return "" }

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := parseConfig(nil, noEnv, io.Discard)
	require.NoError(t, err)
	o := c.Options
	assert.True(t, o.Start)
	assert.Equal(t, []int{1, 16, 64}, o.Concurrency)
	assert.Equal(t, []int{1, 16, 64}, o.FloorConc, "floors at the closed-loop concurrencies")
	assert.Equal(t, []float64{200, 400, 600}, o.Rates)
	assert.Equal(t, 10*time.Second, o.Duration)
	assert.Equal(t, 2*time.Second, o.Warmup)
	assert.Equal(t, 10000, o.Backlog)
	assert.Equal(t, 1500*time.Millisecond, o.LatencyValue)
	assert.Equal(t, 400.0, o.LatencyRate)
	assert.Zero(t, o.Soak, "no soak unless asked")
	assert.Equal(t, bench.Endpoints{Gateway: "http://127.0.0.1:3100", Order: "http://127.0.0.1:3101", Payment: "http://127.0.0.1:3102",
		Inventory: "http://127.0.0.1:3103", Invoice: "http://127.0.0.1:3104"}, o.Endpoints, "ports apart from make run (3000-3006) and the tests")
	assert.Equal(t, bench.Infra{AMQPURL: "amqp://guest:guest@127.0.0.1:5672/", VHost: "bench", MgmtURL: "http://guest:guest@127.0.0.1:15672",
		PGAdminURL: "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", OrderDB: "bench_orders", PaymentDB: "bench_payments", InventoryDB: "bench_inventory",
		InvoiceDB: "bench_invoices", FloorDB: "bench_floor"}, o.Infra)
	assert.True(t, o.Inventory, "inventory-service and the steps with items by default")
	assert.Equal(t, [4]int{1000, 3, 64, 1}, [4]int{o.Catalogue, o.ItemLines, o.ItemsConc, len(o.ItemsRates)})
	assert.Equal(t, []float64{200}, o.ItemsRates, "items beside open-200")
	assert.False(t, o.Invoices, "no invoice-service unless asked: the figures of record stay comparable")
	assert.Equal(t, 3000, o.InvoiceBacklog)
	for _, s := range allSteps {
		assert.Equal(t, s != bench.KindInvoiceBacklog, o.Steps[s], "step %s on by default, but the invoices' without -invoices", s)
	}
	assert.Equal(t, "http://guest:xxx@127.0.0.1:15672", o.Settings["mgmt"], "no password in the report")
}

func TestFlags(t *testing.T) {
	t.Parallel()
	env := map[string]string{"AMQP_URL": "amqp://u:p@mq:5672/x", "TEST_DATABASE_URL": "postgres://pg/postgres"}
	c, err := parseConfig([]string{"-concurrency", "2, 8", "-rates", "50,100.5", "-steps", "closed,open,floor", "-floor=false",
		"-latency-step", "0", "-service-env", "DB_MAX_CONNS=8", "-service-env", "GOGC=200", "-json", "r.json",
		"-gateway", "http://127.0.0.1:4000/"}, func(k string) string { return env[k] }, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, []int{2, 8}, c.Concurrency)
	assert.Equal(t, []float64{50, 100.5}, c.Rates)
	assert.Equal(t, map[string]bool{bench.KindClosed: true, bench.KindOpen: true}, c.Steps, "-floor=false wins over -steps")
	assert.Equal(t, []string{"DB_MAX_CONNS=8", "GOGC=200"}, c.Extra)
	assert.Equal(t, "r.json", c.JSONFile)
	assert.Equal(t, "http://127.0.0.1:4000", c.Endpoints.Gateway)
	assert.Equal(t, "amqp://u:p@mq:5672/x", c.Infra.AMQPURL, "servers default to the tests' environment")
	assert.Equal(t, "postgres://pg/postgres", c.Infra.PGAdminURL)

	c, err = parseConfig([]string{"-inventory=false"}, noEnv, io.Discard)
	require.NoError(t, err)
	assert.False(t, c.Steps[bench.KindItems], "without inventory-service, no steps with items")
	assert.True(t, c.Steps[bench.KindOpen], "the total-only steps as before")
	assert.Equal(t, bench.CoreServices, c.Services(), "the three services of the figures of record")

	c, err = parseConfig([]string{"-invoices", "-invoice-backlog", "500", "-invoice-url", "http://127.0.0.1:4004/"}, noEnv, io.Discard)
	require.NoError(t, err)
	assert.True(t, c.Steps[bench.KindInvoiceBacklog], "with invoice-service, its backlog step")
	assert.Equal(t, 500, c.InvoiceBacklog)
	assert.Equal(t, "http://127.0.0.1:4004", c.Endpoints.Invoice)
	assert.Equal(t, []string{bench.OrderService, bench.PaymentService, bench.InventoryService, bench.InvoiceService, bench.Gateway}, c.Services())

	c, err = parseConfig([]string{"-invoices", "-invoice-backlog", "0"}, noEnv, io.Discard)
	require.NoError(t, err)
	assert.False(t, c.Steps[bench.KindInvoiceBacklog], "-invoice-backlog 0 skips it")

	c, err = parseConfig([]string{"-tracing", "0.1", "-service-env", "GOGC=200"}, noEnv, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318", "OTEL_TRACES_SAMPLER=parentbased_traceidratio",
		"OTEL_TRACES_SAMPLER_ARG=0.1", "GOGC=200"}, c.Extra, "-tracing: export, sampling a tenth of the sagas")

	c, err = parseConfig([]string{"-start=false", "-vhost", "/", "-pids", "gateway=10,order-service=11"}, noEnv, io.Discard)
	require.NoError(t, err, "a target's own vhost needs no bench prefix: nothing is recreated")
	assert.Equal(t, map[string]int{bench.Gateway: 10, bench.OrderService: 11}, c.PIDs)
}

func TestBadFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"zero concurrency", []string{"-concurrency", "0"}, "-concurrency"},
		{"bad rate", []string{"-rates", "fast"}, "-rates"},
		{"unknown step", []string{"-steps", "closed,chaos"}, `unknown step "chaos"`},
		{"zero duration", []string{"-duration", "0s"}, "-duration must be positive"},
		{"negative warm-up", []string{"-warmup", "-1s"}, "-warmup must not be negative"},
		{"a developer's database", []string{"-order-db", "orders"}, `must start with "bench"`},
		{"a developer's vhost", []string{"-vhost", "/"}, `must start with "bench"`},
		{"a developer's invoices", []string{"-invoice-db", "invoices"}, `-invoice-db "invoices"`},
		{"bad invoice-service", []string{"-invoice-url", "127.0.0.1:3104"}, "-invoice-url"},
		{"negative invoice backlog", []string{"-invoice-backlog", "-1"}, "-invoice-backlog not negative"},
		{"pids with start", []string{"-pids", "gateway=1"}, "-pids is for -start=false"},
		{"bad pids", []string{"-start=false", "-pids", "mq=1"}, "SERVICE=PID"},
		{"bad service env", []string{"-service-env", "novalue"}, "KEY=VALUE"},
		{"bad tracing", []string{"-tracing", "on"}, "-tracing"},
		{"bad gateway", []string{"-gateway", "localhost:3100"}, "-gateway"},
		{"bad amqp", []string{"-amqp", "http://x"}, "-amqp"},
		{"stray argument", []string{"now"}, "unexpected argument"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stderr bytes.Buffer
			code := run(context.Background(), tc.args, noEnv, io.Discard, &stderr)
			assert.Equal(t, 2, code, "a bad command line exits 2")
			assert.Contains(t, stderr.String(), tc.want)
		})
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"-h", "--help"} {
		t.Run(arg, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			start := time.Now()
			// Nothing is started: run returns at once, without any server.
			assert.Equal(t, 0, run(context.Background(), []string{arg}, noEnv, &stdout, &stderr), "exit 0")
			assert.Less(t, time.Since(start), 5*time.Second, "returns at once")
			assert.Empty(t, stderr.String())
			for _, want := range []string{"usage: loadgen", "-latency-step", "never assert on time", "Environment:",
				"AMQP_URL", "TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"} {
				assert.Contains(t, stdout.String(), want)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"-version", "--version"} {
		t.Run(arg, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			start := time.Now()
			// Nothing is started: run returns at once, without any server.
			assert.Equal(t, 0, run(context.Background(), []string{arg}, noEnv, &stdout, &stderr), "exit 0")
			assert.Less(t, time.Since(start), 5*time.Second, "returns at once")
			assert.Empty(t, stderr.String())
			assert.Equal(t, "ordersaga dev (commit unknown, "+runtime.Version()+")\n", stdout.String(), "the version line and nothing else")
		})
	}
}

func TestBadFlagsTogetherOnOneLine(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-concurrency", "0", "-duration", "0s"}, noEnv, &stdout, &stderr)
	assert.Equal(t, 2, code)
	assert.Empty(t, stdout.String())
	assert.Contains(t, stderr.String(), "-concurrency")
	assert.Contains(t, stderr.String(), "-duration must be positive")
	assert.Equal(t, 1, strings.Count(stderr.String(), "\n"), "one line: %q", stderr.String())
	assert.True(t, strings.HasPrefix(stderr.String(), "loadgen: "), stderr.String())
}
