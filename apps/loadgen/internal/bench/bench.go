// Package bench measures ordersaga end to end: it starts (or targets) the
// three services, drives the gateway in closed and open loops, learns each
// saga's outcome from the broker instead of polling, accounts CPU and
// memory from /proc, and measures the machine's own floor (raw broker
// confirms and Postgres commits) in the same run, so that results carry a
// ratio that survives a noisy or different machine.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/procfs"

	"github.com/ordersaga/ordersaga/libs/gatewayclient"
)

// Options are every knob of a run.
type Options struct {
	// Start: start the services as child processes on Endpoints, on a
	// fresh vhost and fresh databases. Otherwise target running ones.
	Start     bool
	BinDir    string
	LogDir    string
	LogLevel  string
	Extra     []string       // KEY=VAL for every started service
	Endpoints Endpoints      // where the services answer
	PIDs      map[string]int // without Start: the services' pids, for /proc accounting
	Infra     Infra
	Keep      bool // leave the vhost and databases for inspection

	Steps        map[string]bool // kinds to run
	Concurrency  []int
	Rates        []float64
	Duration     time.Duration
	Warmup       time.Duration
	Pause        time.Duration // idle time between steps
	PostTimeout  time.Duration
	SagaTimeout  time.Duration // how long a step waits for its last finals
	MaxInflight  int
	Backlog      int
	BacklogConc  int
	LatencyValue time.Duration // PAYMENT_LATENCY of the latency step
	LatencyRate  float64
	LatencyDur   time.Duration
	Soak         time.Duration
	SoakRate     float64
	SoakEvery    time.Duration
	FloorConc    []int
	FloorDur     time.Duration
	// Inventory runs inventory-service too (with Start) and the steps
	// with items; false is the system of the figures of record.
	Inventory  bool
	Catalogue  int // products seeded for the steps with items
	ItemLines  int // lines of each order with items
	ItemsConc  int // the closed loop with items
	ItemsRates []float64
	// Invoices runs invoice-service too (with Start), counts the
	// invoice.issued of every step's paid orders, and runs the
	// invoice-backlog step of InvoiceBacklog orders.
	Invoices       bool
	InvoiceBacklog int
	Settings       map[string]string // the command line, for the report
}

// Services are the services of the run, in start order: the core ones
// and the optional participants switched on.
func (o Options) Services() []string {
	return Running(map[string]bool{InventoryService: o.Inventory, InvoiceService: o.Invoices})
}

type bencher struct {
	o       Options
	out     io.Writer
	sys     *System // nil without Start
	acct    *Accountant
	tracker *Tracker
	load    *load
	floors  []Floor
}

func (b *bencher) say(format string, args ...any) {
	fmt.Fprintf(b.out, "loadgen: "+format+"\n", args...)
}

// Run runs the selected steps and returns the report; progress goes to
// out. Started services are stopped and scratch resources removed on every
// return path, including a cancelled ctx.
func Run(ctx context.Context, o Options, out io.Writer) (rep *Report, err error) {
	rep = &Report{Started: time.Now(), Settings: o.Settings, Notes: []string{}}
	defer func() {
		if rep != nil {
			rep.Finished = time.Now()
		}
	}()
	b := &bencher{o: o, out: out, tracker: NewTracker()}
	proc, err := NewProc(procfs.DefaultMountPoint)
	if err != nil {
		return nil, err
	}
	b.acct = &Accountant{Proc: proc, BenchDBs: b.databases()}
	vhostURL, err := o.Infra.VHostURL()
	if err != nil {
		return nil, err
	}
	rep.Machine = Describe(ctx, proc, o.Infra)

	if o.Start {
		if err := b.prepareSystem(ctx, vhostURL); err != nil {
			return nil, err
		}
		// Cleanup must run even when ctx was cancelled (Ctrl-C).
		defer func() { err = errors.Join(err, b.removeSystem(context.WithoutCancel(ctx), rep)) }()
		if err := b.recreateDatabases(ctx); err != nil {
			return nil, err
		}
	} else {
		pids := o.PIDs
		b.acct.PIDs = func() map[string]int { return pids }
	}
	if o.Steps[KindFloor] {
		if err := b.floorStep(ctx, rep, vhostURL); err != nil {
			return rep, err
		}
	}

	if b.sys != nil {
		b.say("starting the services from %s (logs in %s)", o.BinDir, o.LogDir)
		if err := b.sys.StartAll(ctx); err != nil {
			return nil, err
		}
	}
	listener, err := Listen(vhostURL, b.tracker, o.Invoices)
	if err != nil {
		return nil, err
	}
	defer listener.Close()
	poster, err := b.newPoster()
	if err != nil {
		return rep, err
	}
	defer poster.Close()
	b.load = &load{poster: poster, tracker: b.tracker, errs: &errorLog{}, body: TotalOrder}
	if o.Inventory && o.Steps[KindItems] {
		b.say("seeding a catalogue of %d products, %d units each", o.Catalogue, CatalogueStock)
		inventory, err := gatewayclient.NewClientWithResponses(o.Endpoints.Inventory, gatewayclient.WithHTTPClient(poster.client))
		if err != nil {
			return rep, fmt.Errorf("inventory client of %s: %w", o.Endpoints.Inventory, err)
		}
		if err := NewCatalogue(o.Catalogue).Seed(ctx, poster.api, inventory); err != nil {
			return rep, err
		}
	}

	if err := b.loadSteps(ctx, rep); err != nil {
		return rep, err
	}
	b.noteStrays(rep, listener)
	return rep, ctx.Err()
}

