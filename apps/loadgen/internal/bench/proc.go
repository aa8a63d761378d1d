package bench

import (
	"errors"
	"fmt"
	"strings"

	"github.com/prometheus/procfs"
)

// ticksPerSecond is USER_HZ, the clock tick that /proc/PID/stat counts in:
// 100 on every Linux architecture Go supports, as procfs also assumes.
const ticksPerSecond = 100

// Proc reads process and machine accounting from a /proc tree through
// procfs: "/proc" on a live machine, a testdata folder in tests.
type Proc struct {
	fs procfs.FS
}

// NewProc returns a Proc over the /proc tree at root.
func NewProc(root string) (Proc, error) {
	fs, err := procfs.NewFS(root)
	if err != nil {
		return Proc{}, fmt.Errorf("proc tree %s: %w", root, err)
	}
	return Proc{fs: fs}, nil
}

// CPU is a process's own user+system time, in ticks.
func CPU(s procfs.ProcStat) uint64 { return uint64(s.UTime) + uint64(s.STime) }

// ChildrenCPU is the user+system time of the children a process reaped,
// in ticks.
func ChildrenCPU(s procfs.ProcStat) uint64 { return uint64(max(s.CUTime, 0) + max(s.CSTime, 0)) }

// Stat reads /proc/PID/stat.
func (p Proc) Stat(pid int) (procfs.ProcStat, error) {
	proc, err := p.fs.Proc(pid)
	if err != nil {
		return procfs.ProcStat{}, err
	}
	return proc.Stat()
}

// Memory is the resident set of a process, in KiB.
type Memory struct {
	RSSKiB int64 // VmRSS: now
	HWMKiB int64 // VmHWM: peak over the process's life
}

// Memory reads VmRSS and VmHWM from /proc/PID/status.
func (p Proc) Memory(pid int) (Memory, error) {
	proc, err := p.fs.Proc(pid)
	if err != nil {
		return Memory{}, err
	}
	st, err := proc.NewStatus()
	if err != nil {
		return Memory{}, err
	}
	if st.VmRSS == 0 && st.VmHWM == 0 {
		return Memory{}, errors.New("status: no VmRSS/VmHWM (kernel thread or zombie?)")
	}
	return Memory{RSSKiB: int64(st.VmRSS / 1024), HWMKiB: int64(st.VmHWM / 1024)}, nil
}

// MachineCPU is the machine's CPU time summed over CPUs, in seconds.
type MachineCPU struct {
	Total float64
	Idle  float64 // idle + iowait
}

// MachineCPU reads the aggregate cpu line of /proc/stat. Guest time is
// already included in user and nice, so it is not added twice.
func (p Proc) MachineCPU() (MachineCPU, error) {
	st, err := p.fs.Stat()
	if err != nil {
		return MachineCPU{}, err
	}
	c := st.CPUTotal
	return MachineCPU{
		Total: c.User + c.Nice + c.System + c.Idle + c.Iowait + c.IRQ + c.SoftIRQ + c.Steal,
		Idle:  c.Idle + c.Iowait,
	}, nil
}

// BusyPercent is the share of the machine's CPU time that was busy between
// two samples.
func BusyPercent(before, after MachineCPU) float64 {
	total := after.Total - before.Total
	if total <= 0 {
		return 0
	}
	return 100 * (total - (after.Idle - before.Idle)) / total
}

// Seconds converts ticks to seconds.
func Seconds(ticks uint64) float64 { return float64(ticks) / ticksPerSecond }

// Named returns the stat of every process whose command name is one of
// names. Processes that vanish while the tree is read are skipped.
func (p Proc) Named(names ...string) ([]procfs.ProcStat, error) {
	procs, err := p.fs.AllProcs()
	if err != nil {
		return nil, err
	}
	var out []procfs.ProcStat
	for _, proc := range procs {
		s, err := proc.Stat()
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

// Cmdline reads /proc/PID/cmdline with its arguments joined by spaces (a
// Postgres backend rewrites it to "postgres: 15/main: USER DATABASE
// HOST(PORT) STATE").
func (p Proc) Cmdline(pid int) string {
	proc, err := p.fs.Proc(pid)
	if err != nil {
		return ""
	}
	args, err := proc.CmdLine()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.Join(args, " "))
}

// TreeCPU sums the CPU ticks of a family of processes (every PostgreSQL
// process, every beam.smp): each one's own time, plus the reaped children's
// time of its roots (those whose parent is not in the family), so that
// backends which exited between two samples still count.
func TreeCPU(procs []procfs.ProcStat) uint64 {
	in := map[int]bool{}
	for _, s := range procs {
		in[s.PID] = true
	}
	var sum uint64
	for _, s := range procs {
		sum += CPU(s)
		if !in[s.PPID] {
			sum += ChildrenCPU(s)
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
