// Package ops is what sagactl does to the broker: list, show, replay and
// purge the saga's dead-letter queues, and describe or declare its topology.
package ops

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/trace"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/rabbit/mgmt"
)

var (
	// ErrNotFound is returned for a queue or message that does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalid is returned for a request that can never succeed, such as
	// naming a queue that is not a dead-letter queue of the topology.
	ErrInvalid = errors.New("invalid request")
)

// classified is an error of a class (ErrNotFound, ErrInvalid) whose message
// reads on its own, without the class's name.
type classified struct {
	class error
	msg   string
}

func (e *classified) Error() string { return e.msg }
func (e *classified) Unwrap() error { return e.class }

func errorf(class error, format string, args ...any) error {
	return &classified{class: class, msg: fmt.Sprintf(format, args...)}
}

const dlqSuffix = ".dlq"

// DLQ operates the dead-letter queues of one vhost.
type DLQ struct {
	conn     *rabbit.Conn
	pub      *rabbit.Publisher
	mgmt     *mgmt.Client
	vhost    string
	topology events.Topology
}

// NewDLQ returns the operator of the dead-letter queues of topology in
// vhost. conn must be connected to vhost; pub publishes replays through it.
func NewDLQ(conn *rabbit.Conn, pub *rabbit.Publisher, api *mgmt.Client, vhost string, topology events.Topology) *DLQ {
	return &DLQ{conn: conn, pub: pub, mgmt: api, vhost: vhost, topology: topology}
}

// Resolve returns the dead-letter queue that name designates, with or
// without its .dlq suffix, and the work queue it belongs to. Only the
// topology's dead-letter queues qualify: replaying into anything else could
// feed messages to a consumer that never expected them.
func Resolve(topology events.Topology, name string) (dlq, work string, err error) {
	dlq = name
	if !strings.HasSuffix(dlq, dlqSuffix) {
		dlq = events.DeadLetterQueue(name)
	}
	known := make([]string, 0, len(topology.Queues))
	for _, q := range topology.Queues {
		if events.DeadLetterQueue(q.Name) == dlq {
			return dlq, q.Name, nil
		}
		known = append(known, events.DeadLetterQueue(q.Name))
	}
	return "", "", errorf(ErrInvalid, "%q is not a dead-letter queue of the saga topology (known: %s)",
		name, strings.Join(known, ", "))
}

// QueueCount is a queue and how many messages it holds.
type QueueCount struct {
	Queue    string `json:"queue"`
	Messages int    `json:"messages"`
}

