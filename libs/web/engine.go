package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/ordersaga/ordersaga/libs/buildinfo"
)

// RequestIDHeader carries the request id, taken from the client or made.
const RequestIDHeader = "X-Request-ID"

// Check tells whether one dependency is reachable.
type Check func(ctx context.Context) error

// MaxHeaderBytes caps the request headers every service's http.Server
// reads (http.Server.MaxHeaderBytes): far above what a real client sends,
// far below Go's default of 1 MiB. A request over it gets a 431.
const MaxHeaderBytes = 32 << 10

// Informational returns check as a readiness check that is reported in
// /readyz's checks but never makes it answer 503: a dependency that only
// some requests need (the gateway's other participants, contract §1).
func Informational(check Check) Check {
	return func(ctx context.Context) error {
		if err := check(ctx); err != nil {
			return informational{err}
		}
		return nil
	}
}

type informational struct{ error }

func (i informational) Unwrap() error { return i.error }

// NewEngine returns a gin engine with the shared middleware and the
// /healthz, /readyz and /metrics endpoints; it registers the HTTP metrics
// and ordersaga_build_info on reg. checks are the readiness checks, by name.
func NewEngine(log *slog.Logger, reg *prometheus.Registry, checks map[string]Check) *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	e.ContextWithFallback = true

	e.Use(headAsGet(e), observe(log, newHTTPMetrics(reg)), recovery(log))
	e.NoRoute(noRoute)
	e.NoMethod(noMethod(e))

	e.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	e.GET("/readyz", func(c *gin.Context) {
		status, body := Ready(c, checks)
		c.JSON(status, body)
	})
	// Every service's /metrics is served from here, so its build is too.
	reg.MustRegister(buildInfo())
	e.GET("/metrics", gin.WrapH(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	return e
}

// buildInfo is the ordersaga_build_info gauge, always 1, whose labels
// carry the build: the usual way to join a build to other series.
func buildInfo() prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ordersaga_build_info",
		Help: "The build of this process: version, commit and Go release, as labels; always 1.",
		ConstLabels: prometheus.Labels{
			"version":   buildinfo.Version,
			"commit":    buildinfo.Commit,
			"goversion": runtime.Version(),
		},
	}, func() float64 { return 1 })
}

// httpMetrics count and time every request by route and method.
type httpMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newHTTPMetrics(reg *prometheus.Registry) httpMetrics {
	m := httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordersaga_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ordersaga_http_request_duration_seconds", Help: "HTTP request latency by route and method.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"route", "method"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

// requestID is the client's request id when it has a sane shape, or a new
// one.
func requestID(c *gin.Context) string {
	id := c.GetHeader(RequestIDHeader)
	if !validRequestID(id) {
		id = uuid.NewString()
	}
	return id
}

// headAsGet serves a HEAD request without a route of its own as a GET: gin
// routes HEAD only where it is registered, but every GET resource answers
// HEAD (RFC 9110 §9.3.2). net/http drops the GET's body because the
// request it serves is still a HEAD. The GET pass, which carries the
// request id on, logs and counts the request.
func headAsGet(e *gin.Engine) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.Method != http.MethodHead || c.FullPath() != "" {
			return
		}
		r := c.Request.Clone(context.WithValue(c.Request.Context(), headKey{}, true))
		r.Method = http.MethodGet
		r.Header.Set(RequestIDHeader, requestID(c))
		c.Writer.Header().Del("Allow") // set by gin for its 405, which this is not
		e.ServeHTTP(c.Writer, r)
		c.Abort()
	}
}

// observe gives every request an id (X-Request-ID, both ways), then counts,
// times and logs it, except the probes' and the scrapes' logs.
func observe(log *slog.Logger, m httpMetrics) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		id := requestID(c)
		c.Header(RequestIDHeader, id)
		c.Set(RequestIDHeader, id)
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		method := c.Request.Method
		if IsHead(c) {
			method = http.MethodHead
		}
		status := c.Writer.Status()
		elapsed := time.Since(start)
		if span := trace.SpanFromContext(c.Request.Context()); span.IsRecording() {
			span.SetName(method + " " + route) // the route is known only now
		}
		m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
		m.latency.WithLabelValues(route, method).Observe(elapsed.Seconds())
		if route != "/healthz" && route != "/readyz" && route != "/metrics" {
			logRequest(log, c, route, method, elapsed, id)
		}
	}
}

