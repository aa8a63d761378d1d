package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"
)

func TestNew(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, level, format string
		wantErr             string
		check               func(t *testing.T, out string)
	}{
		{"json by default off a terminal", "info", "", "", func(t *testing.T, out string) {
			var line map[string]any
			require.NoError(t, json.Unmarshal([]byte(out), &line))
			assert.Equal(t, "svc", line["service"])
			assert.Equal(t, "hello", line["msg"])
		}},
		{"text on request", "info", "text", "", func(t *testing.T, out string) {
			assert.Contains(t, out, "msg=hello")
			assert.Contains(t, out, "service=svc")
		}},
		{"level filters", "warn", "json", "", func(t *testing.T, out string) { assert.Empty(t, out) }},
		{"bad level", "loud", "", "LOG_LEVEL", nil},
		{"bad format", "info", "xml", "LOG_FORMAT", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := New(&buf, "svc", tc.level, tc.format)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			log.Info("hello")
			tc.check(t, strings.TrimSpace(buf.String()))
		})
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	assert.NoError(t, Check("DEBUG", ""), "the defaults and any case of a level")
	assert.NoError(t, Check("warn", "text"))
	err := Check("loud", "xml")
	assert.ErrorContains(t, err, `LOG_LEVEL "loud"`)
	assert.ErrorContains(t, err, `LOG_FORMAT "xml"`, "both at once")
}

func TestTraceIDs(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log, err := New(&buf, "svc", "info", "json")
	require.NoError(t, err)
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	log.With("k", "v").InfoContext(ctx, "traced")
	log.Info("untraced")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 2)
	var traced, untraced map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &traced))
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &untraced))
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", traced["trace_id"])
	assert.Equal(t, "00f067aa0ba902b7", traced["span_id"])
	assert.Equal(t, "v", traced["k"])
	assert.NotContains(t, untraced, "trace_id")
}
