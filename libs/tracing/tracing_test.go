package tracing

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/propagation"
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
func TestOff(t *testing.T) {
	t.Parallel()
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
