package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ordersaga/ordersaga/libs/buildinfo"
	"github.com/ordersaga/ordersaga/libs/settings"

	"github.com/ordersaga/ordersaga/apps/loadgen/internal/bench"
)

// allSteps are the step kinds -steps selects from, in the order they run.
var allSteps = []string{bench.KindFloor, bench.KindClosed, bench.KindOpen, bench.KindItems, bench.KindLatency, bench.KindBacklog,
	bench.KindInvoiceBacklog, bench.KindSoak}

// config is a parsed command line.
type config struct {
	bench.Options
	JSONFile string
}

// errHelp is returned for -h and --version: what was asked for was
// printed, nothing else to do.
var errHelp = errors.New("help requested")

// listFlag is a repeatable KEY=VAL flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error {
	if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", v)
	}
	*l = append(*l, v)
	return nil
}

// environment holds the servers' defaults: those of the tests, then a
// developer machine's.
type environment struct {
	AMQPURL    string `env:"AMQP_URL" envDefault:"amqp://guest:guest@127.0.0.1:5672/" help:"default of -amqp"`
	MgmtURL    string `env:"RABBITMQ_MGMT_URL" envDefault:"http://guest:guest@127.0.0.1:15672" help:"default of -mgmt"`
	PGAdminURL string `env:"TEST_DATABASE_URL" envDefault:"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable" help:"default of -pg-admin"`
}

const intro = `usage: loadgen [flags] | loadgen --version

Measures ordersaga end to end and prints a table (and -json FILE). By
default it starts bin/gateway, bin/order-service, bin/payment-service and
bin/inventory-service on ports 3100-3103 with PAYMENT_LATENCY=0 (with
-inventory=false the first three only, the system of the figures of
record, and no steps with items; with -invoices also bin/invoice-service
on port 3104, counting each step's invoices), on a vhost and databases of
its own that it recreates (their names must start with "bench"), and
removes them at the end. Benchmarks never assert on time: the figures are reported, not
judged.

`

// parseConfig reads the command line; servers default to the environment
// the tests use (AMQP_URL, RABBITMQ_MGMT_URL, TEST_DATABASE_URL), then to
// a developer machine's. For -h it writes the usage to help, for -version
// or --version the build's one line, and returns errHelp.
func parseConfig(args []string, getenv func(string) string, help io.Writer) (config, error) {
	if buildinfo.Asked(args) {
		if err := buildinfo.Write(help); err != nil {
			return config{}, err
		}
		return config{}, errHelp
	}
	var env environment
	if err := settings.Parse(getenv, &env); err != nil {
		return config{}, err
	}
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	// Errors are returned, and the usage written for -h only: not on stderr
	// with every mistake.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var c config
	o := &c.Options
	var raw rawFlags
	defineServiceFlags(fs, o, &raw)
	defineInfraFlags(fs, o, env)
	defineLoadFlags(fs, o, &raw)
	defineSoakFlags(fs, o)
	defineFloorFlags(fs, o, &raw)
	fs.StringVar(&c.JSONFile, "json", "", "also write the report as JSON to this file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, printUsage(fs, help)
		}
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	tracingEnv, tracingErr := tracingFlag(raw.tracing, raw.otlp)
	o.Extra = append(slices.Clone(tracingEnv), raw.extra...)
	o.Settings = reportSettings(fs, o.Infra)
	return c, errors.Join(tracingErr, raw.complete(o))
}

// rawFlags are the flags that do not map one to one onto an Options field:
// lists, a switch that removes a step, and the pids of running services.
type rawFlags struct {
	pids, steps, conc, rates, floorConc, itemsRates string
	tracing, otlp                                   string
	extra                                           listFlag
	floor                                           bool
}

