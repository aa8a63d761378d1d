// Package gateway is the public REST API of ordersaga (contract §2): it
// validates requests, publishes the order commands with broker confirms, and
// answers queries by calling the service that owns the data.
package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/web"
)

// Names of the upstream services, as they appear in problems and readiness.
const (
	OrderService     = "order-service"
	PaymentService   = "payment-service"
	InventoryService = "inventory-service"
	// NotificationService keeps the e-mail log (contract §8).
	NotificationService = "notification-service"
)

// Errors of the gateway; the HTTP edge maps each to a status.
var (
	// ErrNotFound is an order the order service does not know.
	ErrNotFound = errors.New("not found")
	// ErrConflict is a request the order's state does not allow.
	ErrConflict = errors.New("conflict")
	// ErrUnavailable is a dependency (the broker or a service) that did not
	// answer in time.
	ErrUnavailable = errors.New("unavailable")
	// ErrBadGateway is a service that answered with an error or nonsense.
	ErrBadGateway = errors.New("bad gateway")
)

// Options are the dependencies of a Gateway.
type Options struct {
	// Publisher publishes the commands; it returns only after the broker
	// confirmed them.
	Publisher *rabbit.Publisher
	// BrokerCheck reports whether the broker connection is up (readiness).
	BrokerCheck web.Check
	// Participants are the saga's services: each one's timeline is part of
	// every order's, and its readiness of the gateway's. The queries are
	// forwarded to OrderService and PaymentService, which must be among
	// them.
	Participants []Participant
	// Client calls the services; its timeout bounds every upstream call.
	Client   *http.Client
	Log      *slog.Logger
	Registry *prometheus.Registry
	// Stream times the order event streams.
	Stream StreamOptions
	// Auth is the access control (contract §7).
	Auth AuthOptions
}

// Participant is one service of the saga, as the gateway calls it.
type Participant struct {
	// Name names it in problems, readiness checks and the timeline.
	Name string
	// URL is its base URL.
	URL string
	// Timeline is the path of its timeline of one order, with {id} where
	// the order id goes, or NoTimeline for a service that takes no part in
	// an order's saga: its readiness is reported, its timeline not asked.
	Timeline string
}

// NoTimeline is the Timeline of a participant that keeps none (as in
// saga.conf).
const NoTimeline = "-"

// Gateway serves the public API.
type Gateway struct {
	pub      *rabbit.Publisher
	orders   upstream
	payments upstream
	// inventory answers the product queries; its base is empty where
	// inventory-service is not a participant.
	inventory upstream
	// invoices answers the invoice queries; its base is empty where
	// invoice-service is not a participant.
	invoices upstream
	// notifications answers the e-mail log's query; empty base where
	// notification-service is not a participant.
	notifications upstream
	// participants are called for every timeline, in the order given,
	// but for those without one.
	participants []participant
	log          *slog.Logger
	commands     *prometheus.CounterVec
	engine       *gin.Engine
	stream       StreamOptions
	// authMode is AuthOff or AuthRequired; keys verify the tokens; users
	// is where accounts are forwarded.
	authMode string
	keys     *keySet
	users    upstream
	// closing is closed by Shutdown, ending the event streams.
	closing   chan struct{}
	closeOnce sync.Once
}

