// Package participant is the runtime every saga participant shares: its
// database (pool and migrations), its broker connection and publisher, the
// outbox relay, its consumers and background loops, its HTTP server, and the
// order in which all of that starts and stops. A new participant (invoices,
// inventory…) brings its handlers and queries; this brings the rest.
package participant

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ordersaga/ordersaga/db"
	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/outbox"
	"github.com/ordersaga/ordersaga/libs/postgres"
	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/retention"
	"github.com/ordersaga/ordersaga/libs/timeline"
	"github.com/ordersaga/ordersaga/libs/tracing"
	"github.com/ordersaga/ordersaga/libs/uow"
	"github.com/ordersaga/ordersaga/libs/web"
)

// Participant is a running saga participant.
type Participant struct {
	cfg       Config
	Log       *slog.Logger
	Pool      *pgxpool.Pool
	Conn      *rabbit.Conn
	Publisher *rabbit.Publisher
	// Runner runs the participant's units of work: whatever writes state
	// and emits messages (handlers, sweeps, deciders) goes through it, and
	// what it emits is published once committed.
	Runner   *uow.Runner
	Registry *prometheus.Registry
	topology events.Topology
	handlers []uow.Handler
	lock     uow.Lock
	relay    *outbox.Relay
	metrics  *rabbit.Metrics
	loops    []loop
	// checks are /readyz's, read at each request: Report adds to them
	// while wiring, before anything is served.
	checks map[string]web.Check
}

type loop struct {
	name string
	run  func(ctx context.Context) error
}

