package rabbit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/ordersaga/ordersaga/libs/events"
)

// ErrNotConfirmed is returned when the broker did not take a message: it
// nacked it, returned it as unroutable, or the confirm did not arrive in time.
var ErrNotConfirmed = errors.New("publish not confirmed")

// ReturnedError is the error of a Send whose messages the broker all
// confirmed but returned some of as unroutable (mandatory, and no queue
// bound for them); the others were routed. It is an ErrNotConfirmed.
type ReturnedError struct {
	// Returned says why the broker returned each message, by message id.
	Returned map[string]string
	err      error
}

func (e *ReturnedError) Error() string { return e.err.Error() }
func (e *ReturnedError) Unwrap() error { return e.err }

const maxReturned = 4096

// Outgoing is one message to publish, already in AMQP form.
type Outgoing struct {
	Exchange string
	Key      string
	Msg      amqp.Publishing
}

// Publisher publishes on a confirm-mode channel with mandatory set, and
// reports success only for messages the broker confirmed and routed. It is
// safe for concurrent use; concurrent callers pipeline on one channel.
type Publisher struct {
	conn    *Conn
	appID   string
	timeout time.Duration

	published *prometheus.CounterVec

	mu       sync.Mutex
	ch       *amqp.Channel
	returns  chan amqp.Return
	returned map[string]string // message id → why the broker returned it
}

// NewPublisher returns a publisher that stamps appID on every message and
// waits at most timeout for a confirm.
func NewPublisher(conn *Conn, appID string, timeout time.Duration) *Publisher {
	return &Publisher{conn: conn, appID: appID, timeout: timeout, returned: map[string]string{}}
}

// Instrument counts the publisher's confirmed messages in reg, by exchange
// and type, as ordersaga_messages_published_total. Call it before the first
// publish.
func (p *Publisher) Instrument(reg prometheus.Registerer) error {
	p.published = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ordersaga_messages_published_total",
		Help: "Messages published and confirmed, by exchange (\"\" is the default exchange: retries and dead letters) and type.",
	}, []string{"exchange", "type"})
	return reg.Register(p.published)
}

// Publish publishes msgs to their exchanges and waits for every confirm.
// In a traced ctx each message is published by a span of its own, whose
// context its headers carry.
func (p *Publisher) Publish(ctx context.Context, msgs ...events.Message) error {
	outs := make([]Outgoing, len(msgs))
	var spans []trace.Span
	for i, m := range msgs {
		exchange := events.ExchangeOf(m.Type)
		if exchange == "" {
			return fmt.Errorf("publish %s: unknown message type %q", m.ID, m.Type)
		}
		outs[i] = Outgoing{Exchange: exchange, Key: m.Type, Msg: p.publishing(m)}
		if _, span := publishSpan(ctx, exchange, m.Type, outs[i].Msg.MessageId, m.CorrelationID, outs[i].Msg.Headers); span.IsRecording() {
			spans = append(spans, span)
		}
	}
	err := p.Send(ctx, outs...)
	EndSpans(spans, err)
	return err
}

