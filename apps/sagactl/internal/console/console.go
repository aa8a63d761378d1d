// Package console is sagactl's web console: the saga's orders (live), the
// stuck ones, one saga as a sequence diagram, the dead letters and the
// health of every service, as server-rendered pages. Its assets are
// embedded; its pages load nothing from another host.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/ordersaga/ordersaga/libs/rabbit/mgmt"

	"github.com/ordersaga/ordersaga/apps/sagactl/internal/ops"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Service is a service the console reads: its name and base URL.
type Service struct {
	Name string
	URL  string
	// Timeline is the path of its timeline of an order, {id} for the order
	// id; "" for a service without one.
	Timeline string
}

// Config is what the console reads and how.
type Config struct {
	// Services are the gateway and every participant, in that order.
	Services []Service
	// InvoiceURL and NotificationURL are the services a saga page links to
	// when they answer.
	InvoiceURL, NotificationURL string
	// JaegerURL is Jaeger's query API; "" when tracing is off.
	JaegerURL string
	// StuckAfter is how long an order may stay unfinished before it is
	// stuck.
	StuckAfter time.Duration
	// Poll is how often the live list asks order-service for news.
	Poll time.Duration
	// ReplayRate is at most how many messages a second a replay sends.
	ReplayRate float64
	// ScanLimit is how many messages a dead-letter queue page reads per
	// queue.
	ScanLimit int
	VHost     string
}

// Console serves the pages.
type Console struct {
	cfg    Config
	op     *ops.Operator
	mgmt   *mgmt.Client
	http   *http.Client
	log    *slog.Logger
	pages  map[string]*template.Template
	byName map[string]Service
	// closing is closed when the server shuts down, ending the live streams.
	closing chan struct{}
}

// New returns the console of cfg, acting on dead letters through op.
func New(cfg Config, op *ops.Operator, api *mgmt.Client, log *slog.Logger) (*Console, error) {
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.ScanLimit <= 0 {
		cfg.ScanLimit = 500
	}
	if cfg.ReplayRate <= 0 {
		cfg.ReplayRate = ops.DefaultRate
	}
	c := &Console{cfg: cfg, op: op, mgmt: api, log: log, http: &http.Client{Timeout: 5 * time.Second},
		byName: map[string]Service{}, closing: make(chan struct{})}
	for _, s := range cfg.Services {
		c.byName[s.Name] = s
	}
	if _, ok := c.byName[orderService]; !ok {
		return nil, errors.New("console: no order-service among the services")
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	c.pages = pages
	return c, nil
}

// Handler routes the console's requests.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", cacheStatic(http.FileServerFS(static))))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/sagas", http.StatusFound)
	})
	mux.HandleFunc("GET /sagas", c.sagasPage)
	mux.HandleFunc("GET /sagas/rows", c.sagasRows)
	mux.HandleFunc("GET /sagas/stream", c.sagasStream)
	mux.HandleFunc("GET /sagas/{id}", c.sagaPage)
	mux.HandleFunc("GET /stuck", c.stuckPage)
	mux.HandleFunc("GET /dlq", c.dlqPage)
	mux.HandleFunc("GET /dlq/message", c.dlqMessagePage)
	mux.HandleFunc("POST /dlq/replay", c.dlqReplay)
	mux.HandleFunc("POST /dlq/purge", c.dlqPurge)
	mux.HandleFunc("GET /health", c.healthPage)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ready"}` + "\n"))
	})
	return sameOrigin(securityHeaders(mux))
}

// Serve serves the console on addr until ctx ends; ready, when not nil,
// receives the address it listens on.
func (c *Console) Serve(ctx context.Context, addr string, ready chan<- string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	srv := &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 10 * time.Second}
	srv.RegisterOnShutdown(func() { close(c.closing) })
	if ready != nil {
		ready <- l.Addr().String()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("console: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	return nil
}

// securityHeaders forbids every other origin in the pages (CSP), so a page
// cannot load anything from another host even by mistake.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin") // no-referrer would make the forms' Origin "null"
		next.ServeHTTP(w, r)
	})
}

// sameOrigin refuses a POST sent by a page of another origin: the console
// acts with the operator's credentials.
func sameOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			if o := r.Header.Get("Origin"); o != "" {
				u, err := url.Parse(o)
				if err != nil || u.Host != r.Host {
					http.Error(w, "cross-origin request refused", http.StatusForbidden)
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

func cacheStatic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		next.ServeHTTP(w, r)
	})
}
