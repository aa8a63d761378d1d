package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Step kinds.
const (
	KindClosed  = "closed"
	KindOpen    = "open"
	KindLatency = "latency"
	KindBacklog = "backlog"
	KindSoak    = "soak"
	KindFloor   = "floor"
	// KindItems are the closed and open loops of orders with items.
	KindItems = "items"
	// KindInvoiceBacklog is the drain of invoices queued while
	// invoice-service was stopped (with invoices).
	KindInvoiceBacklog = "invoice-backlog"
)

// Report is everything one run measured.
type Report struct {
	Started  time.Time         `json:"started"`
	Finished time.Time         `json:"finished"`
	Machine  Machine           `json:"machine"`
	Settings map[string]string `json:"settings"`
	Floors   []Floor           `json:"floors"`
	Steps    []Step            `json:"steps"`
	Soak     *Soak             `json:"soak,omitempty"`
	// UnattributedFinals are final events of orders without a 202 seen
	// (a POST that timed out may still have been accepted);
	// DuplicateFinals are repeated final events of one order.
	UnattributedFinals int `json:"unattributed_finals"`
	// ItemsCost compares the steps with items to their total-only twins
	// (filled in by WriteJSON).
	ItemsCost       []ItemsCost `json:"items_cost,omitempty"`
	DuplicateFinals int         `json:"duplicate_finals"`
	// UnattributedInvoices are invoice.issued of orders not seen accepted
	// and paid; DuplicateInvoices repeated invoice.issued of one order.
	UnattributedInvoices int      `json:"unattributed_invoices,omitempty"`
	DuplicateInvoices    int      `json:"duplicate_invoices,omitempty"`
	Notes                []string `json:"notes"`
}

// Step is one measured load.
type Step struct {
	Name           string  `json:"name"`
	Kind           string  `json:"kind"`
	Concurrency    int     `json:"concurrency,omitempty"`
	Rate           float64 `json:"target_rate,omitempty"`
	PaymentLatency string  `json:"payment_latency"`
	WindowSec      float64 `json:"window_sec"`
	Counts         Counts  `json:"counts"`
	// SagasPerSec is the final events that arrived in the window divided
	// by its length.
	SagasPerSec float64 `json:"sagas_per_sec"`
	// AcceptedPerSec is the 202s of requests sent in the window divided by
	// its length: for an open loop, the rate actually achieved.
	AcceptedPerSec   float64   `json:"accepted_per_sec"`
	FloorRatio       float64   `json:"floor_ratio,omitempty"`
	FloorConcurrency int       `json:"floor_concurrency,omitempty"`
	Post             Latency   `json:"post_latency"`
	Final            Latency   `json:"post_to_final_latency"`
	SendLag          Latency   `json:"send_lag,omitempty"`
	CPU              CPUUse    `json:"cpu"`
	Memory           MemoryUse `json:"memory"`
	Backlog          *Backlog  `json:"backlog,omitempty"`
	// Invoices are the invoices of the step's paid orders (with invoices).
	Invoices       *Invoices       `json:"invoices,omitempty"`
	InvoiceBacklog *InvoiceBacklog `json:"invoice_backlog,omitempty"`
	FirstErrors    []string        `json:"first_errors,omitempty"`
	Notes          []string        `json:"notes,omitempty"`
}

// Backlog is the drain of commands queued while the order service was down.
type Backlog struct {
	Orders       int     `json:"orders"`
	PostSeconds  float64 `json:"post_seconds"`
	PostPerSec   float64 `json:"post_per_sec"`
	ReadySeconds float64 `json:"order_service_ready_seconds"`
	// DrainSeconds runs from the order service's start (exec) to the last
	// final event.
	DrainSeconds float64 `json:"drain_seconds"`
	DrainPerSec  float64 `json:"drain_per_sec"`
}

// Soak is a long steady load watched for growth.
// Its load figures are the step of kind soak.
type Soak struct {
	Samples []SoakSample         `json:"samples"`
	Trend   map[string]SoakTrend `json:"trend"`
}

// SoakSample is one look at the services during the soak.
type SoakSample struct {
	AtSec      float64            `json:"at_sec"`
	Goroutines map[string]float64 `json:"goroutines"`
	RSSMiB     map[string]float64 `json:"rss_mib"`
	HeapMiB    map[string]float64 `json:"heap_inuse_mib"`
}

