package rabbit

import (
	"context"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/ordersaga/ordersaga/libs/tracing"
)

// HeaderCarrier carries the W3C trace context (traceparent, tracestate) in
// a message's AMQP headers. It reads what a foreign producer may have
// written: a short or long string, or a byte array (some clients send
// strings so); a value of any other type is not a trace context and reads
// as absent, and a malformed one is ignored by the propagator.
type HeaderCarrier amqp.Table

// Get returns the text of header key, "" if it has none.
func (c HeaderCarrier) Get(key string) string {
	v, ok := c[key]
	if !ok {
		// Header names are case-sensitive in AMQP; accept a producer that
		// capitalised them.
		for k, val := range c {
			if strings.EqualFold(k, key) {
				v = val
				break
			}
		}
	}
	switch s := v.(type) {
	case string:
		return s
	case []byte:
		return string(s)
	default:
		return ""
	}
}

// Set sets header key to value.
func (c HeaderCarrier) Set(key, value string) { c[key] = value }

// Keys returns the header names.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// noSpan is the span of what is not traced: it records nothing.
var noSpan trace.Span = noop.Span{}

// messagingAttrs are the attributes of a span that publishes or consumes a
// message.
func messagingAttrs(operation, destination, key, messageID, correlationID string) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("messaging.system", "rabbitmq"),
		attribute.String("messaging.operation.type", operation),
		attribute.String("messaging.destination.name", destination),
		attribute.String("messaging.rabbitmq.destination.routing_key", key),
		attribute.String("messaging.message.id", messageID),
		attribute.String("messaging.message.conversation_id", correlationID),
	}
}

// publishSpan starts the producer span of a message published to exchange
// with key as a child of ctx, and writes its context into headers. Off, or
// outside a trace, it returns ctx and a span that records nothing.
func publishSpan(ctx context.Context, exchange, key, messageID, correlationID string, headers amqp.Table) (context.Context, trace.Span) {
	if !tracing.Enabled() || !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx, noSpan
	}
	dest := exchange
	if dest == "" {
		dest = "(default)"
	}
	ctx, span := tracing.Tracer().Start(ctx, "publish "+key, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(messagingAttrs("send", dest, key, messageID, correlationID)...))
	tracing.Inject(ctx, HeaderCarrier(headers))
	return ctx, span
}

// PublishTraced publishes out as a child span of the trace context that
// parent (a traceparent, and tracestate) names, so that a message written
// in one process and published by another (the outbox relay) stays in its
// trace. It returns the span to end once the publish is confirmed; with no
// valid parent, or tracing off, it does nothing.
func PublishTraced(ctx context.Context, out *Outgoing, traceparent, tracestate string) trace.Span {
	if !tracing.Enabled() || traceparent == "" {
		return noSpan
	}
	carrier := HeaderCarrier{"traceparent": traceparent}
	if tracestate != "" {
		carrier["tracestate"] = tracestate
	}
	ctx = tracing.Extract(ctx, carrier)
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return noSpan
	}
	if out.Msg.Headers == nil {
		out.Msg.Headers = amqp.Table{}
	}
	_, span := publishSpan(ctx, out.Exchange, out.Key, out.Msg.MessageId, out.Msg.CorrelationId, out.Msg.Headers)
	return span
}

// consumeSpan starts the consumer span of d, a child of the trace context
// its headers carry (a new trace if none), on queue.
func consumeSpan(ctx context.Context, queue string, d amqp.Delivery, attempt int) (context.Context, trace.Span) {
	ctx = tracing.Extract(ctx, HeaderCarrier(d.Headers))
	ctx, span := tracing.Tracer().Start(ctx, "process "+d.Type, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(messagingAttrs("process", queue, d.RoutingKey, d.MessageId, d.CorrelationId)...),
		trace.WithAttributes(attribute.Int("messaging.rabbitmq.attempt", attempt)))
	if at, ok := d.Headers[HeaderReplayedAt].(string); ok {
		span.AddEvent("replayed from the dead-letter queue", trace.WithAttributes(attribute.String("replayed_at", at)))
	}
	return ctx, span
}

// endConsumeSpan records on span how the handling of its message ended.
func endConsumeSpan(span trace.Span, outcome string, err error, attrs ...attribute.KeyValue) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attribute.String("ordersaga.outcome", outcome))
	switch outcome {
	case "retried":
		span.AddEvent("retry scheduled", trace.WithAttributes(attrs...))
	case "dead_lettered":
		span.AddEvent("dead-lettered", trace.WithAttributes(attrs...))
	case "paused":
		span.AddEvent("requeued: dependency down", trace.WithAttributes(attrs...))
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// ReplaySpan starts the span of replaying dead letter out from dlq (an
// operator's sagactl dlq replay): in the trace the dead letter carries, a
// child of its traceparent and linked to it as what it replays, and writes
// the span's context into out's headers, so that the replayed message's
// handling continues the saga's trace from the replay. Off, or for an
// untraced dead letter, it does nothing: the message keeps its traceparent.
func ReplaySpan(ctx context.Context, out *Outgoing, dlq string) trace.Span {
	if !tracing.Enabled() {
		return noSpan
	}
	original := trace.SpanContextFromContext(tracing.Extract(ctx, HeaderCarrier(out.Msg.Headers)))
	if !original.IsValid() {
		return noSpan
	}
	ctx = trace.ContextWithRemoteSpanContext(ctx, original)
	ctx, span := tracing.Tracer().Start(ctx, "replay "+out.Msg.Type, trace.WithSpanKind(trace.SpanKindProducer),
		// The link names the parent itself. Jaeger's OTLP translation gives
		// a link to the parent its own reference type, follows_from unless
		// the link says otherwise, and the replay would show as a root of
		// the trace: hence the OpenTracing ref type on the link.
		trace.WithLinks(trace.Link{SpanContext: original, Attributes: []attribute.KeyValue{
			attribute.String("ordersaga.link", "replayed dead letter"), attribute.String("opentracing.ref_type", "child_of")}}),
		trace.WithAttributes(messagingAttrs("send", out.Key, out.Key, out.Msg.MessageId, out.Msg.CorrelationId)...),
		trace.WithAttributes(attribute.String("ordersaga.dead_letter_queue", dlq)))
	tracing.Inject(ctx, HeaderCarrier(out.Msg.Headers))
	return span
}