// prepareSystem readies the services to start, on a recreated vhost.
func (b *bencher) prepareSystem(ctx context.Context, vhostURL string) error {
	o := b.o
	c := SystemConfig{
		BinDir: o.BinDir, LogDir: o.LogDir, Endpoints: o.Endpoints, AMQPURL: vhostURL,
		Services: o.Services(), DBs: map[string]string{}, LogLevel: o.LogLevel, Extra: o.Extra,
	}
	for _, name := range c.Services {
		if db := o.Infra.DB(name); db != "" {
			c.DBs[name] = mustDB(o.Infra, db)
		}
	}
	sys, err := NewSystem(c)
	if err != nil {
		return err
	}
	if err := sys.Prepare(); err != nil {
		return err
	}
	b.sys = sys
	b.acct.PIDs = sys.PIDs
	b.say("recreating vhost %s and databases %s", o.Infra.VHost, strings.Join(b.databases(), ", "))
	return o.Infra.RecreateVHost(ctx)
}

// databases are the services' databases.
func (b *bencher) databases() []string {
	var dbs []string
	for _, name := range b.o.Services() {
		if db := b.o.Infra.DB(name); db != "" {
			dbs = append(dbs, db)
		}
	}
	return dbs
}

// recreateDatabases gives the services empty databases.
func (b *bencher) recreateDatabases(ctx context.Context) error {
	for _, db := range b.databases() {
		if err := b.o.Infra.RecreateDatabase(ctx, db); err != nil {
			return err
		}
	}
	return nil
}

// removeSystem stops the started services and, unless -keep, removes
// their vhost and databases. A service that would not stop is a note of
// the report, not a failed run; when the run failed before it had a
// report (rep is nil), it is part of the error instead.
func (b *bencher) removeSystem(ctx context.Context, rep *Report) error {
	var errs []error
	if stopErr := b.sys.StopAll(); stopErr != nil {
		if rep == nil {
			errs = append(errs, fmt.Errorf("stopping the services: %w", stopErr))
		} else {
			rep.Notes = append(rep.Notes, "stopping the services: "+stopErr.Error())
		}
	}
	if !b.o.Keep {
		in := b.o.Infra
		errs = append(errs, in.DeleteVHost(ctx))
		for _, db := range b.databases() {
			errs = append(errs, in.DropDatabase(ctx, db))
		}
	}
	return errors.Join(errs...)
}

// floorStep measures the machine's floor into rep. A floor that cannot be
// measured (at concurrency 64 Postgres may run out of connections on a
// busy shared server) costs the ratio, not the run: only a cancelled ctx
// is returned.
func (b *bencher) floorStep(ctx context.Context, rep *Report, vhostURL string) error {
	if err := b.measureFloors(ctx, vhostURL); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rep.Notes = append(rep.Notes, "floor: "+err.Error())
	}
	rep.Floors = b.floors
	return nil
}