// List returns every queue of the vhost whose name ends in .dlq, sorted by
// name, with its message count.
func (d *DLQ) List(ctx context.Context) ([]QueueCount, error) {
	qs, err := d.mgmt.Queues(ctx, d.vhost)
	switch {
	case errors.Is(err, mgmt.ErrNotFound):
		return nil, errorf(ErrNotFound, "%v (no such vhost?)", err)
	case errors.Is(err, mgmt.ErrUnauthorized):
		return nil, fmt.Errorf("%w (check the credentials in RABBITMQ_MGMT_URL)", err)
	case err != nil:
		return nil, err
	}
	var out []QueueCount
	for _, q := range qs {
		if !strings.HasSuffix(q.Name, dlqSuffix) {
			continue
		}
		// The management API's counts lag by its statistics interval; an
		// operator who just replayed or purged wants the count of now.
		n, err := d.count(ctx, q.Name)
		if errors.Is(err, ErrNotFound) {
			continue // deleted since it was listed
		}
		if err != nil {
			return nil, err
		}
		out = append(out, QueueCount{Queue: q.Name, Messages: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Queue < out[j].Queue })
	return out, nil
}

// Count resolves name to a dead-letter queue of the topology and returns
// the queue and its message count; ErrNotFound when it does not exist.
func (d *DLQ) Count(ctx context.Context, name string) (QueueCount, error) {
	dlq, _, err := Resolve(d.topology, name)
	if err != nil {
		return QueueCount{}, err
	}
	n, err := d.count(ctx, dlq)
	if err != nil {
		return QueueCount{}, err
	}
	return QueueCount{Queue: dlq, Messages: n}, nil
}

// count returns the ready messages of queue, exactly, with a passive
// declare on a channel of its own (a missing queue closes the channel).
func (d *DLQ) count(ctx context.Context, queue string) (int, error) {
	ch, err := d.conn.Channel(ctx)
	if err != nil {
		return 0, err
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		var aerr *amqp.Error
		if errors.As(err, &aerr) && aerr.Code == amqp.NotFound {
			return 0, errorf(ErrNotFound, "queue %s does not exist in vhost %q (sagactl topology --declare creates it)",
				queue, d.vhost)
		}
		return 0, fmt.Errorf("inspect queue %s: %w", queue, err)
	}
	return q.Messages, nil
}

// Message is a dead-lettered message as an operator reads it.
type Message struct {
	MessageID     string
	Type          string
	CorrelationID string
	AppID         string
	ContentType   string
	Timestamp     time.Time
	// Redelivered is set once the message was fetched before, by sagactl
	// show included.
	Redelivered bool
	// ErrorKind, Error, Attempts and OriginalQueue come from the headers the
	// consumer added when it dead-lettered the message.
	ErrorKind     string
	Error         string
	Attempts      any
	OriginalQueue string
	// Headers are the other headers.
	Headers amqp.Table
	Body    []byte
}

// Peek is the head of a dead-letter queue.
type Peek struct {
	Queue    string
	Total    int
	Messages []Message
}

// Show returns the first n messages of the dead-letter queue name without
// removing them: they are fetched unacknowledged and go back to the queue
// when the channel closes. A quorum queue counts that as a redelivery.
func (d *DLQ) Show(ctx context.Context, name string, n int) (Peek, error) {
	qc, err := d.Count(ctx, name)
	if err != nil {
		return Peek{}, err
	}
	p := Peek{Queue: qc.Queue, Total: qc.Messages}
	ch, err := d.conn.Channel(ctx)
	if err != nil {
		return Peek{}, err
	}
	defer ch.Close() // returns every fetched message to the queue
	for len(p.Messages) < n {
		del, ok, err := ch.Get(p.Queue, false)
		if err != nil {
			return Peek{}, fmt.Errorf("get from %s: %w", p.Queue, err)
		}
		if !ok {
			break
		}
		p.Messages = append(p.Messages, toMessage(del))
	}
	return p, nil
}

// errorHeaders are the headers Message has fields for.
var errorHeaders = map[string]bool{rabbit.HeaderError: true, rabbit.HeaderErrorKind: true, rabbit.HeaderAttempts: true, rabbit.HeaderOriginalQueue: true}

func toMessage(d amqp.Delivery) Message {
	m := Message{
		MessageID:     d.MessageId,
		Type:          d.Type,
		CorrelationID: d.CorrelationId,
		AppID:         d.AppId,
		ContentType:   d.ContentType,
		Timestamp:     d.Timestamp,
		Redelivered:   d.Redelivered,
		Attempts:      d.Headers[rabbit.HeaderAttempts],
		Headers:       amqp.Table{},
		Body:          d.Body,
	}
	m.ErrorKind, _ = d.Headers[rabbit.HeaderErrorKind].(string)
	m.Error, _ = d.Headers[rabbit.HeaderError].(string)
	m.OriginalQueue, _ = d.Headers[rabbit.HeaderOriginalQueue].(string)
	for k, v := range d.Headers {
		if !errorHeaders[k] {
			m.Headers[k] = v
		}
	}
	return m
}

// Selection says which messages Replay takes: All, or those whose
// message_id is ID.
type Selection struct {
	ID  string
	All bool
}

// ReplayResult says what Replay did.
type ReplayResult struct {
	Queue     string
	WorkQueue string
	Replayed  int
}

// Replay republishes the selected messages of the dead-letter queue name to
// their work queue and removes each from the dead-letter queue once the
// broker confirmed its copy. A failure between the two leaves the message in
// both queues, which the consumers' idempotency makes harmless; the reverse
// order could lose it. Messages not selected stay unacknowledged until the
// channel closes, which returns them untouched. With an ID, every copy of
// that message is replayed; none is ErrNotFound.
//
// It fetches at most the messages present when it starts, so it ends even
// while new dead letters arrive.
func (d *DLQ) Replay(ctx context.Context, name string, sel Selection) (ReplayResult, error) {
	if !sel.All && sel.ID == "" {
		return ReplayResult{}, errorf(ErrInvalid, "replay: select a message id or all messages")
	}
	dlq, work, err := Resolve(d.topology, name)
	if err != nil {
		return ReplayResult{}, err
	}
	res := ReplayResult{Queue: dlq, WorkQueue: work}
	total, err := d.count(ctx, dlq)
	if err != nil {
		return res, err
	}
	if _, err := d.count(ctx, work); err != nil {
		return res, err
	}
	ch, err := d.conn.Channel(ctx)
	if err != nil {
		return res, err
	}
	defer ch.Close() // returns the messages not selected
	for range total {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		del, ok, err := ch.Get(dlq, false)
		if err != nil {
			return res, fmt.Errorf("get from %s: %w", dlq, err)
		}
		if !ok {
			break
		}
		if !sel.All && del.MessageId != sel.ID {
			continue
		}
		out := rabbit.Outgoing{Exchange: "", Key: work, Msg: Replayed(del, time.Now())}
		span := rabbit.ReplaySpan(ctx, &out, dlq)
		err = d.pub.Send(ctx, out)
		rabbit.EndSpans([]trace.Span{span}, err)
		if err != nil {
			return res, fmt.Errorf("republish %s to %s: %w", del.MessageId, work, err)
		}
		if err := del.Ack(false); err != nil {
			return res, fmt.Errorf("remove %s from %s after republishing it (it is now in both): %w", del.MessageId, dlq, err)
		}
		res.Replayed++
	}
	if !sel.All && res.Replayed == 0 {
		return res, errorf(ErrNotFound, "no message with message_id %q in %s", sel.ID, dlq)
	}
	return res, nil
}

// Replayed is dead letter d as it goes back to its work queue, replayed at
// at: as the consumer republishes (rabbit.Republish) but without the
// failure record, so the consumer starts with a fresh attempt budget, and
// with header x-replayed-at added.
func Replayed(d amqp.Delivery, at time.Time) amqp.Publishing {
	msg := rabbit.Republish(d, rabbit.HeaderError, rabbit.HeaderErrorKind, rabbit.HeaderAttempts,
		rabbit.HeaderLastError, rabbit.HeaderFailedAt)
	msg.Headers[rabbit.HeaderReplayedAt] = at.UTC().Format(time.RFC3339Nano)
	return msg
}

// Purge removes every message of the dead-letter queue name and returns
// how many it removed.
func (d *DLQ) Purge(ctx context.Context, name string) (QueueCount, error) {
	qc, err := d.Count(ctx, name)
	if err != nil {
		return QueueCount{}, err
	}
	ch, err := d.conn.Channel(ctx)
	if err != nil {
		return QueueCount{}, err
	}
	defer ch.Close()
	n, err := ch.QueuePurge(qc.Queue, false)
	if err != nil {
		return QueueCount{}, fmt.Errorf("purge %s: %w", qc.Queue, err)
	}
	return QueueCount{Queue: qc.Queue, Messages: n}, nil
}
