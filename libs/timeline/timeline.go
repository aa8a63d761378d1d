// Package timeline reads one saga's history out of a service's inbox (what
// it received) and outbox (what it emitted): no extra write on the hot path.
package timeline

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/ordersaga/ordersaga/db/messaging/messagingdb"
	"github.com/ordersaga/ordersaga/libs/events"
)

// Entry is one command or event of a saga as one service recorded it.
type Entry struct {
	At        time.Time `json:"at"`
	Service   string    `json:"service"`
	Type      string    `json:"type"`
	MessageID string    `json:"messageId"`
	Detail    string    `json:"detail"`
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
		entries = append(entries, Entry{At: r.ProcessedAt, Service: service, Type: r.MessageType, MessageID: r.MessageID,
			Detail: join("received", r.Detail)})
	}
	for _, p := range published {
		entries = append(entries, Entry{At: p.CreatedAt, Service: service, Type: p.MessageType, MessageID: p.MessageID.String(),
			Detail: join("emitted", events.Detail(p.Body))})
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