// newPoster sizes the HTTP client for the most concurrent step.
func (b *bencher) newPoster() (*Poster, error) {
	maxConc := 1
	for _, c := range append(append([]int{}, b.o.Concurrency...), b.o.BacklogConc) {
		maxConc = max(maxConc, c)
	}
	return NewPoster(b.o.Endpoints.Gateway, max(maxConc, 256), b.o.PostTimeout)
}

// loadSteps runs the selected load steps in their order, each followed by
// a pause, and stops at the first error (a cancelled ctx, a service that
// died, a service that would not restart).
func (b *bencher) loadSteps(ctx context.Context, rep *Report) error {
	o := b.o
	if o.Steps[KindClosed] {
		for _, c := range o.Concurrency {
			if err := b.addAndPause(ctx, rep, b.closedStep(ctx, fmt.Sprintf("closed-%d", c), KindClosed, c)); err != nil {
				return err
			}
		}
	}
	if o.Steps[KindOpen] {
		for _, rate := range o.Rates {
			s := b.openStep(ctx, "open-"+strconv.FormatFloat(rate, 'f', -1, 64), KindOpen, "0s", rate, o.Warmup, o.Duration)
			if err := b.addAndPause(ctx, rep, s); err != nil {
				return err
			}
		}
	}
	if o.Steps[KindItems] && o.Inventory {
		if err := b.itemSteps(ctx, rep); err != nil {
			return err
		}
	}
	if o.Steps[KindLatency] {
		if err := b.systemStep(ctx, rep, b.latencyStep, "latency step skipped: it restarts the payment service, which needs -start"); err != nil {
			return err
		}
	}
	if o.Steps[KindBacklog] && o.Backlog > 0 {
		if err := b.systemStep(ctx, rep, b.backlogStep, "backlog step skipped: it stops the order service, which needs -start"); err != nil {
			return err
		}
	}
	if o.Steps[KindInvoiceBacklog] && o.Invoices && o.InvoiceBacklog > 0 {
		if err := b.systemStep(ctx, rep, b.invoiceBacklogStep, "invoice-backlog step skipped: it stops invoice-service, which needs -start"); err != nil {
			return err
		}
	}
	if o.Steps[KindSoak] && o.Soak > 0 {
		s, soak := b.soakStep(ctx)
		b.add(ctx, rep, s)
		if ctx.Err() == nil {
			rep.Soak = soak
		}
	}
	return nil
}

// itemSteps runs the closed and open loops of orders with items, beside
// the total-only ones: the same load, each order with ItemLines lines, so
// an inventory step (reserve, then commit) in every saga.
func (b *bencher) itemSteps(ctx context.Context, rep *Report) error {
	o := b.o
	b.load.body = NewCatalogue(o.Catalogue).Order(o.ItemLines)
	defer func() { b.load.body = TotalOrder }()
	s := b.closedStep(ctx, fmt.Sprintf("items-closed-%d", o.ItemsConc), KindItems, o.ItemsConc)
	if err := b.addAndPause(ctx, rep, s); err != nil {
		return err
	}
	for _, rate := range o.ItemsRates {
		s := b.openStep(ctx, "items-open-"+strconv.FormatFloat(rate, 'f', -1, 64), KindItems, "0s", rate, o.Warmup, o.Duration)
		if err := b.addAndPause(ctx, rep, s); err != nil {
			return err
		}
	}
	return nil
}

// add puts a finished step into the report with its floor ratio, and says
// so; a step cut short by a cancelled ctx is only noted.
func (b *bencher) add(ctx context.Context, rep *Report, s Step) {
	if ctx.Err() != nil {
		rep.Notes = append(rep.Notes, "interrupted during "+s.Name+": its partial figures are left out")
		return
	}
	rep.Steps = append(rep.Steps, b.withFloor(s))
	b.say("%s done: %s sagas/s, final p50 %s ms p99 %s ms, errors %s", s.Name, num(s.SagasPerSec), num(s.Final.P50), num(s.Final.P99), FormatErrors(s.Counts.Errors))
	if v := s.Invoices; v != nil {
		b.say("%s: %s invoices/s, %d of %d paid orders invoiced, lag p50 %s ms p99 %s ms", s.Name, num(v.PerSec), v.Invoiced, v.Paid, num(v.Lag.P50), num(v.Lag.P99))
	}
}

// addAndPause adds s, then lets the system settle before the next step.
func (b *bencher) addAndPause(ctx context.Context, rep *Report, s Step) error {
	b.add(ctx, rep, s)
	return b.between(ctx)
}

