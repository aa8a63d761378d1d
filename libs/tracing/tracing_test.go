package tracing

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/propagation"
	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func TestConfigured(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		env  map[string]string
		want bool
	}{
		{nil, false},
		{map[string]string{"OTEL_TRACES_SAMPLER": "always_on"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_SDK_DISABLED": "TRUE"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_TRACES_EXPORTER": "none"}, false},
	} {
		assert.Equal(t, c.want, Configured(env(c.env)), "%v", c.env)
	}
}

// Off, Setup sets nothing up and the helpers hand back what they got.
// Not parallel: TestOn turns the process's tracing on for a while.
func TestOff(t *testing.T) {
	stop, err := Setup(context.Background(), "svc", env(nil))
	require.NoError(t, err)
	require.NoError(t, stop(context.Background()))
	assert.False(t, Enabled())

	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	assert.NotNil(t, Handler(h, "svc"))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/x", nil)
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	Handler(h, "svc").ServeHTTP(rec, req)
	assert.Empty(t, rec.Header().Get("traceparent"), "no traceparent answered while off")
	assert.Equal(t, http.DefaultTransport, Transport(http.DefaultTransport))

	carrier := propagation.MapCarrier{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	ctx := context.Background()
	assert.Equal(t, ctx, Extract(ctx, carrier), "nothing extracted while off")
	out := propagation.MapCarrier{}
	Inject(ctx, out)
	assert.Empty(t, out)
}

// On, a traced request's span is exported over OTLP/HTTP to the endpoint,
// under the service's name, and the answer names it in traceparent.
func TestOn(t *testing.T) {
	var mu sync.Mutex
	var got []*collectorpb.ExportTraceServiceRequest
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		var req collectorpb.ExportTraceServiceRequest
		require.NoError(t, proto.Unmarshal(body, &req), "%s %s", r.Method, r.URL.Path)
		mu.Lock()
		got = append(got, &req)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL) // the SDK reads it too
	stop, err := Setup(context.Background(), "svc", env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL}))
	require.NoError(t, err)
	require.True(t, Enabled())

	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/api/orders", nil)
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), "svc").ServeHTTP(rec, req)
	answer := rec.Header().Get("traceparent")
	assert.True(t, strings.HasPrefix(answer, "00-4bf92f3577b34da6a3ce929d0e0e4736-"), "the answer continues the request's trace: %q", answer)
	assert.NotContains(t, answer, "00f067aa0ba902b7", "and names the server's own span")

	Stop(context.Background(), stop, slog.New(slog.DiscardHandler))
	assert.False(t, Enabled())
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, got, "spans exported at Stop")
	rs := got[0].GetResourceSpans()[0]
	var service string
	for _, a := range rs.GetResource().GetAttributes() {
		if a.GetKey() == "service.name" {
			service = a.GetValue().GetStringValue()
		}
	}
	assert.Equal(t, "svc", service)
	span := rs.GetScopeSpans()[0].GetSpans()[0]
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", fmtID(span.GetTraceId()))
	assert.Equal(t, "00f067aa0ba902b7", fmtID(span.GetParentSpanId()))
}

func fmtID(b []byte) string {
	const hex = "0123456789abcdef"
	var s strings.Builder
	for _, c := range b {
		s.WriteByte(hex[c>>4])
		s.WriteByte(hex[c&15])
	}
	return s.String()
}