// defineServiceFlags defines where the services come from (started or
// running) and how started ones run.
func defineServiceFlags(fs *flag.FlagSet, o *bench.Options, raw *rawFlags) {
	fs.StringVar(&o.BinDir, "bin", "./bin", "directory of the service binaries (with -start)")
	fs.BoolVar(&o.Start, "start", true, "start the services as child processes; false: target running ones at -gateway etc.")
	fs.StringVar(&o.Endpoints.Gateway, "gateway", "http://127.0.0.1:3100", "gateway base URL (with -start: where it is started)")
	fs.StringVar(&o.Endpoints.Order, "order-url", "http://127.0.0.1:3101", "order service base URL (for /readyz, /metrics)")
	fs.StringVar(&o.Endpoints.Payment, "payment-url", "http://127.0.0.1:3102", "payment service base URL")
	fs.StringVar(&o.Endpoints.Inventory, "inventory-url", "http://127.0.0.1:3103", "inventory service base URL")
	fs.StringVar(&o.Endpoints.Invoice, "invoice-url", "http://127.0.0.1:3104", "invoice service base URL")
	fs.BoolVar(&o.Inventory, "inventory", true, "run inventory-service and the steps with items; false: the three services of the figures of record")
	fs.BoolVar(&o.Invoices, "invoices", false, "run invoice-service, count each step's invoice.issued, and run the invoice-backlog step")
	fs.StringVar(&raw.pids, "pids", "", "without -start: gateway=PID,order-service=PID,payment-service=PID,inventory-service=PID,invoice-service=PID for /proc accounting")
	fs.StringVar(&o.LogDir, "log-dir", ".run/bench", "where the started services' logs go")
	fs.StringVar(&o.LogLevel, "log-level", "info", "LOG_LEVEL of the started services (info: as deployed)")
	fs.StringVar(&raw.tracing, "tracing", "off", "the started services' tracing: off, or the sampled fraction of sagas (1.0, 0.1), exported to -otlp")
	fs.StringVar(&raw.otlp, "otlp", "http://127.0.0.1:4318", "OTLP/HTTP endpoint with -tracing on (TRACING=on make run's Jaeger)")
	fs.Var(&raw.extra, "service-env", "KEY=VALUE added to every started service's environment (repeatable), e.g. DB_MAX_CONNS=8")
}

// defineInfraFlags defines the broker and Postgres the run uses, and the
// scratch vhost and databases it recreates there.
func defineInfraFlags(fs *flag.FlagSet, o *bench.Options, env environment) {
	in := &o.Infra
	fs.StringVar(&in.AMQPURL, "amqp", env.AMQPURL, "broker URL; its vhost is replaced by -vhost")
	fs.StringVar(&in.VHost, "vhost", "bench", "vhost of the system (with -start: recreated, and deleted at the end)")
	fs.StringVar(&in.MgmtURL, "mgmt", env.MgmtURL, "RabbitMQ management API, credentials included")
	fs.StringVar(&in.PGAdminURL, "pg-admin", env.PGAdminURL, "Postgres connection allowed to create databases")
	fs.StringVar(&in.OrderDB, "order-db", "bench_orders", "order service database (with -start: recreated)")
	fs.StringVar(&in.PaymentDB, "payment-db", "bench_payments", "payment service database (with -start: recreated)")
	fs.StringVar(&in.InventoryDB, "inventory-db", "bench_inventory", "inventory service database (with -start: recreated)")
	fs.StringVar(&in.InvoiceDB, "invoice-db", "bench_invoices", "invoice service database (with -start and -invoices: recreated)")
	fs.StringVar(&in.FloorDB, "floor-db", "bench_floor", "scratch database of the Postgres floor")
	fs.BoolVar(&o.Keep, "keep", false, "keep the vhost and databases after the run, for inspection")
}

// defineLoadFlags defines the load steps: which run, the closed and open
// loops, the latency and backlog steps, and their timing.
func defineLoadFlags(fs *flag.FlagSet, o *bench.Options, raw *rawFlags) {
	fs.StringVar(&raw.steps, "steps", strings.Join(allSteps, ","), "steps to run: "+strings.Join(allSteps, ","))
	fs.StringVar(&raw.conc, "concurrency", "1,16,64", "closed-loop concurrencies")
	fs.StringVar(&raw.rates, "rates", "200,400,600", "open-loop rates, orders per second")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "measured time of each closed- and open-loop step")
	fs.DurationVar(&o.Warmup, "warmup", 2*time.Second, "load before each step's measured window, excluded from its figures")
	fs.DurationVar(&o.Pause, "pause", time.Second, "idle time between steps")
	fs.DurationVar(&o.PostTimeout, "post-timeout", 10*time.Second, "timeout of one POST")
	fs.DurationVar(&o.SagaTimeout, "saga-timeout", 30*time.Second, "how long a step waits for its orders' final events after its load ends")
	fs.IntVar(&o.MaxInflight, "max-inflight", 4096, "open loop: POSTs waiting at once before sends are counted as client_overload")
	fs.IntVar(&o.Backlog, "backlog", 10000, "backlog step: orders queued while the order service is stopped (0: skip)")
	fs.IntVar(&o.BacklogConc, "backlog-concurrency", 64, "backlog and invoice-backlog steps: concurrent POSTs")
	fs.IntVar(&o.InvoiceBacklog, "invoice-backlog", 3000, "invoice-backlog step (with -invoices): orders paid while invoice-service is stopped (0: skip)")
	fs.DurationVar(&o.LatencyValue, "latency-step", 1500*time.Millisecond, "latency step: PAYMENT_LATENCY of the restarted payment service (0: skip)")
	fs.Float64Var(&o.LatencyRate, "latency-rate", 400, "latency step: open-loop rate")
	fs.DurationVar(&o.LatencyDur, "latency-duration", 10*time.Second, "latency step: measured time")
	fs.IntVar(&o.Catalogue, "catalogue", 1000, "items steps: products seeded, each with a stock no step can exhaust")
	fs.IntVar(&o.ItemLines, "item-lines", 3, "items steps: lines of each order (distinct products, one unit each)")
	fs.IntVar(&o.ItemsConc, "items-concurrency", 64, "items steps: concurrency of the closed loop with items")
	fs.StringVar(&raw.itemsRates, "items-rates", "200", "items steps: open-loop rates with items, beside the total-only open-R")
}