// systemStep runs a step that stops or restarts a service, which only a
// run that started them can do; otherwise it notes skipped.
func (b *bencher) systemStep(ctx context.Context, rep *Report, step func(context.Context) (Step, error), skipped string) error {
	if b.sys == nil {
		rep.Notes = append(rep.Notes, skipped)
		return nil
	}
	s, err := step(ctx)
	if err != nil {
		return err
	}
	return b.addAndPause(ctx, rep, s)
}

// noteStrays reports what the steps could not attribute: final events of
// unknown or repeated orders, a lost subscription, services that died.
func (b *bencher) noteStrays(rep *Report, listener *Listener) {
	rep.UnattributedFinals, rep.DuplicateFinals = b.tracker.Strays()
	rep.UnattributedInvoices, rep.DuplicateInvoices = b.tracker.InvoiceStrays()
	if why := listener.Lost(); why != "" {
		rep.Notes = append(rep.Notes, "the final-event subscription was lost ("+why+"): later sagas were not seen")
	}
	if b.sys != nil {
		for _, dead := range b.sys.Exited() {
			rep.Notes = append(rep.Notes, "service died during the run: "+dead)
		}
	}
}

func mustDB(in Infra, db string) string {
	u, err := in.DatabaseURL(db)
	if err != nil {
		return ""
	}
	return u
}

// between lets the system settle, and stops the run when a service died.
func (b *bencher) between(ctx context.Context) error {
	if b.sys != nil {
		if dead := b.sys.Exited(); len(dead) > 0 {
			return fmt.Errorf("service died: %v", dead)
		}
	}
	sleepCtx(ctx, b.o.Pause)
	return ctx.Err()
}

// measure runs one step: drive sends the load from start until end (the
// window's end), then the step waits for the last finals. CPU is sampled
// at the window's edges, RSS throughout.
func (b *bencher) measure(ctx context.Context, name, kind, payLatency string, warmup, d time.Duration,
	drive func(rec *Recorder, start, end time.Time), decorate func(*Step)) Step {
	b.say("%s: %s warm-up, %s measured", name, warmup, d)
	start := time.Now()
	ws, we := start.Add(warmup), start.Add(warmup+d)
	rec := NewRecorder(ws, we)
	rss := b.acct.SampleRSS(250 * time.Millisecond)
	var before, after Sample
	var haveCPU atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		sleepCtx(ctx, time.Until(ws))
		before = b.acct.Sample()
		sleepCtx(ctx, time.Until(we))
		after = b.acct.Sample()
		haveCPU.Store(ctx.Err() == nil)
	})
	drive(rec, start, we)
	wg.Wait()
	b.settle(ctx, rec, time.Now().Add(b.o.SagaTimeout))
	mem := rss.Stop()
	counts, post, final, lag := rec.Snapshot()
	s := Step{
		Name: name, Kind: kind, PaymentLatency: payLatency, WindowSec: d.Seconds(), Counts: counts,
		SagasPerSec: float64(counts.WindowFinals) / d.Seconds(), AcceptedPerSec: float64(counts.WindowAccepted) / d.Seconds(),
		Post: post, Final: final, SendLag: lag, Memory: mem, FirstErrors: b.load.errs.list(),
		Invoices: b.invoices(rec, d),
	}
	if haveCPU.Load() {
		s.CPU = b.acct.Between(before, after, counts.WindowFinals)
	}
	b.load.errs = &errorLog{}
	if decorate != nil {
		decorate(&s)
	}
	return s
}

// settle waits until the step's orders have their final events and, with
// invoices, its paid orders their invoices, or the deadline; then it
// closes rec.
func (b *bencher) settle(ctx context.Context, rec *Recorder, deadline time.Time) {
	rec.WaitFinal(ctx, deadline)
	if b.o.Invoices {
		rec.WaitInvoices(ctx, deadline)
	}
	rec.Close()
}

// invoices is the step's invoice accounting over a window of d, or nil
// without invoices.
func (b *bencher) invoices(rec *Recorder, d time.Duration) *Invoices {
	if !b.o.Invoices {
		return nil
	}
	return rec.InvoiceSnapshot(d.Seconds())
}

