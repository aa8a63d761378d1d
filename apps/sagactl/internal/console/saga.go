package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/saga"

	"github.com/ordersaga/ordersaga/apps/sagactl/internal/ops"
)

// entry is one line of a participant's timeline (libs/timeline.Entry).
type entry struct {
	At        time.Time `json:"at"`
	Service   string    `json:"service"`
	Type      string    `json:"type"`
	MessageID string    `json:"messageId"`
	Detail    string    `json:"detail"`
	// Attempt is the attempt that handled a received message when it took
	// retries (0 when the first did), LastError the error of the one before.
	Attempt   int    `json:"attempt"`
	LastError string `json:"lastError"`
	// Kept is the message itself where the service keeps it (what it
	// emitted, and the commands it received).
	Kept *kept `json:"message"`
}

// kept is a message as a timeline keeps it (libs/timeline.Message).
type kept struct {
	Exchange      string          `json:"exchange"`
	CorrelationID string          `json:"correlationId"`
	CausationID   string          `json:"causationId"`
	PublishedAt   *time.Time      `json:"publishedAt"`
	TraceParent   string          `json:"traceparent"`
	Body          json.RawMessage `json:"body"`
}

// Emitted reports whether the entry records a message its service sent.
func (e entry) Emitted() bool { return strings.HasPrefix(e.Detail, "emitted") }

// Retries is how many attempts failed before the one that handled it.
func (e entry) Retries() int { return max(e.Attempt-1, 0) }

// message is one message of a saga: who sent it, who took it, and what the
// timelines and dead-letter queues say of it.
type message struct {
	Index     int
	MessageID string
	Type      string
	From      string
	To        []string // the services that recorded receiving it
	Missing   []string // consumers with a timeline that did not (yet)
	At        time.Time
	Entries   []entry
	// Kept is the message as its sender's outbox (or, for a command, its
	// consumer's inbox) keeps it; nil when no timeline read keeps it.
	Kept      *kept
	Dead      *ops.Message // when it sits in a dead-letter queue
	DeadQueue string
	Replayed  bool // replayed from a dead-letter queue (audit log)
}

// Retried are the entries of the services that handled it only after
// retries.
func (m message) Retried() []entry {
	var out []entry
	for _, e := range m.Entries {
		if e.Retries() > 0 {
			out = append(out, e)
		}
	}
	return out
}

// header is one line of a message's headers as the page lists them.
type header struct{ Name, Value string }

// Headers are the message's properties and headers as it was published,
// as far as a timeline keeps them.
func (m message) Headers() []header {
	hs := []header{{"message_id", m.MessageID}, {"type", m.Type}}
	k := m.Kept
	if k == nil {
		return hs
	}
	hs = append(hs, header{"exchange", k.Exchange}, header{"correlation_id", k.CorrelationID})
	if k.CausationID != "" {
		hs = append(hs, header{rabbit.HeaderCausationID, k.CausationID})
	}
	if k.PublishedAt != nil {
		hs = append(hs, header{"published at", k.PublishedAt.UTC().Format("2006-01-02 15:04:05.000Z")})
	}
	if k.TraceParent != "" {
		hs = append(hs, header{"traceparent", k.TraceParent})
	}
	return hs
}

// Label is the arrow's text.
func (m message) Label() string {
	switch {
	case m.Dead != nil && m.Dead.Attempts != nil:
		return fmt.Sprintf("✕ %s (dead letter after %v attempt(s))", m.Type, m.Dead.Attempts)
	case m.Dead != nil:
		return "✕ " + m.Type + " (dead letter)"
	case m.Replayed:
		return "↻ " + m.Type + " (replayed)"
	default:
		return m.Type
	}
}

// sagaData is the One saga page.
type sagaData struct {
	ID          string
	Order       *order
	Waiting     waiting
	Messages    []message
	Diagram     diagram
	Gaps        []string // timelines that could not be read
	Invoice     *invoice
	InvoicePDF  string
	Emails      []notification
	EmailsURL   string
	Trace       *waterfall
	TraceNote   string
	JaegerOn    bool
	DeadLetters int
}