// EndSpans ends the spans of messages whose publishing ended with err.
func EndSpans(spans []trace.Span, err error) {
	for _, span := range spans {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}

func (p *Publisher) publishing(m events.Message) amqp.Publishing {
	headers := amqp.Table{HeaderSchemaVersion: int32(events.SchemaVersion)}
	if m.CausationID != "" {
		headers[HeaderCausationID] = m.CausationID
	}
	return amqp.Publishing{
		ContentType:   "application/json",
		DeliveryMode:  amqp.Persistent,
		MessageId:     m.ID.String(),
		Type:          m.Type,
		CorrelationId: m.CorrelationID,
		Timestamp:     m.Timestamp,
		AppId:         p.appID,
		Headers:       headers,
		Body:          m.Body,
	}
}

// Send publishes outs and waits for every confirm. Every message must carry
// a MessageId: it is how a returned (unroutable) message is recognised.
func (p *Publisher) Send(ctx context.Context, outs ...Outgoing) error {
	if len(outs) == 0 {
		return nil
	}
	// While the broker blocks publishing, a message would wait for the
	// alarm to clear and then take effect: refuse it at once instead.
	if err := p.conn.publish.blockedErr(); err != nil {
		return fmt.Errorf("publish %s: %w", outs[0].Key, err)
	}
	blocked := p.conn.publish.blockedSignal()
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()

	p.mu.Lock()
	ch, err := p.channel()
	if err != nil {
		p.mu.Unlock()
		return err
	}
	confirms := make([]*amqp.DeferredConfirmation, 0, len(outs))
	for _, o := range outs {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, o.Exchange, o.Key, true, false, o.Msg)
		if err != nil {
			p.dropChannel(ch)
			p.mu.Unlock()
			return fmt.Errorf("%w: publish %s: %v", ErrUnavailable, o.Key, err)
		}
		confirms = append(confirms, dc)
	}
	p.mu.Unlock()

	for i, dc := range confirms {
		select {
		case <-dc.Done():
		case <-ctx.Done():
			return fmt.Errorf("%w: %s %s: %v", ErrNotConfirmed, outs[i].Key, outs[i].Msg.MessageId, ctx.Err())
		case <-blocked:
			select {
			case <-dc.Done(): // confirmed as the block began
			default:
				// The broker will not confirm before the alarm clears. The
				// message may still take effect then, as any unconfirmed one.
				return fmt.Errorf("%w: %s %s: %w", ErrNotConfirmed, outs[i].Key, outs[i].Msg.MessageId, ErrBlocked)
			}
		}
		if !dc.Acked() {
			return fmt.Errorf("%w: %s %s: nacked by the broker", ErrNotConfirmed, outs[i].Key, outs[i].Msg.MessageId)
		}
	}

	// The broker sends basic.return before the ack of the same message, and
	// the client hands returns to p.returns before it processes that ack:
	// once every ack is in, every return of these messages is drained here.
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drainReturns()
	var errs []error
	returned := map[string]string{}
	for _, o := range outs {
		if why, ok := p.returned[o.Msg.MessageId]; ok {
			delete(p.returned, o.Msg.MessageId)
			returned[o.Msg.MessageId] = why
			errs = append(errs, fmt.Errorf("%w: %s %s returned: %s", ErrNotConfirmed, o.Key, o.Msg.MessageId, why))
		} else if p.published != nil {
			p.published.WithLabelValues(o.Exchange, o.Msg.Type).Inc()
		}
	}
	if len(errs) > 0 {
		return &ReturnedError{Returned: returned, err: errors.Join(errs...)}
	}
	return nil
}

// ExchangeExists reports whether exchange exists, with a passive declare on
// a channel of its own (a declare that finds nothing closes its channel).
// The default exchange ("") always exists. It tells a message for a
// missing exchange, whose publish closes the channel and so fails every
// message in flight on it, from its neighbours.
func (p *Publisher) ExchangeExists(ctx context.Context, exchange string) (bool, error) {
	if exchange == "" {
		return true, nil
	}
	// On the consuming connection: the publishing one may be blocked, and a
	// blocked connection is not read at all.
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ch, err := p.conn.Channel(ctx)
	if err != nil {
		return false, fmt.Errorf("%w: look up exchange %s: %v", ErrUnavailable, exchange, err)
	}
	// A passive declare does not compare the kind.
	err = ch.ExchangeDeclarePassive(exchange, "topic", true, false, false, false, nil)
	var amqpErr *amqp.Error
	if errors.As(err, &amqpErr) && amqpErr.Code == amqp.NotFound {
		return false, nil // the broker closed ch
	}
	_ = ch.Close()
	if err != nil {
		return false, fmt.Errorf("%w: look up exchange %s: %v", ErrUnavailable, exchange, err)
	}
	return true, nil
}

// channel returns the open channel, opening one if needed. Caller holds p.mu.
func (p *Publisher) channel() (*amqp.Channel, error) {
	if p.ch != nil && !p.ch.IsClosed() {
		return p.ch, nil
	}
	conn, err := p.conn.publish.current()
	if err != nil {
		return nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("%w: open channel: %v", ErrUnavailable, err)
	}
	if err := ch.Confirm(false); err != nil {
		ch.Close()
		return nil, fmt.Errorf("%w: confirm mode: %v", ErrUnavailable, err)
	}
	// Buffered so the client's reader does not wait on us; drained under
	// p.mu after every confirmed batch, so a return is always either still
	// in the channel or already in p.returned.
	p.returns = ch.NotifyReturn(make(chan amqp.Return, 1024))
	p.ch = ch
	return ch, nil
}

func (p *Publisher) dropChannel(ch *amqp.Channel) {
	if p.ch == ch {
		p.drainReturns()
		p.ch = nil
	}
	ch.Close()
}

// drainReturns moves pending returns into p.returned. Caller holds p.mu.
func (p *Publisher) drainReturns() {
	for {
		select {
		case r, ok := <-p.returns:
			if !ok {
				p.returns = nil
				return
			}
			if len(p.returned) >= maxReturned {
				// Returns of sends that gave up waiting are never looked
				// up; forget them rather than grow without bound.
				clear(p.returned)
			}
			p.returned[r.MessageId] = fmt.Sprintf("%d %s", r.ReplyCode, r.ReplyText)
		default:
			return
		}
	}
}

// Close closes the publisher's channel.
func (p *Publisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ch != nil {
		p.drainReturns()
		err := p.ch.Close()
		p.ch = nil
		return err
	}
	return nil
}
