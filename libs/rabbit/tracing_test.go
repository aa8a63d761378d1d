package rabbit

import (
	"context"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

const (
	validParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	validTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
)

var w3c = propagation.TraceContext{}

func extracted(h amqp.Table) trace.SpanContext {
	return trace.SpanContextFromContext(w3c.Extract(context.Background(), HeaderCarrier(h)))
}

func TestHeaderCarrierInjectExtract(t *testing.T) {
	t.Parallel()
	tid, _ := trace.TraceIDFromHex(validTrace)
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ts, err := trace.ParseTraceState("vendor=value")
	require.NoError(t, err)
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, TraceState: ts})
	h := amqp.Table{HeaderSchemaVersion: int32(1)}
	w3c.Inject(trace.ContextWithSpanContext(context.Background(), sc), HeaderCarrier(h))
	assert.Equal(t, validParent, h["traceparent"])
	assert.Equal(t, "vendor=value", h["tracestate"])
	assert.NoError(t, h.Validate(), "what is injected is a valid AMQP table")
	assert.ElementsMatch(t, []string{HeaderSchemaVersion, "traceparent", "tracestate"}, HeaderCarrier(h).Keys())

	got := extracted(h)
	assert.True(t, got.IsRemote())
	assert.Equal(t, sc.TraceID(), got.TraceID())
	assert.Equal(t, sc.SpanID(), got.SpanID())
	assert.Equal(t, "vendor=value", got.TraceState().String())
}

// What a foreign producer may put in the headers: every AMQP field type.
// Text (a short or long string, or a byte array) is read; anything else is
// not a trace context and is ignored, never a crash.
func TestHeaderCarrierForeignTypes(t *testing.T) {
	t.Parallel()
	text := []struct {
		name  string
		value any
	}{
		{"string", validParent},
		{"byte array", []byte(validParent)},
	}
	for _, c := range text {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := extracted(amqp.Table{"traceparent": c.value})
			require.True(t, got.IsValid())
			assert.Equal(t, validTrace, got.TraceID().String())
		})
	}
	t.Run("capitalised name", func(t *testing.T) {
		t.Parallel()
		assert.True(t, extracted(amqp.Table{"Traceparent": validParent}).IsValid())
	})
	others := []any{
		int8(1), int16(1), int32(1), int64(1), int(1), uint8(1), uint16(1), uint32(1), uint64(1),
		float32(1), float64(1), true, nil, amqp.Decimal{Scale: 1, Value: 1},
		amqp.Table{"traceparent": validParent}, []any{validParent}, []byte(nil),
	}
	for _, v := range others {
		got := extracted(amqp.Table{"traceparent": v, "tracestate": v})
		assert.False(t, got.IsValid(), "%T %v", v, v)
		assert.Empty(t, HeaderCarrier(amqp.Table{"traceparent": v}).Get("traceparent"), "%T", v)
	}
}

func TestHeaderCarrierMalformed(t *testing.T) {
	t.Parallel()
	for _, tp := range []string{
		"",
		"garbage",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",    // no flags
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01", // zero trace id
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // zero span id
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // forbidden version
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", // upper case
		"00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01", // not hex
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba90-01",    // short span id
		string([]byte{0xff, 0xfe, 0x00}),
	} {
		assert.False(t, extracted(amqp.Table{"traceparent": tp, "tracestate": "=,=bad"}).IsValid(), "%q", tp)
	}
	// A malformed tracestate drops the state, not the parent.
	got := extracted(amqp.Table{"traceparent": validParent, "tracestate": "=,=bad"})
	assert.True(t, got.IsValid())
	assert.Empty(t, got.TraceState().String())
	// No headers at all.
	assert.False(t, extracted(nil).IsValid())
}

// Off (no exporter set up), the runtime's helpers do nothing: no span, no
// header written.
func TestTracingOffTouchesNothing(t *testing.T) {
	t.Parallel()
	h := amqp.Table{}
	_, span := publishSpan(context.Background(), "x", "k", "id", "c", h)
	assert.False(t, span.IsRecording())
	out := Outgoing{Msg: amqp.Publishing{Headers: amqp.Table{}}}
	assert.False(t, PublishTraced(context.Background(), &out, validParent, "").IsRecording())
	assert.False(t, ReplaySpan(context.Background(), &out, "q.dlq").IsRecording())
	assert.Empty(t, h)
	assert.Empty(t, out.Msg.Headers)
}
