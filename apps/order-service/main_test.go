package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/testinfra"
)

// The test binary is the service when ORDER_SERVICE_TEST_MAIN is set, so
// that a test can start the real thing as a process of its own.
func TestMain(m *testing.M) {
	if os.Getenv("ORDER_SERVICE_TEST_MAIN") == "1" {
		os.Args = os.Args[:1]
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestStopsWithItsParent starts the service as scripts/run-local.sh does
// (STOP_WITH_PARENT=true, in a session of its own, from a bash), kills the
// bash's process group with SIGKILL as a killed `make run` is, and waits
// for the service to shut down rather than live on under init.
func TestStopsWithItsParent(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts the service against the real database and broker")
	}
	db, broker := testinfra.Database(t), testinfra.VHost(t)
	addr := testinfra.ReservedAddr(t)
	logFile := filepath.Join(t.TempDir(), "order-service.log")

	parent := exec.Command("bash", "-c", `env STOP_WITH_PARENT=true setsid "$0" </dev/null >"$1" 2>&1 & echo "$!"; wait`,
		os.Args[0], logFile)
	parent.Env = append(os.Environ(), "ORDER_SERVICE_TEST_MAIN=1", "DATABASE_URL="+db, "AMQP_URL="+broker.AMQPURL,
		"HTTP_ADDR="+addr, "LOG_FORMAT=json")
	parent.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := parent.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, parent.Start())
	t.Cleanup(func() { _ = syscall.Kill(-parent.Process.Pid, syscall.SIGKILL); _ = parent.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err, "the parent prints the service's pid")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	logs := func() string { b, _ := os.ReadFile(logFile); return string(b) }

	waitFor(t, 60*time.Second, "the service is ready", func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, logs)
	require.Equal(t, parent.Process.Pid, parentOf(pid), "the bash is the service's parent, setsid notwithstanding")

	require.NoError(t, syscall.Kill(-parent.Process.Pid, syscall.SIGKILL), "SIGKILL the runner's process group")
	waitFor(t, 30*time.Second, "the service is gone", func() bool { return parentOf(pid) == 0 }, logs)
	assert.Contains(t, logs(), `"msg":"shutting down"`, "a graceful shutdown, as on SIGTERM")
	assert.Contains(t, logs(), `"msg":"stopped"`)
}

// parentOf returns the parent of pid, or 0 once pid has exited (a zombie
// has: init reaps it when it can).
func parentOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if f[0] == "Z" {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool, logs func() string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; log:\n%s", what, limit, logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
