package bench

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/procfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testProc(t testing.TB) Proc {
	t.Helper()
	p, err := NewProc("testdata/proc")
	require.NoError(t, err)
	return p
}

func TestStat(t *testing.T) {
	t.Parallel()
	p := testProc(t)
	tests := []struct {
		name          string
		pid           int
		comm          string
		ppid          int
		cpu, children uint64
	}{
		{"comm with spaces and parentheses", 300, "my (odd) prog", 1, 123 + 45, 6 + 7},
		{"backend", 101, "postgres", 100, 7 + 3, 0},
		{"postmaster", 100, "postgres", 1, 10 + 5, 50 + 25},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := p.Stat(tc.pid)
			require.NoError(t, err)
			assert.Equal(t, tc.comm, s.Comm)
			assert.Equal(t, tc.ppid, s.PPID)
			assert.Equal(t, tc.cpu, CPU(s), "utime+stime")
			assert.Equal(t, tc.children, ChildrenCPU(s), "cutime+cstime")
		})
	}
	_, err := p.Stat(999)
	assert.Error(t, err, "a process that is gone is an error, not zeros")
}

func TestMemory(t *testing.T) {
	t.Parallel()
	p := testProc(t)
	m, err := p.Memory(300)
	require.NoError(t, err)
	assert.Equal(t, Memory{RSSKiB: 30720, HWMKiB: 40960}, m)

	_, err = p.Memory(400)
	assert.Error(t, err, "a kernel thread has no VmRSS: an error, not a zero")
	_, err = p.Memory(999)
	assert.Error(t, err)
}

func TestMachineCPU(t *testing.T) {
	t.Parallel()
	c, err := testProc(t).MachineCPU()
	require.NoError(t, err)
	// "cpu  1000 10 500 8000 100 0 20 0 0 0" in ticks of 1/100 s.
	assert.InDelta(t, 96.30, c.Total, 1e-9, "user..steal summed, guest not")
	assert.InDelta(t, 81.00, c.Idle, 1e-9, "idle+iowait")

	before := MachineCPU{Total: 10, Idle: 6}
	assert.InDelta(t, 75.0, BusyPercent(before, MachineCPU{Total: 12, Idle: 6.5}), 1e-9, "1.5 of 2 s busy")
	assert.Zero(t, BusyPercent(before, before), "no time passed: 0, not NaN")
}

func TestNamedAndTreeCPU(t *testing.T) {
	t.Parallel()
	p := testProc(t)
	pgs, err := p.Named("postgres")
	require.NoError(t, err)
	assert.Len(t, pgs, 3, "postmaster and two backends")
	// postmaster 10+5 plus its reaped children 50+25; backends 7+3 and
	// 4+1, whose own children are already in the postmaster's count.
	assert.Equal(t, uint64(105), TreeCPU(pgs))

	beams, err := p.Named("beam.smp")
	require.NoError(t, err)
	assert.Equal(t, uint64(502), TreeCPU(beams))

	none, err := p.Named("nothing-by-this-name")
	require.NoError(t, err)
	assert.Empty(t, none)
}

func TestBackendOf(t *testing.T) {
	t.Parallel()
	p := testProc(t)
	dbs := []string{"bench_orders", "bench_payments"}
	tests := []struct {
		name    string
		cmdline string
		want    bool
	}{
		{"backend of a bench database", p.Cmdline(101), true},
		{"backend of another database", p.Cmdline(102), false},
		{"postmaster", p.Cmdline(100), false},
		{"without a cluster name", "postgres: postgres bench_payments [local] idle", true},
		{"auxiliary process", "postgres: 15/main: checkpointer", false},
		{"gone", p.Cmdline(999), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, BackendOf(tc.cmdline, dbs), "cmdline %q", tc.cmdline)
		})
	}
}

