package lifecycle

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The test binary plays the service when LIFECYCLE_CHILD is set: it asks
// to stop with its parent (or not), says so, and records a SIGTERM.
func TestMain(m *testing.M) {
	if mode := os.Getenv("LIFECYCLE_CHILD"); mode != "" {
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		if err := StopWithParent(mode == "stop"); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("ready")
		<-term
		_ = os.WriteFile(os.Getenv("LIFECYCLE_MARK"), []byte("SIGTERM"), 0o600)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startUnderParent starts the test binary as a child of a bash that, like
// scripts/run-local.sh, puts it in a session of its own; it returns the
// parent (leader of its own process group) and the child's pid.
func startUnderParent(t *testing.T, mode, mark string) (*exec.Cmd, int) {
	t.Helper()
	parent := exec.Command("bash", "-c", `setsid "$0" </dev/null & echo "$!"; wait`, os.Args[0])
	parent.Env = append(os.Environ(), "LIFECYCLE_CHILD="+mode, "LIFECYCLE_MARK="+mark)
	parent.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := parent.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, parent.Start())
	lines := bufio.NewScanner(out)
	require.True(t, lines.Scan(), "the parent prints its child's pid")
	pid, err := strconv.Atoi(lines.Text())
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	require.True(t, lines.Scan(), "the child says it is ready")
	require.Equal(t, "ready", lines.Text())
	return parent, pid
}

// stat returns the state and parent of pid, ok false once it is gone.
func stat(pid int) (state string, ppid int, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	ppid, _ = strconv.Atoi(f[1])
	return f[0], ppid, f[0] != "Z" // a zombie has stopped; init reaps it when it can
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStopWithParent(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		mode     string
		survives bool
	}{
		{"enabled: the child stops when its parent is killed", "stop", false},
		{"disabled: the child outlives its parent", "keep", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mark := filepath.Join(t.TempDir(), "mark")
			parent, pid := startUnderParent(t, tc.mode, mark)
			_, ppid, ok := stat(pid)
			require.True(t, ok)
			require.Equal(t, parent.Process.Pid, ppid, "the bash is the child's parent, setsid notwithstanding")

			require.NoError(t, syscall.Kill(-parent.Process.Pid, syscall.SIGKILL), "kill the parent's process group")
			_ = parent.Wait()
			if tc.survives {
				// Reparenting is when the parent-death signal would be sent.
				waitFor(t, "child reparented", func() bool { _, p, ok := stat(pid); return !ok || p != ppid })
				_, _, alive := stat(pid)
				assert.True(t, alive, "without STOP_WITH_PARENT the child is left running")
				assert.NoFileExists(t, mark)
				return
			}
			waitFor(t, "child gone", func() bool { _, _, alive := stat(pid); return !alive })
			b, err := os.ReadFile(mark)
			require.NoError(t, err, "the child saw a signal")
			assert.Equal(t, "SIGTERM", string(b), "a SIGTERM, so that it shuts down gracefully")
		})
	}
}
