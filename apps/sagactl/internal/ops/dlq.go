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
	for len(p.Messages) < n {
		del, ok, err := ch.Get(p.Queue, false)
		if err != nil {
			_ = ch.Close()
			return Peek{}, fmt.Errorf("get from %s: %w", p.Queue, err)
		}
		if !ok {
			break
		}
		p.Messages = append(p.Messages, toMessage(del))
	}
	_ = ch.Close() // returns every fetched message to the queue
	d.awaitReturned(ctx, p.Queue, p.Total)
	return p, nil
}

// returnWait bounds how long Show waits for the messages it read to be
// back in their queue.
const returnWait = 3 * time.Second

// awaitReturned waits until queue holds at least n ready messages again:
// the broker requeues the messages of a closed channel a moment after the
// close, and a replay or a count right after a Show should see them.
func (d *DLQ) awaitReturned(ctx context.Context, queue string, n int) {
	deadline := time.Now().Add(returnWait)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		got, err := d.count(ctx, queue)
		if err != nil || got >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
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

// Selection says which messages Replay takes: All, those whose message_id
// is ID, or those of the group Type and Fingerprint (GroupMessages).
type Selection struct {
	ID          string
	Type        string
	Fingerprint string
	All         bool
}

// String says what the selection takes, for results and the audit log.
func (s Selection) String() string {
	switch {
	case s.All:
		return "all messages"
	case s.ID != "":
		return "message " + s.ID
	default:
		return fmt.Sprintf("group %s/%s", s.Type, s.Fingerprint)
	}
}

func (s Selection) valid() bool {
	return s.All || s.ID != "" || (s.Type != "" && s.Fingerprint != "")
}

func (s Selection) takes(m Message) bool {
	switch {
	case s.All:
		return true
	case s.ID != "":
		return m.MessageID == s.ID
	default:
		return m.Type == s.Type && Fingerprint(m.Error) == s.Fingerprint
	}
}

// DefaultRate is how many messages per second Replay republishes unless
// told otherwise: a replayed backlog should not flood its consumer.
const DefaultRate = 20

// ReplayOptions tune Replay.
type ReplayOptions struct {
	// DryRun finds the selected messages and says what would happen,
	// touching nothing (the messages read go back to the queue).
	DryRun bool
	// Rate is at most how many messages per second are republished;
	// DefaultRate when 0.
	Rate float64
}

// ReplayResult says what Replay did, or, for a dry run, would do.
type ReplayResult struct {
	Queue     string   `json:"queue"`
	WorkQueue string   `json:"workQueue"`
	Selection string   `json:"selection"`
	DryRun    bool     `json:"dryRun"`
	Replayed  int      `json:"replayed"`
	IDs       []string `json:"messageIds"`
	Rate      float64  `json:"rate"`
}

// Summary is the result in one sentence.
func (r ReplayResult) Summary() string {
	if r.DryRun {
		secs := float64(r.Replayed) / r.Rate
		return fmt.Sprintf("dry run: would replay %s (%s) from %s to %s, at most %g/s (about %.1f s); nothing was changed",
			countOf(r.Replayed), r.Selection, r.Queue, r.WorkQueue, r.Rate, secs)
	}
	return fmt.Sprintf("replayed %s from %s to %s", countOf(r.Replayed), r.Queue, r.WorkQueue)
}

func countOf(n int) string {
	if n == 1 {
		return "1 message"
	}
	return fmt.Sprintf("%d messages", n)
}

// Replay republishes the selected messages of the dead-letter queue name to
// their work queue and removes each from the dead-letter queue once the
// broker confirmed its copy, at most opt.Rate a second. A failure between
// the two leaves the message in both queues, which the consumers'
// idempotency makes harmless; the reverse order could lose it. Messages not
// selected stay unacknowledged until the channel closes, which returns them
// untouched. With an ID, every copy of that message is replayed. A
// selection that takes nothing is ErrNotFound (unless All).
//
// It fetches at most the messages present when it starts, so it ends even
// while new dead letters arrive.
func (d *DLQ) Replay(ctx context.Context, name string, sel Selection, opt ReplayOptions) (ReplayResult, error) {
	if !sel.valid() {
		return ReplayResult{}, errorf(ErrInvalid, "replay: select a message id, a group or all messages")
	}
	dlq, work, err := Resolve(d.topology, name)
	if err != nil {
		return ReplayResult{}, err
	}
	if opt.Rate <= 0 {
		opt.Rate = DefaultRate
	}
	res := ReplayResult{Queue: dlq, WorkQueue: work, Selection: sel.String(), DryRun: opt.DryRun, Rate: opt.Rate, IDs: []string{}}
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
	pace := newPacer(opt.Rate)
	for range total {
		del, ok, err := ch.Get(dlq, false)
		if err != nil {
			return res, fmt.Errorf("get from %s: %w", dlq, err)
		}
		if !ok {
			break
		}
		if !sel.takes(toMessage(del)) {
			continue
		}
		if !opt.DryRun {
			if err := pace.wait(ctx); err != nil {
				return res, err
			}
			if err := d.republish(ctx, del, dlq, work); err != nil {
				return res, err
			}
		}
		res.Replayed++
		res.IDs = append(res.IDs, del.MessageId)
	}
	switch {
	case sel.All || res.Replayed > 0:
	case sel.ID != "":
		return res, errorf(ErrNotFound, "no message with message_id %q in %s", sel.ID, dlq)
	default:
		return res, errorf(ErrNotFound, "no message of %s in %s", sel, dlq)
	}
	return res, nil
}

// republish sends dead letter del to work and, once confirmed, removes it
// from dlq.
func (d *DLQ) republish(ctx context.Context, del amqp.Delivery, dlq, work string) error {
	out := rabbit.Outgoing{Exchange: "", Key: work, Msg: Replayed(del, time.Now())}
	// The replay is a span of its own, linked to the message's trace.
	span := rabbit.ReplaySpan(ctx, &out, dlq)
	err := d.pub.Send(ctx, out)
	rabbit.EndSpans([]trace.Span{span}, err)
	if err != nil {
		return fmt.Errorf("republish %s to %s: %w", del.MessageId, work, err)
	}
	if err := del.Ack(false); err != nil {
		return fmt.Errorf("remove %s from %s after republishing it (it is now in both): %w", del.MessageId, dlq, err)
	}
	return nil
}

// pacer spaces events at most rate a second.
type pacer struct {
	every time.Duration
	next  time.Time
}

func newPacer(rate float64) *pacer {
	return &pacer{every: time.Duration(float64(time.Second) / rate)}
}

// wait blocks until the next event may happen, or ctx ends.
func (p *pacer) wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := time.Now()
	if p.next.After(now) {
		t := time.NewTimer(p.next.Sub(now))
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		now = p.next
	}
	p.next = now.Add(p.every)
	return nil
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

// Topology is the topology whose dead-letter queues d operates.
func (d *DLQ) Topology() events.Topology { return d.topology }