func (c *Console) sagaPage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := uuid.Parse(id); err != nil {
		c.render(w, http.StatusBadRequest, "saga", page{Title: "Saga", Nav: "sagas",
			Error: fmt.Sprintf("%q is not an order id (a UUID)", id), Data: sagaData{ID: id}})
		return
	}
	ctx := r.Context()
	d := sagaData{ID: id, JaegerOn: c.cfg.JaegerURL != ""}
	p := page{Title: "Saga " + short(id), Nav: "sagas"}
	var o order
	if err := c.getJSON(ctx, c.byName[orderService].URL+"/api/orders/"+id, &o); err == nil {
		d.Order, d.Waiting = &o, waitsFor(o.Status)
	} else if se := (*statusError)(nil); errors.As(err, &se) && se.code == http.StatusNotFound {
		p.Flash = "order-service does not know this order (yet); what the other services and the dead-letter queues hold is shown"
	} else {
		p.Error = "order-service: " + err.Error()
	}
	entries, gaps := c.timelines(ctx, id)
	d.Gaps = gaps
	dead := c.deadLettersOf(ctx, id)
	d.DeadLetters = len(dead)
	d.Messages = c.messages(entries, dead, c.replayedIDs())
	d.Diagram = drawDiagram(c.lanes(d.Messages), d.Messages)
	c.links(ctx, id, &d)
	c.trace(ctx, id, r.URL.Query().Get("trace"), &d)
	p.Data = d
	c.render(w, http.StatusOK, "saga", p)
}

// timelines reads every participant's timeline of order id, at once; gaps
// name those that could not be read.
func (c *Console) timelines(ctx context.Context, id string) ([]entry, []string) {
	// A service that hangs must not hold the page for long.
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		entries []entry
		gaps    []string
	)
	for _, s := range c.cfg.Services {
		if s.Timeline == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var t struct {
				Events []entry `json:"events"`
			}
			err := c.getJSON(ctx, s.URL+strings.Replace(s.Timeline, "{id}", id, 1), &t)
			mu.Lock()
			defer mu.Unlock()
			var se *statusError
			switch {
			case errors.As(err, &se) && se.code == http.StatusNotFound:
			case err != nil:
				gaps = append(gaps, fmt.Sprintf("%s: %v", s.Name, err))
			default:
				entries = append(entries, t.Events...)
			}
		}()
	}
	wg.Wait()
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].At.Before(entries[j].At) })
	sort.Strings(gaps)
	return entries, gaps
}

// deadLettersOf returns the dead letters of order id, by queue.
func (c *Console) deadLettersOf(ctx context.Context, id string) map[string][]ops.Message {
	out := map[string][]ops.Message{}
	qs, err := c.op.DLQ.List(ctx)
	if err != nil {
		return out
	}
	for _, q := range qs {
		if q.Messages == 0 {
			continue
		}
		p, err := c.op.DLQ.Show(ctx, q.Queue, c.cfg.ScanLimit)
		if err != nil {
			continue
		}
		for _, m := range p.Messages {
			if m.CorrelationID == id {
				out[q.Queue] = append(out[q.Queue], m)
			}
		}
	}
	return out
}

// replayedIDs are the message ids the audit log says were replayed.
func (c *Console) replayedIDs() map[string]bool {
	ids := map[string]bool{}
	entries, err := c.op.Audit.Recent(1000)
	if err != nil {
		return ids
	}
	for _, e := range entries {
		if e.Action == "replay" {
			for _, id := range e.MessageIDs {
				ids[id] = true
			}
		}
	}
	return ids
}

// consumersOf are the services whose queues take messages of type typ.
func consumersOf(typ string) []string {
	var out []string
	for _, s := range saga.Subscriptions() {
		if slices.Contains(s.Types, typ) && !slices.Contains(out, s.Consumer) {
			out = append(out, s.Consumer)
		}
	}
	return out
}

