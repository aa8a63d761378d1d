package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/apps/loadgen/internal/bench"
	"github.com/ordersaga/ordersaga/libs/testinfra"
)

// fakeServiceEnv makes the test binary, started under a service's name,
// play that service (see fakeService).
const fakeServiceEnv = "LOADGEN_TEST_FAKE_SERVICE"

func TestMain(m *testing.M) {
	if os.Getenv(fakeServiceEnv) != "" {
		os.Exit(fakeService(filepath.Base(os.Args[0])))
	}
	os.Exit(m.Run())
}

// fakeService is a service that misbehaves on purpose: the payment service
// dies at start-up; the others get ready, then exit 3 on SIGTERM.
func fakeService(name string) int {
	if name == bench.PaymentService {
		return 1
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	http.HandleFunc("/readyz", func(http.ResponseWriter, *http.Request) {})
	go func() { _ = http.ListenAndServe(os.Getenv("HTTP_ADDR"), nil) }()
	<-term
	return 3
}

// TestServiceDiesAtStart: a run that fails while starting the services
// still stops the ones it started and removes its scratch resources, and
// reports a service that would not stop cleanly as an error, not a crash.
func TestServiceDiesAtStart(t *testing.T) {
	servers := testinfra.Need(t)
	self, err := os.Executable()
	require.NoError(t, err)
	bin := t.TempDir()
	for _, name := range bench.Services {
		require.NoError(t, os.Symlink(self, filepath.Join(bin, name)))
	}
	ports := freePorts(t, 3)
	id := strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	infra := bench.Infra{
		AMQPURL: servers.AMQPURL, MgmtURL: servers.ManagementURL, PGAdminURL: servers.PostgresURL,
		VHost: "bench-test-" + id, OrderDB: "bench_test_" + id + "_orders", PaymentDB: "bench_test_" + id + "_payments", FloorDB: "bench_test_" + id + "_floor",
	}
	t.Cleanup(func() {
		// The tool removes them itself; this only matters when it failed.
		ctx := context.Background()
		_ = infra.DeleteVHost(ctx)
		for _, db := range []string{infra.OrderDB, infra.PaymentDB, infra.FloorDB} {
			_ = infra.DropDatabase(ctx, db)
		}
	})
	url := func(p int) string { return fmt.Sprintf("http://127.0.0.1:%d", p) }
	args := []string{
		"-bin", bin, "-log-dir", t.TempDir(), "-service-env", fakeServiceEnv + "=1",
		"-gateway", url(ports[0]), "-order-url", url(ports[1]), "-payment-url", url(ports[2]),
		"-amqp", infra.AMQPURL, "-mgmt", infra.MgmtURL, "-pg-admin", infra.PGAdminURL,
		"-vhost", infra.VHost, "-order-db", infra.OrderDB, "-payment-db", infra.PaymentDB, "-floor-db", infra.FloorDB,
		"-steps", "closed", "-floor=false", "-inventory=false", // the three services of the figures of record
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, func(string) string { return "" }, &stdout, &stderr)

	assert.Equal(t, 1, code, "stderr:\n%s", stderr.String())
	assert.Contains(t, stderr.String(), "payment-service exited during start-up")
	assert.Contains(t, stderr.String(), "stopping the services: order-service exited 3 after SIGTERM")
	_, err = http.Get(url(ports[1]) + "/readyz")
	assert.Error(t, err, "the order service was stopped")
	assertScratchRemoved(ctx, t, infra, id)
}
