package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordersaga/ordersaga/libs/rabbit/mgmt"
)

// Machine describes where a run happened, so that figures from different
// machines are never compared unknowingly.
type Machine struct {
	CPUs       int     `json:"cpus"`
	CPUModel   string  `json:"cpu_model"`
	MemoryGiB  float64 `json:"memory_gib"`
	Kernel     string  `json:"kernel"`
	LoadAvg    string  `json:"loadavg_at_start"`
	GoVersion  string  `json:"go_version"`
	GitCommit  string  `json:"git_commit"`
	RabbitMQ   string  `json:"rabbitmq"`
	PostgreSQL string  `json:"postgresql"`
	Hostname   string  `json:"hostname"`
}

// Describe gathers the machine's description; what cannot be read is
// "unknown".
func Describe(ctx context.Context, proc Proc, infra Infra) Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), CPUModel: "unknown", Kernel: "unknown",
		LoadAvg: "unknown", GitCommit: "unknown", RabbitMQ: "unknown", PostgreSQL: "unknown"}
	m.Hostname, _ = os.Hostname()
	m.CPUModel, m.MemoryGiB, m.Kernel, m.LoadAvg = proc.describe()
	if out, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.GitCommit = strings.TrimSpace(string(out))
		if st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
			m.GitCommit += "+dirty"
		}
	}
	if api, err := mgmt.New(infra.MgmtURL); err == nil {
		if ov, err := api.Overview(ctx); err == nil && ov.RabbitMQVersion != "" {
			m.RabbitMQ = ov.RabbitMQVersion + " (Erlang " + ov.ErlangVersion + ")"
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(cctx, infra.PGAdminURL); err == nil {
		var v string
		if conn.QueryRow(cctx, "SHOW server_version").Scan(&v) == nil {
			m.PostgreSQL = v
		}
		conn.Close(cctx)
	}
	return m
}

// describe reads the CPU model (the first one's), the memory in GiB, the
// kernel release and the load averages; what cannot be read is "unknown"
// (0 for the memory).
func (p Proc) describe() (cpuModel string, memGiB float64, kernel, loadAvg string) {
	cpuModel, kernel, loadAvg = "unknown", "unknown", "unknown"
	if cpus, err := p.fs.CPUInfo(); err == nil && len(cpus) > 0 && cpus[0].ModelName != "" {
		cpuModel = strings.Join(strings.Fields(cpus[0].ModelName), " ")
	}
	if mem, err := p.fs.Meminfo(); err == nil && mem.MemTotal != nil {
		memGiB = float64(*mem.MemTotal) / (1 << 20) // kB
	}
	if rel, err := p.fs.SysctlStrings("kernel/osrelease"); err == nil && len(rel) == 1 {
		kernel = rel[0]
	}
	if l, err := p.fs.LoadAvg(); err == nil {
		loadAvg = fmt.Sprintf("%.2f %.2f %.2f", l.Load1, l.Load5, l.Load15)
	}
	return cpuModel, memGiB, kernel, loadAvg
}