// defineSoakFlags defines the soak step, off by default.
func defineSoakFlags(fs *flag.FlagSet, o *bench.Options) {
	fs.DurationVar(&o.Soak, "soak", 0, "soak step: duration of a steady open loop watched for goroutine and memory growth (0: skip)")
	fs.Float64Var(&o.SoakRate, "soak-rate", 200, "soak step: open-loop rate")
	fs.DurationVar(&o.SoakEvery, "soak-interval", 10*time.Second, "soak step: sampling interval")
}

// defineFloorFlags defines the measurement of the machine's floor.
func defineFloorFlags(fs *flag.FlagSet, o *bench.Options, raw *rawFlags) {
	fs.BoolVar(&raw.floor, "floor", true, "measure the machine's floor (raw broker confirms, Postgres commits)")
	fs.StringVar(&raw.floorConc, "floor-concurrency", "", "floor concurrencies (default: -concurrency)")
	fs.DurationVar(&o.FloorDur, "floor-duration", 3*time.Second, "measured time of each floor measurement")
}

// printUsage writes -h's text to help and returns errHelp.
func printUsage(fs *flag.FlagSet, help io.Writer) error {
	fs.SetOutput(help)
	fmt.Fprint(help, intro)
	fs.PrintDefaults()
	fmt.Fprint(help, "\nEnvironment:\n")
	if err := settings.Usage(help, &environment{}); err != nil {
		return err
	}
	return errHelp
}

// reportSettings is the command line as the report shows it: every flag,
// with no password.
func reportSettings(fs *flag.FlagSet, in bench.Infra) map[string]string {
	m := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) { m[f.Name] = f.Value.String() })
	m["amqp"] = redact(in.AMQPURL)
	m["mgmt"] = redact(in.MgmtURL)
	m["pg-admin"] = redact(in.PGAdminURL)
	return m
}

// problems collects every mistake of a command line, to report them all
// at once.
type problems []error

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Errorf(format, args...)) }

// err joins the problems on one line, or is nil.
func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	msgs := make([]string, len(p))
	for i, e := range p {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "; ")) // one line
}

// complete fills in o from the raw flags and checks the whole of it,
// reporting every mistake at once.
func (raw rawFlags) complete(o *bench.Options) error {
	var bad problems
	raw.parseLists(o, &bad)
	o.Steps = raw.selectSteps(o, &bad)
	checkFigures(o, &bad)
	checkServers(o, &bad)
	checkScratch(o, &bad)
	if raw.pids != "" {
		if o.Start {
			bad.add("-pids is for -start=false: with -start the tool knows its children")
		}
		var err error
		if o.PIDs, err = pidList(raw.pids); err != nil {
			bad.add("-pids: %v", err)
		}
	}
	return bad.err()
}

// parseLists reads the comma-separated concurrencies and rates; the floor
// defaults to the closed loops' concurrencies.
func (raw rawFlags) parseLists(o *bench.Options, bad *problems) {
	var err error
	if o.Concurrency, err = intList(raw.conc); err != nil {
		bad.add("-concurrency: %v", err)
	}
	if o.Rates, err = floatList(raw.rates); err != nil {
		bad.add("-rates: %v", err)
	}
	if o.ItemsRates, err = floatList(raw.itemsRates); err != nil {
		bad.add("-items-rates: %v", err)
	}
	if raw.floorConc == "" {
		o.FloorConc = o.Concurrency
	} else if o.FloorConc, err = intList(raw.floorConc); err != nil {
		bad.add("-floor-concurrency: %v", err)
	}
}

// selectSteps reads -steps, less the floor with -floor=false and the
// latency step with -latency-step 0.
func (raw rawFlags) selectSteps(o *bench.Options, bad *problems) map[string]bool {
	steps := map[string]bool{}
	for s := range strings.SplitSeq(raw.steps, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !contains(allSteps, s) {
			bad.add("-steps: unknown step %q (want some of %s)", s, strings.Join(allSteps, ","))
		}
		steps[s] = true
	}
	if !raw.floor {
		delete(steps, bench.KindFloor)
	}
	if o.LatencyValue == 0 {
		delete(steps, bench.KindLatency)
	}
	if !o.Inventory {
		delete(steps, bench.KindItems)
	}
	if !o.Invoices || o.InvoiceBacklog == 0 {
		delete(steps, bench.KindInvoiceBacklog)
	}
	return steps
}