// closedStep runs a closed loop of c concurrent clients.
func (b *bencher) closedStep(ctx context.Context, name, kind string, c int) Step {
	return b.measure(ctx, name, kind, "0s", b.o.Warmup, b.o.Duration, func(rec *Recorder, start, end time.Time) {
		b.load.closedLoop(ctx, rec, c, end, b.o.SagaTimeout)
	}, func(s *Step) { s.Concurrency = c })
}

func (b *bencher) openStep(ctx context.Context, name, kind, payLatency string, rate float64, warmup, d time.Duration) Step {
	return b.measure(ctx, name, kind, payLatency, warmup, d, func(rec *Recorder, start, end time.Time) {
		b.load.openLoop(ctx, rec, rate, start, end, b.o.MaxInflight)
	}, func(s *Step) {
		s.Rate = rate
		if s.SendLag.P99 > 5 {
			s.Notes = append(s.Notes, fmt.Sprintf("the generator fell behind its schedule (it shares the CPUs): send lag p99 %s ms, max %s ms, counted in the latencies", num(s.SendLag.P99), num(s.SendLag.Max)))
		}
	})
}

// latencyStep restarts the payment service with a simulated gateway delay
// and runs an open loop, then restores the delay of 0.
func (b *bencher) latencyStep(ctx context.Context) (Step, error) {
	lat := b.o.LatencyValue.String()
	b.say("restarting payment-service with PAYMENT_LATENCY=%s", lat)
	if err := b.sys.Stop(PaymentService); err != nil {
		return Step{}, err
	}
	if err := b.sys.Start(ctx, PaymentService, "PAYMENT_LATENCY="+lat); err != nil {
		return Step{}, err
	}
	// The warm-up must cover the delay, or the window's first finals would
	// be missing and the rate understated.
	warmup := max(b.o.Warmup, b.o.LatencyValue+time.Second)
	s := b.openStep(ctx, fmt.Sprintf("latency-%s", lat), KindLatency, lat, b.o.LatencyRate, warmup, b.o.LatencyDur)
	b.say("restarting payment-service with PAYMENT_LATENCY=0s")
	if err := b.sys.Stop(PaymentService); err != nil {
		return s, err
	}
	return s, b.sys.Start(ctx, PaymentService)
}

// backlogStep queues commands while the order service is stopped, then
// starts it and times the drain.
func (b *bencher) backlogStep(ctx context.Context) (Step, error) {
	n := b.o.Backlog
	name := fmt.Sprintf("backlog-%d", n)
	rec, posted, err := b.queueBacklog(ctx, name, OrderService, n)
	if err != nil {
		return Step{}, err
	}
	b.say("%s: %d POSTed in %.1fs; starting order-service", name, n, posted.Seconds())
	d, err := b.drain(ctx, OrderService, rec.WaitFinal)
	if err != nil {
		return Step{}, err
	}
	b.settle(ctx, rec, d.deadline)
	counts, post, final, _ := rec.Snapshot()
	drain := rec.LastFinal().Sub(d.started)
	s := Step{
		Name: name, Kind: KindBacklog, PaymentLatency: "0s", WindowSec: drain.Seconds(), Counts: counts,
		Post: post, Final: final, Memory: d.mem, FirstErrors: b.load.errs.list(),
		CPU: b.acct.Between(d.before, d.after, counts.Finals), Invoices: b.invoices(rec, drain),
		Backlog: &Backlog{
			Orders: counts.Accepted, PostSeconds: posted.Seconds(), PostPerSec: float64(counts.Accepted) / posted.Seconds(),
			ReadySeconds: d.ready.Seconds(), DrainSeconds: drain.Seconds(),
		},
	}
	if drain > 0 {
		s.SagasPerSec = float64(counts.Finals) / drain.Seconds()
		s.Backlog.DrainPerSec = s.SagasPerSec
	}
	b.load.errs = &errorLog{}
	return s, nil
}

// drained is what drain saw of a stopped service's backlog.
type drained struct {
	started       time.Time     // the service's start (exec)
	ready         time.Duration // from its start to its /readyz
	deadline      time.Time     // of the wait
	before, after Sample        // CPU from its start to the wait's end
	mem           MemoryUse     // during the drain
}

