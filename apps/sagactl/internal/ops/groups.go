package ops

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/ordersaga/ordersaga/libs/rabbit"
)

// The variable parts of an x-error: what differs between two messages that
// failed for the same reason. Fingerprint replaces them, so that "order
// 5f…: not found" and "order 9a…: not found" fall in one group.
var (
	uuidPattern   = regexp.MustCompile(`(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b`)
	quotedPattern = regexp.MustCompile(`"[^"]*"`)
	hexPattern    = regexp.MustCompile(`(?i)\b(?:0x)?[0-9a-f]{8,}\b`)
	numberPattern = regexp.MustCompile(`-?\b\d+(\.\d+)?\b`)
	spacePattern  = regexp.MustCompile(`\s+`)
)

// Normalize is the x-error reason with its variable parts (ids, quoted
// values, numbers) replaced by placeholders: the reason of its group.
func Normalize(reason string) string {
	s := uuidPattern.ReplaceAllString(reason, "<id>")
	s = quotedPattern.ReplaceAllString(s, `"…"`)
	s = hexPattern.ReplaceAllString(s, "<hex>")
	s = numberPattern.ReplaceAllString(s, "<n>")
	return strings.TrimSpace(spacePattern.ReplaceAllString(s, " "))
}

// Fingerprint is the short hash of the normalized x-error reason, the key
// of a group of dead letters: 12 hex digits. An empty reason has one too.
func Fingerprint(reason string) string {
	sum := sha256.Sum256([]byte(Normalize(reason)))
	return hex.EncodeToString(sum[:6])
}

// Group is the dead letters of one queue that have one message type and one
// error fingerprint.
type Group struct {
	Queue       string    `json:"queue"`
	Type        string    `json:"type"`
	Fingerprint string    `json:"fingerprint"`
	Reason      string    `json:"reason"`    // normalized
	Example     string    `json:"example"`   // the x-error of the latest one
	ErrorKind   string    `json:"errorKind"` // of the latest one
	Count       int       `json:"count"`
	FirstSeen   time.Time `json:"firstSeen"`
	LastSeen    time.Time `json:"lastSeen"`
	// MessageIDs are the message ids of the group, oldest first.
	MessageIDs []string `json:"messageIds"`
	// Orders are the correlation ids (order ids) of the group, oldest first,
	// without repetition.
	Orders []string `json:"orders"`
}

// Scan is every dead letter of the vhost, grouped.
type Scan struct {
	Queues []QueueCount `json:"queues"`
	Groups []Group      `json:"groups"`
	// Truncated is set when a queue held more than the scan's limit: the
	// counts of its groups cover only the messages read.
	Truncated bool      `json:"truncated"`
	At        time.Time `json:"at"`
}

// DeadAt is when message m was dead-lettered: its x-failed-at header,
// else its timestamp.
func DeadAt(m Message) time.Time {
	if s, ok := m.Headers[rabbit.HeaderFailedAt].(string); ok {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t
		}
	}
	return m.Timestamp
}

// GroupMessages groups the dead letters msgs of queue by type and
// fingerprint, the largest group first.
func GroupMessages(queue string, msgs []Message) []Group {
	byKey := map[string]*Group{}
	var order []string
	for _, m := range msgs {
		fp := Fingerprint(m.Error)
		key := m.Type + "\x00" + fp
		g, ok := byKey[key]
		if !ok {
			g = &Group{Queue: queue, Type: m.Type, Fingerprint: fp, Reason: Normalize(m.Error)}
			byKey[key] = g
			order = append(order, key)
		}
		at := DeadAt(m)
		g.Count++
		g.MessageIDs = append(g.MessageIDs, m.MessageID)
		if m.CorrelationID != "" && !contains(g.Orders, m.CorrelationID) {
			g.Orders = append(g.Orders, m.CorrelationID)
		}
		if g.FirstSeen.IsZero() || at.Before(g.FirstSeen) {
			g.FirstSeen = at
		}
		if !at.Before(g.LastSeen) {
			g.LastSeen, g.Example, g.ErrorKind = at, m.Error, m.ErrorKind
		}
	}
	out := make([]Group, 0, len(order))
	for _, k := range order {
		out = append(out, *byKey[k])
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Count > out[j].Count })
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Scan reads at most limit messages of every dead-letter queue of the
// vhost, without removing them (see Show), and groups them.
func (d *DLQ) Scan(ctx context.Context, limit int) (Scan, error) {
	qs, err := d.List(ctx)
	if err != nil {
		return Scan{}, err
	}
	s := Scan{Queues: qs, Groups: []Group{}, At: time.Now().UTC()}
	for _, q := range qs {
		if q.Messages == 0 {
			continue
		}
		if _, _, err := Resolve(d.topology, q.Queue); err != nil {
			continue // a .dlq outside the saga's topology: listed, not read
		}
		p, err := d.Show(ctx, q.Queue, limit)
		if err != nil {
			return Scan{}, err
		}
		if p.Total > len(p.Messages) {
			s.Truncated = true
		}
		s.Groups = append(s.Groups, GroupMessages(q.Queue, p.Messages)...)
	}
	return s, nil
}

// Find returns the message of the dead-letter queue name whose message_id
// is id, read without removing it; ErrNotFound when there is none among the
// first limit.
func (d *DLQ) Find(ctx context.Context, name, id string, limit int) (Message, error) {
	p, err := d.Show(ctx, name, limit)
	if err != nil {
		return Message{}, err
	}
	for _, m := range p.Messages {
		if m.MessageID == id {
			return m, nil
		}
	}
	return Message{}, errorf(ErrNotFound, "no message with message_id %q in %s", id, p.Queue)
}