// checkFigures checks the durations, rates and counts.
func checkFigures(o *bench.Options, bad *problems) {
	for name, d := range map[string]time.Duration{"-duration": o.Duration, "-post-timeout": o.PostTimeout,
		"-saga-timeout": o.SagaTimeout, "-latency-duration": o.LatencyDur, "-soak-interval": o.SoakEvery, "-floor-duration": o.FloorDur} {
		if d <= 0 {
			bad.add("%s must be positive", name)
		}
	}
	for name, d := range map[string]time.Duration{"-warmup": o.Warmup, "-pause": o.Pause, "-soak": o.Soak, "-latency-step": o.LatencyValue} {
		if d < 0 {
			bad.add("%s must not be negative", name)
		}
	}
	if o.LatencyRate <= 0 || o.SoakRate <= 0 {
		bad.add("-latency-rate and -soak-rate must be positive")
	}
	if o.MaxInflight < 1 || o.BacklogConc < 1 || o.Backlog < 0 || o.InvoiceBacklog < 0 {
		bad.add("-max-inflight and -backlog-concurrency must be positive, -backlog and -invoice-backlog not negative")
	}
	if o.ItemLines < 1 || o.ItemLines > 50 || o.Catalogue < o.ItemLines || o.ItemsConc < 1 {
		bad.add("-item-lines must be 1 to 50 (contract §5), -catalogue at least -item-lines, -items-concurrency positive")
	}
}

// checkServers checks the services' and servers' URLs, and drops the
// services' trailing slashes.
func checkServers(o *bench.Options, bad *problems) {
	for _, u := range []struct{ flag, v string }{{"-gateway", o.Endpoints.Gateway}, {"-order-url", o.Endpoints.Order}, {"-payment-url", o.Endpoints.Payment},
		{"-inventory-url", o.Endpoints.Inventory}, {"-invoice-url", o.Endpoints.Invoice}, {"-mgmt", o.Infra.MgmtURL}} {
		if p, err := url.Parse(u.v); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			bad.add("%s: want an http URL such as http://127.0.0.1:3100, got %q", u.flag, u.v)
		}
	}
	o.Endpoints.Trim()
	if _, err := amqp.ParseURI(o.Infra.AMQPURL); err != nil {
		bad.add("-amqp: %v", err)
	}
	if u, err := url.Parse(o.Infra.PGAdminURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		bad.add("-pg-admin: want a postgres:// URL")
	}
}

// checkScratch checks that what the run drops and recreates is named as
// scratch: the floor's database always, the vhost and the services'
// databases with -start.
func checkScratch(o *bench.Options, bad *problems) {
	type resource struct{ kind, name string }
	scratch := []resource{{"-floor-db", o.Infra.FloorDB}}
	if o.Start {
		scratch = append(scratch, resource{"-vhost", o.Infra.VHost}, resource{"-order-db", o.Infra.OrderDB}, resource{"-payment-db", o.Infra.PaymentDB},
			resource{"-inventory-db", o.Infra.InventoryDB}, resource{"-invoice-db", o.Infra.InvoiceDB})
	}
	for _, s := range scratch {
		if err := bench.Scratch(s.kind, s.name); err != nil {
			bad.add("%v", err)
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func intList(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func floatList(s string) ([]float64, error) {
	var out []float64
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, v)
	}
	return out, nil
}

func pidList(s string) (map[string]int, error) {
	out := map[string]int{}
	for f := range strings.SplitSeq(s, ",") {
		name, v, ok := strings.Cut(strings.TrimSpace(f), "=")
		if !ok || !contains(bench.Services, name) {
			return nil, fmt.Errorf("%q: want SERVICE=PID with SERVICE one of %s", f, strings.Join(bench.Services, ", "))
		}
		pid, err := strconv.Atoi(v)
		if err != nil || pid < 1 {
			return nil, fmt.Errorf("%q: bad pid", f)
		}
		out[name] = pid
	}
	return out, nil
}

// redact hides a URL's password in the report.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxx")
	}
	return u.String()
}

// tracingFlag is the services' environment for -tracing: nothing when off;
// otherwise an exporter to otlp and a ratio sampler at the gateway, whose
// decision the rest of each saga follows.
func tracingFlag(fraction, otlp string) ([]string, error) {
	if fraction == "off" {
		return nil, nil
	}
	f, err := strconv.ParseFloat(fraction, 64)
	if err != nil || f <= 0 || f > 1 {
		return nil, fmt.Errorf("-tracing %q: want off or a fraction in (0, 1]", fraction)
	}
	return []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + otlp, "OTEL_TRACES_SAMPLER=parentbased_traceidratio",
		"OTEL_TRACES_SAMPLER_ARG=" + strconv.FormatFloat(f, 'g', -1, 64)}, nil
}
