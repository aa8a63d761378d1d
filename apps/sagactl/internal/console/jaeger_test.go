package console

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// jaeger answers Jaeger's query API from a recorded answer of its format
// (testdata/jaeger-trace.json): the trace by id, and the search by tag.
func jaeger(t *testing.T) *httptest.Server {
	t.Helper()
	fixture, err := os.ReadFile("testdata/jaeger-trace.json")
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/traces/4bf92f3577b34da6a3ce929d0e0e4736", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(fixture)
	})
	mux.HandleFunc("GET /api/traces/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"data":null,"errors":[{"code":404,"msg":"trace not found"}]}`))
	})
	mux.HandleFunc("GET /api/traces", func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "order-service", r.URL.Query().Get("service"))
		assert.JSONEq(t, `{"messaging.message.conversation_id":"6f1c2d3e-0000-4000-8000-000000000001"}`, r.URL.Query().Get("tags"))
		_, _ = w.Write(fixture)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func testConsole(t *testing.T) *Console {
	t.Helper()
	c, err := New(Config{Services: []Service{{Name: orderService, URL: "http://127.0.0.1:1"}}}, nil, nil,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	return c
}

func TestTraceIsAWaterfall(t *testing.T) {
	t.Parallel()
	j, c := jaeger(t), testConsole(t)
	w, err := c.Trace(context.Background(), j.URL, "4bf92f3577b34da6a3ce929d0e0e4736")
	require.NoError(t, err)
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", w.TraceID)
	assert.Equal(t, 100*time.Millisecond, w.Duration, "from the first start to the last end")
	require.Len(t, w.Spans, 4)
	got := make([][3]any, len(w.Spans))
	for i, s := range w.Spans {
		got[i] = [3]any{s.Service, s.Operation, s.Depth}
	}
	assert.Equal(t, [][3]any{
		{"gateway", "POST /api/orders", 0},
		{"gateway", "orders.commands publish", 1},
		{"order-service", "order-service.commands process", 2},
		{"payment-service", "payment-service.order-events process", 3},
	}, got, "each span under its parent, a consumer under its producer")
	last := w.Spans[3]
	assert.True(t, last.Error)
	assert.InDelta(t, 0.6, last.Offset, 1e-9)
	assert.InDelta(t, 0.4, last.Width, 1e-9)
	assert.Equal(t, 60*time.Millisecond, last.Start)

	_, err = c.Trace(context.Background(), j.URL, "ffff")
	require.Error(t, err)
}

func TestTraceOfAnOrderIsFoundByItsTag(t *testing.T) {
	t.Parallel()
	j, c := jaeger(t), testConsole(t)
	c.cfg.JaegerURL = j.URL
	var d sagaData
	c.trace(context.Background(), "6f1c2d3e-0000-4000-8000-000000000001", "", &d)
	require.NotNil(t, d.Trace, d.TraceNote)
	assert.Len(t, d.Trace.Spans, 4)
}