// SoakTrend compares a service's first and last soak samples.
type SoakTrend struct {
	GoroutinesStart float64 `json:"goroutines_start"`
	GoroutinesEnd   float64 `json:"goroutines_end"`
	GoroutinesMax   float64 `json:"goroutines_max"`
	RSSStartMiB     float64 `json:"rss_start_mib"`
	RSSEndMiB       float64 `json:"rss_end_mib"`
	RSSMaxMiB       float64 `json:"rss_max_mib"`
	HeapStartMiB    float64 `json:"heap_start_mib"`
	HeapEndMiB      float64 `json:"heap_end_mib"`
}

// Trends summarises soak samples per service sampled.
func Trends(samples []SoakSample) map[string]SoakTrend {
	out := map[string]SoakTrend{}
	if len(samples) == 0 {
		return out
	}
	first, last := samples[0], samples[len(samples)-1]
	for _, name := range Services {
		if !slices.ContainsFunc(samples, func(s SoakSample) bool { return sampled(s, name) }) {
			continue
		}
		t := SoakTrend{
			GoroutinesStart: first.Goroutines[name], GoroutinesEnd: last.Goroutines[name],
			RSSStartMiB: first.RSSMiB[name], RSSEndMiB: last.RSSMiB[name],
			HeapStartMiB: first.HeapMiB[name], HeapEndMiB: last.HeapMiB[name],
		}
		for _, s := range samples {
			t.GoroutinesMax = max(t.GoroutinesMax, s.Goroutines[name])
			t.RSSMaxMiB = max(t.RSSMaxMiB, s.RSSMiB[name])
		}
		out[name] = t
	}
	return out
}

// sampled says whether a soak sample has any figure of a service.
func sampled(s SoakSample, name string) bool {
	_, g := s.Goroutines[name]
	_, r := s.RSSMiB[name]
	_, h := s.HeapMiB[name]
	return g || r || h
}

// WriteJSON writes the report to path.
func (r *Report) WriteJSON(path string) error {
	r.ItemsCost = r.ItemsCosts()
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// fmtNum prints a figure with about three significant digits, and "-"
// for a figure that was not measured.
func fmtNum(v float64, ok bool) string {
	switch {
	case !ok:
		return "-"
	case v == 0:
		return "0"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

func num(v float64) string { return fmtNum(v, true) }

func lookup(m map[string]float64, k string) string {
	v, ok := m[k]
	return fmtNum(v, ok)
}

// FormatErrors prints error counts as "kind:n kind:n", or "0".
func FormatErrors(errs map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(errs)) {
		if errs[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s:%d", k, errs[k]))
		}
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, " ")
}

// Load describes a step's load in a few characters.
func (s Step) Load() string {
	switch {
	case s.Kind == KindClosed || s.Kind == KindItems && s.Rate == 0:
		return fmt.Sprintf("c=%d", s.Concurrency)
	case s.Kind == KindBacklog:
		return fmt.Sprintf("%d queued", s.Counts.Accepted)
	case s.InvoiceBacklog != nil:
		return fmt.Sprintf("%d invoices queued", s.InvoiceBacklog.Orders)
	default:
		return fmt.Sprintf("%s/s (got %s)", num(s.Rate), num(s.AcceptedPerSec))
	}
}

// Print writes the report as tables.
func (r *Report) Print(w io.Writer) {
	r.printMachine(w)
	r.printFloors(w)
	r.printThroughput(w)
	r.printInvoices(w)
	r.printResources(w)
	r.printBacklogs(w)
	r.printSoak(w)
	r.printNotes(w)
}

// table starts an aligned table of w with its header row.
func table(w io.Writer, header string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, header)
	return tw
}

func (r *Report) printMachine(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "\nmachine   %d CPU × %s, %.1f GiB, Linux %s, load avg %s at start\n", m.CPUs, m.CPUModel, m.MemoryGiB, m.Kernel, m.LoadAvg)
	fmt.Fprintf(w, "software  %s, commit %s, RabbitMQ %s, PostgreSQL %s\n", m.GoVersion, m.GitCommit, m.RabbitMQ, m.PostgreSQL)
	fmt.Fprintf(w, "run       %s, %s\n\n", r.Started.Format(time.RFC3339), r.Finished.Sub(r.Started).Round(time.Second))
}

func (r *Report) printFloors(w io.Writer) {
	if len(r.Floors) == 0 {
		return
	}
	fmt.Fprintln(w, "machine floor (same run, same tool):")
	tw := table(w, "conc\tpublish+confirm/s\tp50 ms\t3-insert tx/s\tp50 ms\tnaive saga floor/s\t")
	for _, f := range r.Floors {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t\n", f.Concurrency, num(f.PublishPerSec), num(f.PublishLatency.P50), num(f.TxPerSec), num(f.TxLatency.P50), num(f.SagasPerSec))
	}
	tw.Flush()
	fmt.Fprintln(w, "  naive saga floor = 1 / (3/publish + 3/tx): a saga needs ≥ 3 confirmed publishes and ≥ 3 commits")
	fmt.Fprintln(w)
}