// logRequest logs one served request: at error level for a 5xx.
func logRequest(log *slog.Logger, c *gin.Context, route, method string, elapsed time.Duration, id string) {
	status := c.Writer.Status()
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	attrs := []any{"method", method, "route", route, "path", c.Request.URL.Path, "status", status,
		"duration_ms", float64(elapsed.Microseconds()) / 1000, "request_id", id}
	if cid := c.GetString("correlation_id"); cid != "" {
		attrs = append(attrs, "correlation_id", cid, "order_id", cid)
	}
	if len(c.Errors) > 0 {
		attrs = append(attrs, "error", c.Errors.String())
	}
	log.Log(c.Request.Context(), level, "http request", attrs...)
}

// recovery answers a handler's panic with a 500 problem and logs it.
func recovery(log *slog.Logger) gin.HandlerFunc {
	return gin.CustomRecovery(func(c *gin.Context, err any) {
		log.Error("handler panic", "error", err, "path", c.Request.URL.Path)
		Fail(c, http.StatusInternalServerError, "internal error")
	})
}

func noRoute(c *gin.Context) {
	Fail(c, http.StatusNotFound, "no route for "+c.Request.Method+" "+c.Request.URL.Path)
}

// noMethod answers a method the path has no route for with 405 and the
// Allow header, and OPTIONS with 204 and the Allow header: what a client
// may do with the resource.
func noMethod(e *gin.Engine) gin.HandlerFunc {
	return func(c *gin.Context) {
		if allow := allowed(e.Routes(), c.Request.URL.Path); len(allow) > 0 {
			c.Header("Allow", strings.Join(allow, ", "))
		}
		if c.Request.Method == http.MethodOptions {
			c.Status(http.StatusNoContent)
			return
		}
		Fail(c, http.StatusMethodNotAllowed, "method "+c.Request.Method+" not allowed on "+c.Request.URL.Path)
	}
}

// Readiness is the body of /readyz.
type Readiness struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// Ready runs checks concurrently, each within two seconds.
func Ready(ctx context.Context, checks map[string]Check) (int, Readiness) {
	r := Readiness{Status: "ok", Checks: make(map[string]string, len(checks))}
	var mu sync.Mutex
	var wg sync.WaitGroup
	unavailable := false
	for name, check := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			result, failed := "ok", false
			if err := check(cctx); err != nil {
				result = err.Error()
				var info informational
				failed = !errors.As(err, &info)
			}
			mu.Lock()
			r.Checks[name] = result
			unavailable = unavailable || failed
			mu.Unlock()
		}()
	}
	wg.Wait()
	if unavailable {
		r.Status = "unavailable"
		return http.StatusServiceUnavailable, r
	}
	return http.StatusOK, r
}

// headKey marks the context of a HEAD request served as a GET.
type headKey struct{}

// IsHead reports whether ctx is the context of a HEAD request, which the
// engine serves as a GET whose body is dropped. A handler that would keep
// writing after its headers, such as an event stream, stops at once.
func IsHead(ctx context.Context) bool {
	head, _ := ctx.Value(headKey{}).(bool)
	return head
}

var requestIDShape = regexp.MustCompile(`^[\x21-\x7e]{1,200}$`)

func validRequestID(s string) bool { return requestIDShape.MatchString(s) }

// allowed lists the methods that have a route matching path, with HEAD
// where there is GET and OPTIONS, which the engine answers for every route.
func allowed(routes gin.RoutesInfo, path string) []string {
	var methods []string
	add := func(m string) {
		if !slices.Contains(methods, m) {
			methods = append(methods, m)
		}
	}
	for _, r := range routes {
		if matches(r.Path, path) {
			add(r.Method)
			if r.Method == http.MethodGet {
				add(http.MethodHead)
			}
		}
	}
	if len(methods) > 0 {
		add(http.MethodOptions)
	}
	slices.Sort(methods)
	return methods
}

func matches(pattern, path string) bool {
	ps := strings.Split(strings.Trim(pattern, "/"), "/")
	xs := strings.Split(strings.Trim(path, "/"), "/")
	if len(ps) != len(xs) {
		return false
	}
	for i, p := range ps {
		if !strings.HasPrefix(p, ":") && p != xs[i] {
			return false
		}
	}
	return true
}