func TestAccountantBetween(t *testing.T) {
	t.Parallel()
	a := &Accountant{Proc: testProc(t), PIDs: func() map[string]int { return map[string]int{Gateway: 300} }, BenchDBs: []string{"bench_orders"}}
	s := a.Sample()
	assert.Equal(t, pidTicks{pid: 300, ticks: 168}, s.procs[Gateway])
	assert.Equal(t, map[string]uint64{KeyBroker: 502, KeyPostgres: 105, KeyPostgresBench: 10}, s.others)

	before := Sample{At: time.Now(), procs: map[string]pidTicks{Gateway: {1, 100}, OrderService: {2, 50}, KeyLoadgen: {3, 10}},
		others: map[string]uint64{KeyBroker: 1000}, machine: MachineCPU{Total: 10, Idle: 5}}
	after := Sample{At: time.Now(), procs: map[string]pidTicks{Gateway: {1, 300}, OrderService: {9, 40}, KeyLoadgen: {3, 20}},
		others: map[string]uint64{KeyBroker: 1400, KeyPostgres: 7}, machine: MachineCPU{Total: 14, Idle: 6}}
	u := a.Between(before, after, 100)
	assert.Equal(t, map[string]float64{Gateway: 2, OrderService: 0.4, KeyLoadgen: 0.1, KeyBroker: 4}, u.Seconds,
		"the restarted order service counts its whole new life; postgres, unseen before, is left out")
	assert.InDelta(t, 20.0, u.MSPerSaga[Gateway], 1e-9, "2 s over 100 sagas")
	assert.InDelta(t, 75.0, u.MachineBusyPct, 1e-9)
	assert.Empty(t, a.Between(before, after, 0).MSPerSaga, "no saga: no per-saga figure")
}

func TestDescribeReadsTheMachine(t *testing.T) {
	t.Parallel()
	cpu, mem, kernel, load := testProc(t).describe()
	assert.Equal(t, "AMD EPYC 7B13 64-Core Processor", cpu, "spaces collapsed")
	assert.InDelta(t, 23.54, mem, 0.01)
	assert.Equal(t, "6.1.0-test-amd64", kernel)
	assert.Equal(t, "0.52 0.58 0.59", load)

	empty, err := NewProc(t.TempDir())
	require.NoError(t, err)
	cpu, mem, kernel, load = empty.describe()
	assert.Equal(t, []any{"unknown", 0.0, "unknown", "unknown"}, []any{cpu, mem, kernel, load}, "what cannot be read is unknown")
}

// TestLiveProcess reads this test's own process on the real /proc: the
// figures the bench reports must be sane there, not only on testdata.
func TestLiveProcess(t *testing.T) {
	p, err := NewProc(procfs.DefaultMountPoint)
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	self, err := p.Stat(os.Getpid())
	require.NoError(t, err)
	assert.Equal(t, os.Getppid(), self.PPID)
	exe, err := os.Executable()
	require.NoError(t, err)
	comm := filepath.Base(exe)
	if len(comm) > 15 {
		comm = comm[:15] // the kernel's TASK_COMM_LEN
	}
	assert.Equal(t, comm, self.Comm)

	// Burn CPU until the kernel has charged at least two ticks to us and
	// its machine-wide counters show busy time too. The two are kept
	// differently: a process's time is its measured run time, the
	// machine's is charged tick by tick, and a virtual machine's ticks can
	// lag behind (CI once saw our two ticks charged while /proc/stat had
	// not moved at all), so the one is no deadline for the other.
	before := CPU(self)
	machineBefore, err := p.MachineCPU()
	require.NoError(t, err)
	var machineAfter MachineCPU
	deadline := time.Now().Add(10 * time.Second)
	for n := 0; ; n++ {
		now, err := p.Stat(os.Getpid())
		require.NoError(t, err)
		machineAfter, err = p.MachineCPU()
		require.NoError(t, err)
		if CPU(now) >= before+2 && BusyPercent(machineBefore, machineAfter) > 0 {
			break
		}
		require.True(t, time.Now().Before(deadline),
			"after 10 s of spinning: %d ticks charged to us, machine busy %.1f%%",
			CPU(now)-before, BusyPercent(machineBefore, machineAfter))
		for i := 0; i < 1_000_000; i++ {
			n ^= i
		}
	}
	assert.Greater(t, machineAfter.Total, machineBefore.Total, "the machine's clock advanced")
	busy := BusyPercent(machineBefore, machineAfter)
	assert.True(t, busy > 0 && busy <= 100, "machine busy %.1f%% while we spun", busy)

	mem, err := p.Memory(os.Getpid())
	require.NoError(t, err)
	assert.Greater(t, mem.RSSKiB, int64(1024), "a Go test binary holds more than 1 MiB")
	assert.GreaterOrEqual(t, mem.HWMKiB, mem.RSSKiB, "the peak is at least the current")

	_, memGiB, kernel, load := p.describe()
	assert.Positive(t, memGiB, "MemTotal read")
	assert.NotEqual(t, "unknown", kernel)
	assert.NotEqual(t, "unknown", load)

	named, err := p.Named(self.Comm)
	require.NoError(t, err)
	var pids []int
	for _, s := range named {
		pids = append(pids, s.PID)
	}
	assert.Contains(t, pids, os.Getpid(), "found by name")
}