func (r *Report) printThroughput(w io.Writer) {
	if len(r.Steps) == 0 {
		return
	}
	fmt.Fprintln(w, "throughput and latency (latencies in ms; open loop measures from the intended send time):")
	tw := table(w, "step\tload\tsagas/s\t÷floor\tPOST p50\tp99\tfinal p50\tp90\tp99\tmax\tposted\tfinal\terrors\t")
	for _, s := range r.Steps {
		ratio := "-"
		if s.FloorRatio > 0 {
			ratio = fmt.Sprintf("%.2f@%d", s.FloorRatio, s.FloorConcurrency)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t\n",
			s.Name, s.Load(), num(s.SagasPerSec), ratio,
			num(s.Post.P50), num(s.Post.P99),
			num(s.Final.P50), num(s.Final.P90), num(s.Final.P99), num(s.Final.Max),
			s.Counts.Posted, s.Counts.Finals, FormatErrors(s.Counts.Errors))
	}
	tw.Flush()
	fmt.Fprintln(w)
}

// printInvoices writes the invoices of each step's paid orders, when the
// run counted them.
func (r *Report) printInvoices(w io.Writer) {
	if !slices.ContainsFunc(r.Steps, func(s Step) bool { return s.Invoices != nil }) {
		return
	}
	fmt.Fprintln(w, "invoices (invoice.issued of each step's paid orders; lag = order.paid → invoice.issued as both reached loadgen, ms):")
	tw := table(w, "step\tinvoices/s\tpaid\tinvoiced\tuninvoiced\tlag p50\tp90\tp99\tmax\t")
	for _, s := range r.Steps {
		if v := s.Invoices; v != nil {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t\n", s.Name, num(v.PerSec), v.Paid, v.Invoiced, v.Uninvoiced,
				num(v.Lag.P50), num(v.Lag.P90), num(v.Lag.P99), num(v.Lag.Max))
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
}

// accounted are the services of which some step has CPU or RSS figures,
// in start order but the gateway first, as the tables show them; the core
// ones always.
func (r *Report) accounted() []string {
	out := []string{Gateway}
	for _, name := range Services {
		seen := slices.ContainsFunc(r.Steps, func(s Step) bool {
			_, cpu := s.CPU.Seconds[name]
			_, perSaga := s.CPU.MSPerSaga[name]
			_, mem := s.Memory.PeakRSSMiB[name]
			return cpu || perSaga || mem
		})
		if name != Gateway && (seen || slices.Contains(CoreServices, name)) {
			out = append(out, name)
		}
	}
	return out
}

func (r *Report) printResources(w io.Writer) {
	if len(r.Steps) == 0 {
		return
	}
	services := r.accounted()
	short := make([]string, len(services))
	for i, name := range services {
		short[i] = strings.TrimSuffix(name, "-service")
	}
	rss := slices.Clone(short)
	rss[0] = "gw" // the gateway, first
	fmt.Fprintln(w, "resources (CPU ms per completed saga; services = their sum; postgres = all its processes, pg·bench = backends of the bench databases; busy = whole machine):")
	tw := table(w, "step\t"+strings.Join(short, "\t")+"\tservices\tbroker\tpostgres\tpg·bench\tloadgen\tbusy %\tpeak RSS MiB "+strings.Join(rss, "\t")+"\t")
	for _, s := range r.Steps {
		c := s.CPU.MSPerSaga
		sum, _ := s.ServicesCPU()
		row := []string{s.Name}
		for _, name := range services {
			row = append(row, lookup(c, name))
		}
		row = append(row, fmtNum(sum, sum > 0), lookup(c, KeyBroker), lookup(c, KeyPostgres), lookup(c, KeyPostgresBench), lookup(c, KeyLoadgen),
			fmt.Sprintf("%.0f", s.CPU.MachineBusyPct))
		for _, name := range services {
			row = append(row, lookup(s.Memory.PeakRSSMiB, name))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	tw.Flush()
	fmt.Fprintln(w)
	r.printItemsCost(w)
}

// ServicesCPU is the CPU per saga of every service that ran (ms), and
// that plus the broker's and Postgres's: all the processes a saga costs.
func (s Step) ServicesCPU() (services, all float64) {
	for _, name := range Services {
		services += s.CPU.MSPerSaga[name]
	}
	return services, services + s.CPU.MSPerSaga[KeyBroker] + s.CPU.MSPerSaga[KeyPostgres]
}

// ItemsCost compares a step with items to the total-only step of the same
// load (items-open-R with open-R, items-closed-C with closed-C).
type ItemsCost struct {
	Items, TotalOnly string
	// ServicesRatio is the services' CPU per saga with items ÷ without;
	// AllRatio the same with the broker and Postgres.
	ServicesRatio, AllRatio float64
}

// ItemsCosts pairs each step with items with its total-only twin.
func (r *Report) ItemsCosts() []ItemsCost {
	var out []ItemsCost
	for _, s := range r.Steps {
		if s.Kind != KindItems {
			continue
		}
		for _, t := range r.Steps {
			same := (t.Kind == KindOpen && s.Rate > 0 && t.Rate == s.Rate) || (t.Kind == KindClosed && s.Rate == 0 && t.Concurrency == s.Concurrency)
			si, sa := s.ServicesCPU()
			ti, ta := t.ServicesCPU()
			if same && ti > 0 && ta > 0 {
				out = append(out, ItemsCost{Items: s.Name, TotalOnly: t.Name, ServicesRatio: si / ti, AllRatio: sa / ta})
			}
		}
	}
	return out
}

func (r *Report) printItemsCost(w io.Writer) {
	costs := r.ItemsCosts()
	if len(costs) == 0 {
		return
	}
	fmt.Fprintln(w, "CPU per saga with items ÷ total-only at the same load (issue 10: at most 1.6):")
	for _, c := range costs {
		fmt.Fprintf(w, "  %s ÷ %s: services %.2f×, services + broker + postgres %.2f×\n", c.Items, c.TotalOnly, c.ServicesRatio, c.AllRatio)
	}
	fmt.Fprintln(w)
}

func (r *Report) printBacklogs(w io.Writer) {
	for _, s := range r.Steps {
		if b := s.Backlog; b != nil {
			fmt.Fprintf(w, "backlog   %d orders POSTed in %.1f s (%s/s) while the order service was stopped; it was ready after %.2f s and drained them in %.1f s (%s sagas/s)\n",
				b.Orders, b.PostSeconds, num(b.PostPerSec), b.ReadySeconds, b.DrainSeconds, num(b.DrainPerSec))
		}
		if b := s.InvoiceBacklog; b != nil {
			fmt.Fprintf(w, "invoices  %d orders paid while invoice-service was stopped; it was ready after %.2f s and issued their invoices in %.1f s (%s invoices/s)\n",
				b.Orders, b.ReadySeconds, b.DrainSeconds, num(b.DrainPerSec))
			if p := b.PDF; p != nil {
				fmt.Fprintf(w, "PDF       %d invoices fetched twice from invoice-service: %d bytes (p50, max %d); first fetch (renders) p50 %s ms, second (stored) p50 %s ms\n",
					p.Fetched, p.SizeP50Bytes, p.SizeMaxBytes, num(p.First.P50), num(p.Second.P50))
			}
		}
	}
}

func (r *Report) printSoak(w io.Writer) {
	if r.Soak == nil {
		return
	}
	fmt.Fprintf(w, "soak      %d samples; first → last (max):\n", len(r.Soak.Samples))
	tw := table(w, "service\tgoroutines\tRSS MiB\theap in use MiB\t")
	for _, name := range Services {
		t, ok := r.Soak.Trend[name]
		if !ok {
			continue
		}
		fmt.Fprintf(tw, "%s\t%.0f → %.0f (%.0f)\t%s → %s (%s)\t%s → %s\t\n", name,
			t.GoroutinesStart, t.GoroutinesEnd, t.GoroutinesMax,
			num(t.RSSStartMiB), num(t.RSSEndMiB), num(t.RSSMaxMiB),
			num(t.HeapStartMiB), num(t.HeapEndMiB))
	}
	tw.Flush()
}

// printNotes writes the strays, then each step's notes and first errors,
// then the run's notes.
func (r *Report) printNotes(w io.Writer) {
	if r.UnattributedFinals > 0 || r.DuplicateFinals > 0 {
		fmt.Fprintf(w, "strays    %d final events of orders without a 202 seen, %d repeated final events\n", r.UnattributedFinals, r.DuplicateFinals)
	}
	if r.UnattributedInvoices > 0 || r.DuplicateInvoices > 0 {
		fmt.Fprintf(w, "strays    %d invoice.issued of orders not seen accepted and paid, %d repeated invoice.issued\n", r.UnattributedInvoices, r.DuplicateInvoices)
	}
	for _, s := range r.Steps {
		for _, n := range s.Notes {
			fmt.Fprintf(w, "note      %s: %s\n", s.Name, n)
		}
		for _, e := range s.FirstErrors {
			fmt.Fprintf(w, "error     %s: %s\n", s.Name, e)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note      %s\n", n)
	}
}
