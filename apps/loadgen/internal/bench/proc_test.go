package bench

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var testProc = Proc{Root: "testdata/proc", Hz: 100}

func TestParseStat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want ProcStat
		err  bool
	}{
		{"plain", "42 (gateway) S 7 42 42 0 -1 0 0 0 0 0 11 22 33 44 20 0", ProcStat{PID: 42, Comm: "gateway", PPID: 7, UTime: 11, STime: 22, CUTime: 33, CSTime: 44}, false},
		{"comm with spaces and parentheses", "300 (my (odd) prog) R 1 300 300 0 -1 4194560 100 0 0 0 123 45 6 7 20 0", ProcStat{PID: 300, Comm: "my (odd) prog", PPID: 1, UTime: 123, STime: 45, CUTime: 6, CSTime: 7}, false},
		{"truncated", "42 (gateway) S 7 42", ProcStat{}, true},
		{"no comm", "42 gateway S 7", ProcStat{}, true},
		{"not a number", "42 (gateway) S 7 42 42 0 -1 0 0 0 0 0 x 22 33 44 20 0", ProcStat{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseStat([]byte(tc.in))
			if tc.err {
				assert.Error(t, err, "malformed stat must be rejected")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestParseStatus(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/proc/300/status")
	require.NoError(t, err)
	m, err := ParseStatus(b)
	require.NoError(t, err)
	assert.Equal(t, Memory{RSSKiB: 30720, HWMKiB: 40960}, m)

	_, err = ParseStatus([]byte("Name:\tkthreadd\nState:\tS (sleeping)\n"))
	assert.Error(t, err, "a kernel thread has no VmRSS: an error, not a zero")
}

func TestMachineCPU(t *testing.T) {
	t.Parallel()
	c, err := testProc.MachineCPU()
	require.NoError(t, err)
	assert.Equal(t, MachineCPU{Total: 9630, Idle: 8100}, c, "user..steal summed, guest not; idle+iowait idle")

	before := MachineCPU{Total: 1000, Idle: 600}
	assert.InDelta(t, 75.0, BusyPercent(before, MachineCPU{Total: 1200, Idle: 650}), 1e-9, "150 of 200 ticks busy")
	assert.Zero(t, BusyPercent(before, before), "no time passed: 0, not NaN")

	_, err = ParseMachineCPU([]byte("intr 1\n"))
	assert.Error(t, err)
}

func TestNamedAndTreeCPU(t *testing.T) {
	t.Parallel()
	pgs, err := testProc.Named("postgres")
	require.NoError(t, err)
	assert.Len(t, pgs, 3, "postmaster and two backends")
	// postmaster 10+5 plus its reaped children 50+25; backends 7+3 and
	// 4+1, whose own children are already in the postmaster's count.
	assert.Equal(t, uint64(105), TreeCPU(pgs))

	beams, err := testProc.Named("beam.smp")
	require.NoError(t, err)
	assert.Equal(t, uint64(502), TreeCPU(beams))

	none, err := testProc.Named("nothing-by-this-name")
	require.NoError(t, err)
	assert.Empty(t, none)
}

func TestBackendOf(t *testing.T) {
	t.Parallel()
	dbs := []string{"bench_orders", "bench_payments"}
	tests := []struct {
		cmdline string
		want    bool
	}{
		{testProc.Cmdline(101), true},
		{testProc.Cmdline(102), false},
		{testProc.Cmdline(100), false},
		{"postgres: postgres bench_payments [local] idle", true},
		{"postgres: 15/main: checkpointer", false},
		{"", false},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, BackendOf(tc.cmdline, dbs), "cmdline %q", tc.cmdline)
	}
}

func TestAccountantBetween(t *testing.T) {
	t.Parallel()
	a := &Accountant{Proc: testProc, PIDs: func() map[string]int { return map[string]int{Gateway: 300} }, BenchDBs: []string{"bench_orders"}}
	s := a.Sample()
	assert.Equal(t, pidTicks{pid: 300, ticks: 168}, s.procs[Gateway])
	assert.Equal(t, map[string]uint64{KeyBroker: 502, KeyPostgres: 105, KeyPostgresBench: 10}, s.others)

	before := Sample{At: time.Now(), procs: map[string]pidTicks{Gateway: {1, 100}, OrderService: {2, 50}, KeyLoadgen: {3, 10}},
		others: map[string]uint64{KeyBroker: 1000}, machine: MachineCPU{Total: 1000, Idle: 500}}
	after := Sample{At: time.Now(), procs: map[string]pidTicks{Gateway: {1, 300}, OrderService: {9, 40}, KeyLoadgen: {3, 20}},
		others: map[string]uint64{KeyBroker: 1400, KeyPostgres: 7}, machine: MachineCPU{Total: 1400, Idle: 600}}
	u := a.Between(before, after, 100)
	assert.Equal(t, map[string]float64{Gateway: 2, OrderService: 0.4, KeyLoadgen: 0.1, KeyBroker: 4}, u.Seconds,
		"the restarted order service counts its whole new life; postgres, unseen before, is left out")
	assert.InDelta(t, 20.0, u.MSPerSaga[Gateway], 1e-9, "2 s over 100 sagas")
	assert.InDelta(t, 75.0, u.MachineBusyPct, 1e-9)
	assert.Empty(t, a.Between(before, after, 0).MSPerSaga, "no saga: no per-saga figure")
}

func TestDescribeReadsCPUAndMemory(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/proc/cpuinfo")
	require.NoError(t, err)
	assert.Equal(t, "AMD EPYC 7B13 64-Core Processor", CPUModel(string(b)))
	assert.Equal(t, "unknown", CPUModel(""))
	b, err = os.ReadFile("testdata/proc/meminfo")
	require.NoError(t, err)
	assert.InDelta(t, 23.54, MemTotalGiB(string(b)), 0.01)
}
