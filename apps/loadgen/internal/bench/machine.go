package bench

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"strconv"
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
func Describe(ctx context.Context, procRoot string, infra Infra) Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), CPUModel: "unknown", Kernel: "unknown",
		LoadAvg: "unknown", GitCommit: "unknown", RabbitMQ: "unknown", PostgreSQL: "unknown"}
	m.Hostname, _ = os.Hostname()
	if b, err := os.ReadFile(procRoot + "/cpuinfo"); err == nil {
		m.CPUModel = CPUModel(string(b))
	}
	if b, err := os.ReadFile(procRoot + "/meminfo"); err == nil {
		m.MemoryGiB = MemTotalGiB(string(b))
	}
	if b, err := os.ReadFile(procRoot + "/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile(procRoot + "/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
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

// CPUModel reads the first "model name" of /proc/cpuinfo.
func CPUModel(cpuinfo string) string {
	for line := range strings.SplitSeq(cpuinfo, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return "unknown"
}

// MemTotalGiB reads MemTotal of /proc/meminfo.
func MemTotalGiB(meminfo string) float64 {
	for line := range strings.SplitSeq(meminfo, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == "MemTotal" {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				kib, err := strconv.ParseFloat(f[0], 64)
				if err == nil {
					return kib / (1 << 20)
				}
			}
		}
	}
	return 0
}