// consumerOfQueue is the consumer of work queue q, or of dead-letter queue
// q.dlq.
func consumerOfQueue(q string) string {
	q = strings.TrimSuffix(q, ".dlq")
	for _, s := range saga.Subscriptions() {
		if s.Queue == q {
			return s.Consumer
		}
	}
	return "?"
}

// sender is who publishes messages of type typ (saga.conf), or "operator"
// for a type outside the contract.
func sender(typ string) string {
	if p := saga.Publisher(events.ExchangeOf(typ)); p != "" {
		return p
	}
	return "operator"
}

// messages folds the timelines' entries and the dead letters into
// messages, in time order.
func (c *Console) messages(entries []entry, dead map[string][]ops.Message, replayed map[string]bool) []message {
	byID := map[string]*message{}
	var order []*message
	for _, e := range entries {
		m, ok := byID[e.MessageID]
		if !ok {
			m = &message{MessageID: e.MessageID, Type: e.Type, At: e.At, Replayed: replayed[e.MessageID]}
			byID[e.MessageID] = m
			order = append(order, m)
		}
		m.Entries = append(m.Entries, e)
		if e.Emitted() {
			m.From = e.Service
		} else if !slices.Contains(m.To, e.Service) {
			m.To = append(m.To, e.Service)
		}
		// The sender's copy first: it has what was published.
		if e.Kept != nil && (m.Kept == nil || e.Emitted()) {
			m.Kept = e.Kept
		}
	}
	for q, msgs := range dead {
		for _, d := range msgs {
			dm := d
			order = append(order, &message{MessageID: d.MessageID, Type: d.Type, From: sender(d.Type),
				To: []string{consumerOfQueue(q)}, At: ops.DeadAt(d), Dead: &dm, DeadQueue: q})
		}
	}
	for _, m := range order {
		if m.From == "" {
			m.From = sender(m.Type)
		}
		if m.Dead != nil {
			continue
		}
		for _, cons := range consumersOf(m.Type) {
			if s, ok := c.byName[cons]; ok && s.Timeline != "" && !slices.Contains(m.To, cons) {
				m.Missing = append(m.Missing, cons)
			}
		}
	}
	sort.SliceStable(order, func(i, j int) bool { return order[i].At.Before(order[j].At) })
	out := make([]message, len(order))
	for i, m := range order {
		m.Index = i
		out[i] = *m
	}
	return out
}

// lanes are the diagram's services: the configured ones that take part,
// then any other a message names.
func (c *Console) lanes(msgs []message) []string {
	seen := map[string]bool{}
	for _, m := range msgs {
		seen[m.From] = true
		for _, t := range append(slices.Clone(m.To), m.Missing...) {
			seen[t] = true
		}
	}
	var out []string
	for _, s := range c.cfg.Services {
		if s.Timeline != "" || seen[s.Name] {
			out = append(out, s.Name)
			delete(seen, s.Name)
		}
	}
	var rest []string
	for s := range seen {
		rest = append(rest, s)
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// invoice and notification are what invoice-service and
// notification-service answer (contract §6, §8), as far as shown.
type invoice struct {
	ID     string `json:"id"`
	Number string `json:"number"`
	Status string `json:"status"`
}

type notification struct {
	Kind    string `json:"kind"`
	To      string `json:"to"`
	Subject string `json:"subject"`
	Status  string `json:"status"`
}

// links finds the order's invoice and e-mails, when those services answer.
func (c *Console) links(ctx context.Context, id string, d *sagaData) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if base := c.cfg.InvoiceURL; base != "" {
		var inv invoice
		if c.getJSON(ctx, base+"/api/invoices/order/"+url.PathEscape(id), &inv) == nil && inv.ID != "" {
			d.Invoice = &inv
			d.InvoicePDF = base + "/api/invoices/" + url.PathEscape(inv.ID) + "/pdf"
		}
	}
	if base := c.cfg.NotificationURL; base != "" {
		var p struct {
			Data []notification `json:"data"`
		}
		u := base + "/api/notifications?orderId=" + url.QueryEscape(id)
		if c.getJSON(ctx, u, &p) == nil {
			d.Emails, d.EmailsURL = p.Data, u
		}
	}
}
