package bench

import (
	"os"
	"sync"
	"time"
)

// Keys of the CPU figures besides the services.
const (
	KeyBroker        = "broker"         // every beam.smp process
	KeyPostgres      = "postgres"       // every postgres process, reaped backends included
	KeyPostgresBench = "postgres_bench" // live backends connected to the bench databases
	KeyLoadgen       = "loadgen"        // this process
)

// Accountant samples the CPU time and memory of the services, the broker,
// Postgres, the generator itself and the whole machine from /proc.
type Accountant struct {
	Proc Proc
	// PIDs returns the services' current process ids (they change when a
	// step restarts a service).
	PIDs func() map[string]int
	// BenchDBs are the databases whose backends count as postgres_bench.
	BenchDBs []string
}

type pidTicks struct {
	pid   int
	ticks uint64
}

// Sample is the accounting at one instant, in clock ticks.
type Sample struct {
	At      time.Time
	procs   map[string]pidTicks // services and loadgen
	others  map[string]uint64   // broker, postgres, postgres_bench, when found
	machine MachineCPU
}

// Sample reads the counters now. What cannot be read (a process that is
// gone, a server in a container we cannot see) is left out, never zero.
func (a *Accountant) Sample() Sample {
	s := Sample{At: time.Now(), procs: map[string]pidTicks{}, others: map[string]uint64{}}
	pids := map[string]int{KeyLoadgen: os.Getpid()}
	if a.PIDs != nil {
		for k, v := range a.PIDs() {
			pids[k] = v
		}
	}
	for name, pid := range pids {
		if st, err := a.Proc.Stat(pid); err == nil {
			s.procs[name] = pidTicks{pid: pid, ticks: CPU(st)}
		}
	}
	if beams, err := a.Proc.Named("beam.smp"); err == nil && len(beams) > 0 {
		s.others[KeyBroker] = TreeCPU(beams)
	}
	if pgs, err := a.Proc.Named("postgres"); err == nil && len(pgs) > 0 {
		s.others[KeyPostgres] = TreeCPU(pgs)
		var bench uint64
		for _, p := range pgs {
			if BackendOf(a.Proc.Cmdline(p.PID), a.BenchDBs) {
				bench += CPU(p)
			}
		}
		s.others[KeyPostgresBench] = bench
	}
	if m, err := a.Proc.MachineCPU(); err == nil {
		s.machine = m
	}
	return s
}

// CPUUse is the CPU spent between two samples.
type CPUUse struct {
	// Seconds per process or family.
	Seconds map[string]float64 `json:"cpu_seconds"`
	// MSPerSaga divides Seconds by the sagas completed in between.
	MSPerSaga map[string]float64 `json:"cpu_ms_per_saga"`
	// MachineBusyPct is the busy share of all CPUs of the machine,
	// whoever used them.
	MachineBusyPct float64 `json:"machine_busy_pct"`
}

// Between computes the CPU used from before to after, and per saga when
// sagas > 0. A service whose process id changed was restarted in between:
// all of its new process's time counts.
func (a *Accountant) Between(before, after Sample, sagas int) CPUUse {
	u := CPUUse{Seconds: map[string]float64{}, MSPerSaga: map[string]float64{}, MachineBusyPct: BusyPercent(before.machine, after.machine)}
	put := func(key string, ticks uint64) {
		sec := Seconds(ticks)
		u.Seconds[key] = sec
		if sagas > 0 {
			u.MSPerSaga[key] = 1000 * sec / float64(sagas)
		}
	}
	for name, end := range after.procs {
		start, ok := before.procs[name]
		switch {
		case ok && start.pid == end.pid && end.ticks >= start.ticks:
			put(name, end.ticks-start.ticks)
		case !ok || start.pid != end.pid:
			put(name, end.ticks)
		}
	}
	for key, end := range after.others {
		if start, ok := before.others[key]; ok && end >= start {
			put(key, end-start)
		}
	}
	return u
}

// MemoryUse is the resident memory of the services during a step, in MiB.
type MemoryUse struct {
	// PeakRSSMiB is the highest VmRSS sampled during the step.
	PeakRSSMiB map[string]float64 `json:"peak_rss_mib"`
	// HWMMiB is VmHWM at the end of the step: the peak over the
	// process's whole life, earlier steps included.
	HWMMiB map[string]float64 `json:"vm_hwm_mib"`
}

// RSSSampler records the peak VmRSS of each service while it runs.
type RSSSampler struct {
	a    *Accountant
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	peak map[string]int64 // KiB
}

// SampleRSS starts sampling every interval until Stop.
func (a *Accountant) SampleRSS(every time.Duration) *RSSSampler {
	r := &RSSSampler{a: a, stop: make(chan struct{}), done: make(chan struct{}), peak: map[string]int64{}}
	go func() {
		defer close(r.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			r.sample()
			select {
			case <-r.stop:
				return
			case <-t.C:
			}
		}
	}()
	return r
}

func (r *RSSSampler) sample() {
	if r.a.PIDs == nil {
		return
	}
	for name, pid := range r.a.PIDs() {
		m, err := r.a.Proc.Memory(pid)
		if err != nil {
			continue
		}
		r.mu.Lock()
		r.peak[name] = max(r.peak[name], m.RSSKiB)
		r.mu.Unlock()
	}
}

// Stop ends the sampling, takes a last sample and returns the peaks along
// with each service's VmHWM now.
func (r *RSSSampler) Stop() MemoryUse {
	close(r.stop)
	<-r.done
	r.sample()
	m := MemoryUse{PeakRSSMiB: map[string]float64{}, HWMMiB: map[string]float64{}}
	r.mu.Lock()
	for name, kib := range r.peak {
		m.PeakRSSMiB[name] = float64(kib) / 1024
	}
	r.mu.Unlock()
	if r.a.PIDs != nil {
		for name, pid := range r.a.PIDs() {
			if mem, err := r.a.Proc.Memory(pid); err == nil {
				m.HWMMiB[name] = float64(mem.HWMKiB) / 1024
			}
		}
	}
	return m
}
