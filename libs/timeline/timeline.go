// Package timeline reads one saga's history out of a service's inbox (what
// it received) and outbox (what it emitted): no extra write on the hot path.
package timeline

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/ordersaga/ordersaga/db/messaging/messagingdb"
	"github.com/ordersaga/ordersaga/libs/events"
)

// Entry is one command or event of a saga as one service recorded it.
// Attempt, LastError and Message extend the contract's five fields (docs/
// contract.md, Extensions): a reader that knows only those is unaffected.
type Entry struct {
	At        time.Time `json:"at"`
	Service   string    `json:"service"`
	Type      string    `json:"type"`
	MessageID string    `json:"messageId"`
	Detail    string    `json:"detail"`
	// Attempt is the attempt that handled a received message when it was
	// not the first (it came back through the retry tiers), and LastError
	// the error of the attempt before it; both omitted otherwise.
	Attempt   int    `json:"attempt,omitempty"`
	LastError string `json:"lastError,omitempty"`
	// Message is the message itself where the service keeps it: every
	// message it emitted (its outbox), and every command it received (the
	// gateway, which publishes them, keeps no outbox).
	Message *Message `json:"message,omitempty"`
}

// Message is what a service keeps of a message: the properties it was (or
// is to be) published with, and its body.
type Message struct {
	Exchange      string `json:"exchange"`
	CorrelationID string `json:"correlationId"`
	CausationID   string `json:"causationId,omitempty"`
	// PublishedAt is when the outbox relay published an emitted message;
	// omitted while it is not published yet, and for a received command.
	PublishedAt *time.Time `json:"publishedAt,omitempty"`
	TraceParent string     `json:"traceparent,omitempty"`
	// Body is the JSON body, as it was published (a body that is not JSON
	// is given as a string).
	Body json.RawMessage `json:"body"`
}

// Read returns the entries of the saga correlationID recorded by service, in
// time order.
func Read(ctx context.Context, db messagingdb.DBTX, service, correlationID string) ([]Entry, error) {
	q := messagingdb.New(db)
	received, err := q.TimelineReceived(ctx, correlationID)
	if err != nil {
		return nil, fmt.Errorf("timeline %s: %w", correlationID, err)
	}
	published, err := q.TimelinePublished(ctx, correlationID)
	if err != nil {
		return nil, fmt.Errorf("timeline %s: %w", correlationID, err)
	}
	entries := make([]Entry, 0, len(received)+len(published))
	for _, r := range received {
		e := Entry{At: r.ProcessedAt, Service: service, Type: r.MessageType, MessageID: r.MessageID,
			Detail: join("received", r.Detail)}
		if r.Attempt > 1 {
			e.Attempt, e.LastError = int(r.Attempt), r.LastError
		}
		if r.Body != nil {
			e.Message = &Message{Exchange: events.ExchangeOf(r.MessageType), CorrelationID: correlationID, Body: jsonBody(r.Body)}
		}
		entries = append(entries, e)
	}
	for _, p := range published {
		entries = append(entries, Entry{At: p.CreatedAt, Service: service, Type: p.MessageType, MessageID: p.MessageID.String(),
			Detail: join("emitted", events.Detail(p.Body)),
			Message: &Message{Exchange: p.Exchange, CorrelationID: correlationID, CausationID: p.CausationID,
				PublishedAt: p.PublishedAt, TraceParent: p.Traceparent, Body: jsonBody(p.Body)}})
	}
	Sort(entries)
	return entries, nil
}

// Sort orders entries by time, stably.
func Sort(entries []Entry) {
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].At.Before(entries[j].At) })
}

func join(verb, detail string) string {
	if detail == "" {
		return verb
	}
	return verb + " " + detail
}

// jsonBody is body as a JSON value: itself when it is JSON, else a string.
func jsonBody(body []byte) json.RawMessage {
	if json.Valid(body) {
		return body
	}
	s, _ := json.Marshal(string(body))
	return s
}
