// Package tracing is how the services trace: the OpenTelemetry SDK set up
// from the standard OTEL_* variables, exporting over OTLP/HTTP, and the W3C
// trace context (traceparent, tracestate) that the runtime carries from an
// HTTP request through the broker and the outbox, so that one saga is one
// trace.
//
// Tracing is on only when an OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT
// or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) and OTEL_SDK_DISABLED is not true.
// Off, nothing is set up and every helper here returns at once: no span is
// made, no header read or written, nothing allocated.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// on is whether Setup installed a tracer provider.
var on atomic.Bool

// Enabled reports whether this process traces.
func Enabled() bool { return on.Load() }

// propagator is the W3C trace context, the one format carried everywhere.
var propagator = propagation.TraceContext{}

// Tracer is the tracer of ordersaga's runtime and services.
func Tracer() trace.Tracer { return otel.Tracer("github.com/ordersaga/ordersaga") }

// Configured reports whether getenv turns tracing on: an OTLP endpoint set
// and the SDK not disabled.
func Configured(getenv func(string) string) bool {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false
	}
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")), "none") {
		return false
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Setup turns tracing on for service when getenv configures it, and
// returns the function that flushes and stops it (a no-op when off). The
// SDK reads the other OTEL_* variables itself: OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES (service defaults the name), OTEL_TRACES_SAMPLER
// and its argument (parentbased_always_on by default), the exporter's
// headers, timeout and protocol.
func Setup(ctx context.Context, service string, getenv func(string) string) (shutdown func(context.Context) error, err error) {
	noop := func(context.Context) error { return nil }
	if !Configured(getenv) {
		return noop, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return noop, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", service)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME wins over the default
		resource.WithTelemetrySDK())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return noop, fmt.Errorf("tracing: resource: %w", err)
	}
	// The batcher reads OTEL_BSP_* (export every 5 s by default).
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagator)
	on.Store(true)
	return func(ctx context.Context) error {
		on.Store(false)
		return tp.Shutdown(ctx)
	}, nil
}

// Inject writes the trace context of ctx into carrier; nothing when ctx is
// not traced.
func Inject(ctx context.Context, carrier propagation.TextMapCarrier) {
	if !on.Load() || !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	propagator.Inject(ctx, carrier)
}

// Extract returns ctx with the remote trace context that carrier holds,
// ctx itself when there is none, it is malformed, or tracing is off.
func Extract(ctx context.Context, carrier propagation.TextMapCarrier) context.Context {
	if !on.Load() {
		return ctx
	}
	return propagator.Extract(ctx, carrier)
}

// Handler returns h traced as a server of operation: a span per request,
// child of the request's traceparent, and the response's traceparent
// header naming it. h itself when tracing is off.
func Handler(h http.Handler, operation string) http.Handler {
	if !on.Load() {
		return h
	}
	answer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		propagator.Inject(r.Context(), propagation.HeaderCarrier(w.Header()))
		h.ServeHTTP(w, r)
	})
	return otelhttp.NewHandler(answer, operation, otelhttp.WithFilter(notProbe),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if r.Pattern != "" {
				return r.Pattern
			}
			return r.Method + " " + r.URL.Path
		}))
}

// Transport returns base traced as a client: a span per request, whose
// context the request carries. base itself when tracing is off.
func Transport(base http.RoundTripper) http.RoundTripper {
	if !on.Load() {
		return base
	}
	return tracedTransport{otelhttp.NewTransport(base, otelhttp.WithFilter(notProbe)), base}
}

// tracedTransport is a traced RoundTripper that still closes its base's
// idle connections (http.Client.CloseIdleConnections), which otelhttp's
// does not pass on.
type tracedTransport struct {
	http.RoundTripper
	base http.RoundTripper
}

func (t tracedTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// notProbe leaves the probes and the scrapes untraced: they are no one's
// saga, and would each be a trace of their own every few seconds.
func notProbe(r *http.Request) bool {
	switch r.URL.Path {
	case "/healthz", "/readyz", "/metrics":
		return false
	}
	return true
}

// Stop flushes the spans still buffered and stops tracing (stop is what
// Setup returned), within a few seconds even if ctx has ended; a failure is
// logged, never fatal.
func Stop(ctx context.Context, stop func(context.Context) error, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := stop(ctx); err != nil {
		log.Warn("tracing: spans not all exported at shutdown", "error", err)
	}
}