// Start connects to the database (waiting up to StartupTimeout), applies the
// messaging schema and schema, and connects to the broker, declaring
// topology: the participant's own part of the saga's (saga.TopologyOf),
// whose own queues it consumes once Run starts.
func Start(ctx context.Context, cfg Config, log *slog.Logger, schema db.Migrations, topology events.Topology) (*Participant, error) {
	if cfg.MessageRetention <= 0 {
		// Zero would prune every handled message at once: redeliveries
		// would take effect twice.
		return nil, errors.New("participant: MessageRetention must be positive")
	}
	startCtx, cancel := context.WithTimeout(ctx, cfg.StartupTimeout)
	defer cancel()
	// A dependency still away when STARTUP_TIMEOUT ends is said so, once.
	unreachable := func(what string, err error) error {
		if startCtx.Err() != nil && ctx.Err() == nil {
			return fmt.Errorf("%s unreachable after %s: %w", what, cfg.StartupTimeout, err)
		}
		return err
	}
	pool, err := postgres.Connect(startCtx, cfg.DatabaseURL, cfg.MaxConns)
	if err != nil {
		return nil, unreachable("database", err)
	}
	if err := postgres.Migrate(startCtx, pool, log, db.Messaging(), schema); err != nil {
		pool.Close()
		return nil, err
	}
	conn, err := rabbit.Dial(startCtx, cfg.AMQPURL, cfg.Name, topology, log)
	if err != nil {
		pool.Close()
		return nil, unreachable("broker", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	pub := rabbit.NewPublisher(conn, cfg.Name, cfg.PublishTimeout)
	if err := pub.Instrument(reg); err != nil {
		conn.Close()
		pool.Close()
		return nil, err
	}
	relay := outbox.NewRelay(pool, pub, cfg.Name, log, reg)
	return &Participant{
		cfg:       cfg,
		Log:       log,
		Pool:      pool,
		Conn:      conn,
		Publisher: pub,
		// What the units of work commit is published at once.
		Runner:   uow.NewRunner(pool, relay.Dispatch, reg),
		Registry: reg,
		topology: topology,
		relay:    relay,
		metrics:  rabbit.NewMetrics(reg),
		loops:    []loop{{"retention", retention.New(pool, cfg.MessageRetention, log, reg).Run}},
		checks:   map[string]web.Check{},
	}, nil
}

// CheckDatabase pings the database, for readiness and consumer pauses.
func (p *Participant) CheckDatabase(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return p.Pool.Ping(ctx)
}

// Handle registers the handlers of the messages the participant consumes
// (uow.On), one per type bound to its queues. Run refuses to start unless
// they match those bindings exactly.
func (p *Participant) Handle(hs ...uow.Handler) { p.handlers = append(p.handlers, hs...) }

// LockFirst makes every transaction of the participant's consumers take
// the row locks its messages will need first, with lock, in one order
// (uow.Lock): for handlers of different messages that lock the same rows.
func (p *Participant) LockFirst(lock uow.Lock) { p.lock = lock }

// consumers returns a consumer of each of the participant's own queues that
// routes its deliveries to the handlers.
func (p *Participant) consumers() ([]*rabbit.Consumer, error) {
	router, err := uow.NewRouter(p.Runner, p.topology, p.handlers...)
	if err != nil {
		return nil, err
	}
	if p.lock != nil {
		router.LockFirst(p.lock)
	}
	var cs []*rabbit.Consumer
	for _, q := range router.Queues() {
		cs = append(cs, rabbit.NewConsumer(p.Conn, p.Publisher, rabbit.ConsumerConfig{
			Queue:       q,
			Prefetch:    cmp.Or(p.cfg.Prefetch, 64),
			Workers:     p.cfg.Workers,
			MaxBatch:    p.cfg.MaxBatch,
			MaxAttempts: p.cfg.MaxAttempts,
			Ready:       p.CheckDatabase,
		}, router.Handler(q), p.Log, p.metrics))
	}
	return cs, nil
}

// Go adds a background loop that runs until its context ends; an error it
// returns is logged and the loop restarted after a pause.
func (p *Participant) Go(name string, run func(ctx context.Context) error) {
	p.loops = append(p.loops, loop{name, run})
}

// Engine returns the participant's gin engine, with readiness checking the
// database and the broker.
func (p *Participant) Engine() *gin.Engine {
	p.checks["database"], p.checks["broker"] = p.CheckDatabase, p.Conn.Check
	e := web.NewEngine(p.Log, p.Registry, p.checks)
	if p.cfg.Pprof {
		web.Pprof(e)
	}
	return e
}

// Timeline returns what the participant received and emitted in the saga
// of order orderID: its inbox and outbox rows of the order (libs/timeline).
func (p *Participant) Timeline(ctx context.Context, orderID uuid.UUID) ([]timeline.Entry, error) {
	return timeline.Read(ctx, p.Pool, p.cfg.Name, orderID.String())
}

// ServeTimeline answers GET path on engine with the participant's timeline
// of an order (web.TimelineByID): the route of a participant whose timeline
// is nothing but its inbox and outbox. path is saga.conf's TIMELINE, {id}
// where the order id goes, so the route and saga.conf cannot disagree.
func (p *Participant) ServeTimeline(engine *gin.Engine, path string) error {
	if strings.Count(path, "{id}") != 1 || !strings.HasPrefix(path, "/") {
		return fmt.Errorf("participant: timeline path %q: want a path with {id} once", path)
	}
	engine.GET(strings.Replace(path, "{id}", ":id", 1), web.TimelineByID("id", p.Timeline, web.StoreErrors("messaging")))
	return nil
}

// Report adds a dependency that /readyz reports under name without ever
// answering 503 for it (web.Informational): one that only part of the
// participant's work needs, such as notification-service's mail server.
// Call it while wiring, before Run.
func (p *Participant) Report(name string, check web.Check) {
	p.checks[name] = web.Informational(check)
}

// Run serves handler and runs the relay, consumers and loops until ctx ends,
// after checking that the handlers match the participant's subscriptions,
// then shuts down in the order that loses nothing: stop consuming and let
// handlers in flight finish, stop the loops, flush the relay, close the
// broker, stop HTTP, close the pool.
func (p *Participant) Run(ctx context.Context, handler http.Handler) error {
	consumers, err := p.consumers()
	if err != nil {
		p.Close()
		return err
	}
	// Bind before anything consumes, so a taken port fails the start.
	ln, err := net.Listen("tcp", p.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on HTTP_ADDR %s: %w", p.cfg.HTTPAddr, err)
	}
	srv := &http.Server{Handler: tracing.Handler(handler, p.cfg.Name), ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: web.MaxHeaderBytes}
	httpErr := make(chan error, 1)
	go func() { httpErr <- srv.Serve(ln) }()

	workCtx, stopWork := context.WithCancel(ctx)
	defer stopWork()
	var consuming, loops sync.WaitGroup
	for _, c := range consumers {
		consuming.Go(func() { _ = c.Run(workCtx) })
	}
	for _, l := range p.loops {
		loops.Go(func() { p.keepRunning(workCtx, l) })
	}
	relayCtx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRelay()
	relayDone := make(chan struct{})
	go func() { defer close(relayDone); _ = p.relay.Run(relayCtx) }()
	p.Log.Info("started", "http_addr", p.cfg.HTTPAddr)

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-httpErr:
		runErr = fmt.Errorf("http server: %w", err)
	}
	p.Log.Info("shutting down")
	stopWork()
	consuming.Wait()
	loops.Wait()
	stopRelay() // the relay flushes once more on its way out
	<-relayDone
	_ = p.Publisher.Close()
	_ = p.Conn.Close()
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil && runErr == nil {
		runErr = fmt.Errorf("http shutdown: %w", err)
	}
	p.Pool.Close()
	p.Log.Info("stopped")
	return runErr
}

func (p *Participant) keepRunning(ctx context.Context, l loop) {
	for ctx.Err() == nil {
		err := l.run(ctx)
		if ctx.Err() != nil {
			return
		}
		p.Log.Warn("background loop stopped; restarting", "loop", l.name, "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// Close releases what Start acquired, for a participant that never ran.
func (p *Participant) Close() {
	_ = p.Publisher.Close()
	_ = p.Conn.Close()
	p.Pool.Close()
}

// Fail prints err as the one line a failed start promises (contract §1) and
// exits non-zero. Drivers' errors may span lines; they are folded.
func Fail(name string, err error) {
	fmt.Fprintln(os.Stderr, name+": "+strings.Join(strings.Fields(err.Error()), " "))
	os.Exit(1)
}