// New returns a gateway built from o, with its routes, /healthz, /readyz
// and /metrics.
func New(o Options) (*Gateway, error) {
	var errs []error
	if o.Publisher == nil {
		errs = append(errs, errors.New("publisher is required"))
	}
	if o.BrokerCheck == nil {
		errs = append(errs, errors.New("broker check is required"))
	}
	if o.Client == nil {
		errs = append(errs, errors.New("HTTP client is required"))
	}
	if o.Log == nil {
		errs = append(errs, errors.New("logger is required"))
	}
	if o.Registry == nil {
		errs = append(errs, errors.New("registry is required"))
	}
	participants, err := participantsOf(o.Participants, o.Client)
	if err != nil {
		errs = append(errs, err)
	}
	stream, err := o.Stream.withDefaults()
	if err != nil {
		errs = append(errs, err)
	}
	authMode := o.Auth.Mode
	if authMode == "" {
		authMode = AuthOff
	}
	if authMode != AuthOff && authMode != AuthRequired {
		errs = append(errs, fmt.Errorf("auth mode %q: want %s or %s", authMode, AuthOff, AuthRequired))
	}
	if o.Auth.UsersURL == "" {
		o.Auth.UsersURL = DefaultUsersURL
	}
	usersURL, err := BaseURL(o.Auth.UsersURL)
	if err != nil {
		errs = append(errs, fmt.Errorf("%s URL: %w", UsersService, err))
	}
	refresh := o.Auth.KeyRefresh
	if refresh <= 0 {
		refresh = DefaultKeyRefresh
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("new gateway: %w", errors.Join(errs...))
	}

	g := &Gateway{
		pub:          o.Publisher,
		participants: participants,
		log:          o.Log,
		stream:       stream,
		authMode:     authMode,
		users:        upstream{name: UsersService, base: usersURL, client: o.Client},
		closing:      make(chan struct{}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordersaga_gateway_commands_total",
			Help: "Commands the gateway published, by type and outcome (confirmed, failed).",
		}, []string{"type", "outcome"}),
	}
	checks := map[string]web.Check{"broker": o.BrokerCheck}
	for _, p := range participants {
		// POST /api/orders needs the broker and order-service only: the
		// others are reported, and never make the gateway unready (§1).
		checks[p.name] = web.Informational(p.check)
		switch p.name {
		case OrderService:
			checks[p.name] = p.check
			g.orders = p.upstream
		case PaymentService:
			g.payments = p.upstream
		case InventoryService:
			g.inventory = p.upstream
		case InvoiceService:
			g.invoices = p.upstream
		case NotificationService:
			g.notifications = p.upstream
		}
	}
	g.keys = &keySet{users: g.users, refresh: refresh, now: time.Now}
	if err := o.Registry.Register(g.commands); err != nil {
		return nil, fmt.Errorf("new gateway: register metrics: %w", err)
	}
	g.engine = web.NewEngine(o.Log, o.Registry, checks)
	g.routes(g.engine)
	return g, nil
}

// Handler is the gateway's HTTP handler.
func (g *Gateway) Handler() http.Handler { return g.engine }

// Shutdown ends the order event streams in flight. An HTTP server's
// Shutdown waits for every handler to return, and a stream returns on its
// own only at the saga's outcome: call this when the server shuts down (see
// http.Server.RegisterOnShutdown).
func (g *Gateway) Shutdown() {
	g.closeOnce.Do(func() { close(g.closing) })
}

// participant is a Participant ready to call.
type participant struct {
	upstream
	timeline string
}

// participantsOf validates ps: unique names, base URLs, timeline paths, and
// the two services the queries go to among them.
func participantsOf(ps []Participant, client *http.Client) ([]participant, error) {
	var errs []error
	out := make([]participant, 0, len(ps))
	seen := map[string]bool{}
	for _, p := range ps {
		if p.Name == "" || seen[p.Name] {
			errs = append(errs, fmt.Errorf("participant %q: want a unique name", p.Name))
			continue
		}
		seen[p.Name] = true
		base, err := BaseURL(p.URL)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s URL: %w", p.Name, err))
		}
		if p.Timeline != NoTimeline && (!strings.HasPrefix(p.Timeline, "/") || strings.Count(p.Timeline, "{id}") != 1) {
			errs = append(errs, fmt.Errorf("%s timeline %q: want a path with {id} once, or %s for none", p.Name, p.Timeline, NoTimeline))
		}
		// The order service's timeline decides whether an order exists.
		if p.Name == OrderService && p.Timeline == NoTimeline {
			errs = append(errs, fmt.Errorf("%s timeline: want a path, not %s", p.Name, NoTimeline))
		}
		out = append(out, participant{upstream: upstream{name: p.Name, base: base, client: client}, timeline: p.Timeline})
	}
	for _, name := range []string{OrderService, PaymentService} {
		if !seen[name] {
			errs = append(errs, fmt.Errorf("participant %s is required", name))
		}
	}
	return out, errors.Join(errs...)
}

// BaseURL validates the base URL of a service (http or https, a host, no
// query) and returns it without a trailing slash.
func BaseURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%q: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%q: want http(s)://host[:port][/path]", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// NewClient returns the HTTP client for the upstream services: every call,
// body included, ends within timeout, and connections are reused.
func NewClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 nil, // the services are on our network, never behind a proxy
			DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:          256,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: timeout,
		},
		// The services never redirect; should one, its answer is passed on
		// rather than followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
