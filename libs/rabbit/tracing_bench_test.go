package rabbit

import (
	"context"
	"io"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/trace"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/logging"
)

// BenchmarkTracingOffHooks is what tracing adds to publishing and
// consuming one message when no exporter is set up (the default): the
// publisher's producer span, the relay's, the replay's and the consumer's
// end of span, all of which must return at once without allocating.
// go test -run '^$' -bench TracingOff -benchmem ./rabbit/
func BenchmarkTracingOffHooks(b *testing.B) {
	ctx := context.Background()
	headers := amqp.Table{HeaderSchemaVersion: int32(events.SchemaVersion)}
	out := Outgoing{Exchange: "x", Key: "k", Msg: amqp.Publishing{MessageId: "m", Headers: headers}}
	b.ReportAllocs()
	for b.Loop() {
		_, span := publishSpan(ctx, "x", "k", "m", "c", headers)
		if span.IsRecording() {
			b.Fatal("a span while off")
		}
		PublishTraced(ctx, &out, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "")
		endConsumeSpan(trace.SpanFromContext(ctx), "ok", nil)
	}
	if len(headers) != 1 {
		b.Fatal("headers written while off")
	}
}

// BenchmarkPublishingOff is the message the publisher builds, with the
// tracing hook, off.
func BenchmarkPublishingOff(b *testing.B) {
	p := &Publisher{appID: "bench"}
	m, err := events.NewMessage(events.OrderCancelRequested{OrderID: [16]byte{1}, Reason: events.ReasonUserRequested}, "c")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		msg := p.publishing(m)
		publishSpan(ctx, "x", m.Type, msg.MessageId, m.CorrelationID, msg.Headers)
	}
}

// BenchmarkLogOff is a consumer's log line with an untraced context: the
// trace_id handler (libs/logging) only looks the context up.
func BenchmarkLogOff(b *testing.B) {
	log, err := logging.New(io.Discard, "bench", "info", "json")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		log.InfoContext(ctx, "message handled", "outcome", "ok")
	}
}