// drain starts a stopped service, whose queue holds a backlog, and waits
// (with wait, on the step's recorder) until the backlog is worked off or
// the deadline, accounting the CPU and memory in between.
func (b *bencher) drain(ctx context.Context, service string, wait func(context.Context, time.Time)) (drained, error) {
	rss := b.acct.SampleRSS(250 * time.Millisecond)
	d := drained{before: b.acct.Sample(), started: time.Now()}
	if err := b.sys.Start(ctx, service); err != nil {
		rss.Stop()
		return d, err
	}
	d.ready = time.Since(d.started)
	d.deadline = time.Now().Add(max(b.o.SagaTimeout, 10*time.Minute))
	wait(ctx, d.deadline)
	d.after = b.acct.Sample()
	d.mem = rss.Stop()
	return d, nil
}

// queueBacklog stops service, then POSTs n orders from
// -backlog-concurrency workers without waiting for their sagas, into a
// recorder whose window holds everything of the step; it returns the
// recorder and how long the POSTs took.
func (b *bencher) queueBacklog(ctx context.Context, name, service string, n int) (*Recorder, time.Duration, error) {
	b.say("%s: stopping %s, POSTing %d orders", name, service, n)
	if err := b.sys.Stop(service); err != nil {
		return nil, 0, err
	}
	start := time.Now()
	rec := NewRecorder(start, start.Add(24*time.Hour))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(b.o.BacklogConc, n) {
		wg.Go(func() {
			for ctx.Err() == nil && next.Add(1) <= int64(n) {
				b.load.one(ctx, rec, time.Now())
			}
		})
	}
	wg.Wait()
	return rec, time.Since(start), ctx.Err()
}

// soakStep runs a long open loop, sampling goroutines, heap and RSS.
func (b *bencher) soakStep(ctx context.Context) (Step, *Soak) {
	soak := &Soak{}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		start := time.Now().Add(b.o.Warmup)
		t := time.NewTicker(b.o.SoakEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				soak.Samples = append(soak.Samples, b.soakSample(ctx, time.Since(start)))
			}
		}
	})
	s := b.openStep(ctx, "soak", KindSoak, "0s", b.o.SoakRate, b.o.Warmup, b.o.Soak)
	close(done)
	wg.Wait()
	soak.Trend = Trends(soak.Samples)
	return s, soak
}

// measureFloors measures the raw broker and Postgres rates at each floor
// concurrency, before the services start, so that nothing else of ours
// competes.
func (b *bencher) measureFloors(ctx context.Context, vhostURL string) error {
	in := b.o.Infra
	if err := in.RecreateDatabase(ctx, in.FloorDB); err != nil {
		return err
	}
	defer func() {
		cctx := context.WithoutCancel(ctx)
		_ = in.DropDatabase(cctx, in.FloorDB)
		_ = DeleteFloorQueue(vhostURL)
	}()
	dbURL, err := in.DatabaseURL(in.FloorDB)
	if err != nil {
		return err
	}
	warmup := min(b.o.FloorDur/4, time.Second)
	for _, c := range b.o.FloorConc {
		b.say("floor at concurrency %d: publish+confirm and 3-insert transactions, %s each", c, b.o.FloorDur)
		f := Floor{Concurrency: c}
		if f.PublishPerSec, f.PublishLatency, err = PublishFloor(ctx, vhostURL, c, warmup, b.o.FloorDur); err != nil {
			return err
		}
		if f.TxPerSec, f.TxLatency, err = TxFloor(ctx, dbURL, c, warmup, b.o.FloorDur); err != nil {
			return err
		}
		f.SagasPerSec = SagaFloor(f.PublishPerSec, f.TxPerSec)
		b.floors = append(b.floors, f)
	}
	return nil
}

// withFloor sets a step's ratio to the floor: a closed loop against the
// floor at the nearest concurrency, any other step against the highest
// floor measured (the machine's best).
func (b *bencher) withFloor(s Step) Step {
	var best *Floor
	for i := range b.floors {
		f := &b.floors[i]
		switch {
		case best == nil:
			best = f
		case s.Kind == KindClosed:
			if math.Abs(float64(f.Concurrency-s.Concurrency)) < math.Abs(float64(best.Concurrency-s.Concurrency)) {
				best = f
			}
		case f.SagasPerSec > best.SagasPerSec:
			best = f
		}
	}
	if best != nil && best.SagasPerSec > 0 {
		s.FloorRatio = s.SagasPerSec / best.SagasPerSec
		s.FloorConcurrency = best.Concurrency
	}
	return s
}
