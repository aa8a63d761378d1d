package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Proc reads process and machine accounting from a /proc tree. Root is
// "/proc" on a live machine and a testdata folder in tests.
type Proc struct {
	Root string
	// Hz is the kernel's clock tick (USER_HZ) that /proc times count in.
	Hz float64
}

// NewProc returns a Proc over /proc with the clock tick from getconf
// CLK_TCK, or 100 (USER_HZ on every Linux architecture Go supports) when
// getconf is missing.
func NewProc() Proc {
	hz := 100.0
	if out, err := exec.Command("getconf", "CLK_TCK").Output(); err == nil {
		if v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil && v > 0 {
			hz = v
		}
	}
	return Proc{Root: "/proc", Hz: hz}
}

// ProcStat is what the accounting uses of /proc/PID/stat; times are in
// clock ticks.
type ProcStat struct {
	PID    int
	Comm   string
	PPID   int
	UTime  uint64
	STime  uint64
	CUTime uint64 // of reaped children
	CSTime uint64
}

// CPU is the process's own user+system time, in ticks.
func (s ProcStat) CPU() uint64 { return s.UTime + s.STime }

// ChildrenCPU is the user+system time of the children it reaped, in ticks.
func (s ProcStat) ChildrenCPU() uint64 { return s.CUTime + s.CSTime }

// ParseStat parses the contents of /proc/PID/stat. The command name may
// hold spaces and parentheses, so fields are counted after its last ')'.
func ParseStat(b []byte) (ProcStat, error) {
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return ProcStat{}, errors.New("stat: no (comm)")
	}
	var s ProcStat
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:open])))
	if err != nil {
		return ProcStat{}, fmt.Errorf("stat: pid: %w", err)
	}
	s.PID = pid
	s.Comm = string(b[open+1 : end])
	// Fields after comm start at field 3 (state); see proc(5).
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 15 {
		return ProcStat{}, fmt.Errorf("stat: %d fields after comm, want at least 15", len(f))
	}
	field := func(n int) (uint64, error) { return strconv.ParseUint(f[n-3], 10, 64) }
	ppid, err := field(4)
	if err != nil {
		return ProcStat{}, fmt.Errorf("stat: ppid: %w", err)
	}
	s.PPID = int(ppid)
	for _, x := range []struct {
		n   int
		dst *uint64
	}{{14, &s.UTime}, {15, &s.STime}, {16, &s.CUTime}, {17, &s.CSTime}} {
		if *x.dst, err = field(x.n); err != nil {
			return ProcStat{}, fmt.Errorf("stat: field %d: %w", x.n, err)
		}
	}
	return s, nil
}

// Memory is the resident set of a process, in KiB.
type Memory struct {
	RSSKiB int64 // VmRSS: now
	HWMKiB int64 // VmHWM: peak over the process's life
}

// ParseStatus reads VmRSS and VmHWM from the contents of /proc/PID/status.
func ParseStatus(b []byte) (Memory, error) {
	var m Memory
	found := 0
	for line := range strings.SplitSeq(string(b), "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return Memory{}, fmt.Errorf("status: %s: unexpected %q", key, val)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("status: %s: %w", key, err)
		}
		if key == "VmRSS" {
			m.RSSKiB = n
		} else {
			m.HWMKiB = n
		}
		found++
	}
	if found != 2 {
		return Memory{}, errors.New("status: no VmRSS/VmHWM (kernel thread or zombie?)")
	}
	return m, nil
}

// MachineCPU is the first line of /proc/stat, in ticks summed over CPUs.
type MachineCPU struct {
	Total uint64
	Idle  uint64 // idle + iowait
}

// ParseMachineCPU parses the aggregate "cpu" line of /proc/stat. Guest time
// is already included in user and nice, so it is not added twice.
func ParseMachineCPU(b []byte) (MachineCPU, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return MachineCPU{}, errors.New("/proc/stat: no aggregate cpu line")
	}
	var c MachineCPU
	for i, s := range f[1:] {
		if i >= 8 { // guest, guest_nice
			break
		}
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return MachineCPU{}, fmt.Errorf("/proc/stat: %w", err)
		}
		c.Total += v
		if i == 3 || i == 4 {
			c.Idle += v
		}
	}
	return c, nil
}

// BusyPercent is the share of the machine's CPU time that was busy between
// two samples.
func BusyPercent(before, after MachineCPU) float64 {
	total := float64(after.Total) - float64(before.Total)
	if total <= 0 {
		return 0
	}
	return 100 * (total - (float64(after.Idle) - float64(before.Idle))) / total
}

// Stat reads /proc/PID/stat.
func (p Proc) Stat(pid int) (ProcStat, error) {
	b, err := os.ReadFile(filepath.Join(p.Root, strconv.Itoa(pid), "stat"))
	if err != nil {
		return ProcStat{}, err
	}
	return ParseStat(b)
}

// Memory reads /proc/PID/status.
func (p Proc) Memory(pid int) (Memory, error) {
	b, err := os.ReadFile(filepath.Join(p.Root, strconv.Itoa(pid), "status"))
	if err != nil {
		return Memory{}, err
	}
	return ParseStatus(b)
}

// MachineCPU reads /proc/stat.
func (p Proc) MachineCPU() (MachineCPU, error) {
	b, err := os.ReadFile(filepath.Join(p.Root, "stat"))
	if err != nil {
		return MachineCPU{}, err
	}
	return ParseMachineCPU(b)
}

// Seconds converts ticks to seconds.
func (p Proc) Seconds(ticks uint64) float64 { return float64(ticks) / p.Hz }

// Named returns the stat of every process whose command name is one of
// names. Processes that vanish while the tree is read are skipped.
func (p Proc) Named(names ...string) ([]ProcStat, error) {
	entries, err := os.ReadDir(p.Root)
	if err != nil {
		return nil, err
	}
	var out []ProcStat
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		s, err := p.Stat(pid)
		if err != nil {
			continue
		}
		for _, n := range names {
			if s.Comm == n {
				out = append(out, s)
				break
			}
		}
	}
	return out, nil
}

// Cmdline reads /proc/PID/cmdline with NULs turned into spaces (a Postgres
// backend rewrites it to "postgres: 15/main: USER DATABASE HOST(PORT) STATE").
func (p Proc) Cmdline(pid int) string {
	b, err := os.ReadFile(filepath.Join(p.Root, strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
}

// TreeCPU sums the CPU ticks of a family of processes (every PostgreSQL
// process, every beam.smp): each one's own time, plus the reaped children's
// time of its roots (those whose parent is not in the family), so that
// backends which exited between two samples still count.
func TreeCPU(procs []ProcStat) uint64 {
	in := map[int]bool{}
	for _, s := range procs {
		in[s.PID] = true
	}
	var sum uint64
	for _, s := range procs {
		sum += s.CPU()
		if !in[s.PPID] {
			sum += s.ChildrenCPU()
		}
	}
	return sum
}

// BackendOf reports whether a Postgres process's cmdline says it is a
// backend connected to one of dbs.
func BackendOf(cmdline string, dbs []string) bool {
	f := strings.Fields(cmdline)
	// "postgres: [CLUSTER:] USER DATABASE HOST(PORT) STATE"
	if len(f) < 3 || f[0] != "postgres:" {
		return false
	}
	i := 1
	if strings.HasSuffix(f[i], ":") {
		i++
	}
	if i+1 >= len(f) {
		return false
	}
	for _, db := range dbs {
		if f[i+1] == db {
			return true
		}
	}
	return false
}
