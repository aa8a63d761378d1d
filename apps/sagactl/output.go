package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ordersaga/ordersaga/apps/sagactl/internal/ops"
	"github.com/ordersaga/ordersaga/libs/rabbit"
)

// maxBody is how much of a body show prints.
const maxBody = 2 << 10

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// replayOut is dlq replay --json's answer.
type replayOut struct {
	Queue     string `json:"queue"`
	WorkQueue string `json:"workQueue"`
	Replayed  int    `json:"replayed"`
	// DryRun: nothing was replayed; Replayed says how many would have been.
	DryRun bool `json:"dryRun"`
}

func replayJSON(r ops.ReplayResult) replayOut {
	return replayOut{Queue: r.Queue, WorkQueue: r.WorkQueue, Replayed: r.Replayed, DryRun: r.DryRun}
}

// purgeJSON is dlq purge --json's answer.
type purgeJSON struct {
	Queue  string `json:"queue"`
	Purged int    `json:"purged"`
}

// versionJSON is --version --json's answer.
type versionJSON struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Go      string `json:"go"`
}

// nonNil makes an empty list print as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func writeList(w io.Writer, qs []ops.QueueCount) error {
	if len(qs) == 0 {
		_, err := fmt.Fprintln(w, "no dead-letter queues (*.dlq) in this vhost")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "QUEUE\tMESSAGES")
	for _, q := range qs {
		fmt.Fprintf(tw, "%s\t%d\n", q.Queue, q.Messages)
	}
	return tw.Flush()
}

// body is a message body as show prints it.
type body struct {
	Text      string `json:"body"`
	Encoding  string `json:"bodyEncoding"` // text or base64
	Size      int    `json:"bodySize"`
	Truncated bool   `json:"bodyTruncated"`
}

// printable returns b as text when it is UTF-8, else in base64, cut to
// maxBody bytes (at a character boundary for text).
func printable(b []byte) body {
	out := body{Encoding: "text", Size: len(b), Truncated: len(b) > maxBody}
	if !utf8.Valid(b) {
		out.Encoding = "base64"
		out.Text = base64.StdEncoding.EncodeToString(b[:min(len(b), maxBody)])
		return out
	}
	cut := min(len(b), maxBody)
	for cut < len(b) && cut > 0 && !utf8.RuneStart(b[cut]) {
		cut--
	}
	out.Text = string(b[:cut])
	return out
}

// plain turns a header value into something JSON and text print readably:
// bytes as text (or base64), nested tables and arrays recursively.
func plain(v any) any {
	switch x := v.(type) {
	case []byte:
		if utf8.Valid(x) {
			return string(x)
		}
		return base64.StdEncoding.EncodeToString(x)
	case amqp.Table:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = plain(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = plain(e)
		}
		return s
	case time.Time:
		return x.UTC().Format(time.RFC3339)
	case amqp.Decimal:
		return fmt.Sprintf("%de-%d", x.Value, x.Scale)
	default:
		return v
	}
}

// text prints a header value: strings as they are, anything else as JSON.
func text(v any) string {
	v = plain(v)
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

type messageJSON struct {
	MessageID     string         `json:"messageId"`
	Type          string         `json:"type"`
	CorrelationID string         `json:"correlationId"`
	AppID         string         `json:"appId"`
	ContentType   string         `json:"contentType"`
	Timestamp     *time.Time     `json:"timestamp"`
	Redelivered   bool           `json:"redelivered"`
	ErrorKind     string         `json:"errorKind"`
	Error         string         `json:"error"`
	Attempts      any            `json:"attempts"`
	OriginalQueue string         `json:"originalQueue"`
	Headers       map[string]any `json:"headers"`
	body
}

type peekOut struct {
	Queue    string        `json:"queue"`
	Total    int           `json:"total"`
	Messages []messageJSON `json:"messages"`
}

func peekJSON(p ops.Peek) peekOut {
	out := peekOut{Queue: p.Queue, Total: p.Total, Messages: []messageJSON{}}
	for _, m := range p.Messages {
		mj := messageJSON{
			MessageID:     m.MessageID,
			Type:          m.Type,
			CorrelationID: m.CorrelationID,
			AppID:         m.AppID,
			ContentType:   m.ContentType,
			Redelivered:   m.Redelivered,
			ErrorKind:     m.ErrorKind,
			Error:         m.Error,
			Attempts:      plain(m.Attempts),
			OriginalQueue: m.OriginalQueue,
			Headers:       plain(m.Headers).(map[string]any),
			body:          printable(m.Body),
		}
		if !m.Timestamp.IsZero() {
			ts := m.Timestamp.UTC()
			mj.Timestamp = &ts
		}
		out.Messages = append(out.Messages, mj)
	}
	return out
}

func writePeek(w io.Writer, p ops.Peek) error {
	if len(p.Messages) == 0 {
		_, err := fmt.Fprintf(w, "%s is empty\n", p.Queue)
		return err
	}
	fmt.Fprintf(w, "%s: %s, the first %d shown (left in the queue)\n", p.Queue, messages(p.Total), len(p.Messages))
	for i, m := range p.Messages {
		fmt.Fprintf(w, "\n--- message %d of %d\n", i+1, len(p.Messages))
		tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
		field := func(name, value string) {
			if value == "" {
				value = "-"
			}
			fmt.Fprintf(tw, "%s:\t%s\n", name, value)
		}
		field("message_id", m.MessageID)
		field("type", m.Type)
		field("correlation_id", m.CorrelationID)
		field("app_id", m.AppID)
		ts := ""
		if !m.Timestamp.IsZero() {
			ts = m.Timestamp.UTC().Format(time.RFC3339)
		}
		field("timestamp", ts)
		field("content_type", m.ContentType)
		field(rabbit.HeaderErrorKind, m.ErrorKind)
		field(rabbit.HeaderError, m.Error)
		attempts := ""
		if m.Attempts != nil {
			attempts = text(m.Attempts)
		}
		field(rabbit.HeaderAttempts, attempts)
		field(rabbit.HeaderOriginalQueue, m.OriginalQueue)
		keys := make([]string, 0, len(m.Headers))
		for k := range m.Headers {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			field("header "+k, text(m.Headers[k]))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		b := printable(m.Body)
		desc := fmt.Sprintf("%d bytes", b.Size)
		if b.Encoding == "base64" {
			desc += ", not UTF-8, base64"
		}
		if b.Truncated {
			desc += fmt.Sprintf(", first %d shown", maxBody)
		}
		fmt.Fprintf(w, "body (%s):\n%s\n", desc, b.Text)
	}
	return nil
}

type topologyJSON struct {
	ops.Layout
	// Declared is set when the topology was declared on the broker, in VHost.
	Declared bool   `json:"declared"`
	VHost    string `json:"vhost,omitempty"`
	// Migrated lists the classic retry tiers --migrate moved (nil without it).
	Migrated []ops.Migration `json:"migrated,omitempty"`
}

func writeTopology(w io.Writer, t topologyJSON) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "EXCHANGE\tTYPE")
	for _, e := range t.Exchanges {
		fmt.Fprintf(tw, "%s\t%s\n", e.Name, e.Type)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "QUEUE\tROLE\tDETAIL")
	for _, q := range t.Queues {
		// Grouped by exchange: "orders.commands (order.create.requested, …)".
		var exchanges []string
		keys := map[string][]string{}
		for _, b := range q.Bindings {
			if _, ok := keys[b.Exchange]; !ok {
				exchanges = append(exchanges, b.Exchange)
			}
			keys[b.Exchange] = append(keys[b.Exchange], b.RoutingKey)
		}
		binds := make([]string, len(exchanges))
		for i, e := range exchanges {
			binds[i] = fmt.Sprintf("%s (%s)", e, strings.Join(keys[e], ", "))
		}
		fmt.Fprintf(tw, "%s\twork\tbound to %s\n", q.Name, strings.Join(binds, "; "))
		for _, r := range q.RetryQueues {
			fmt.Fprintf(tw, "%s\tretry\twaits %s, then back to %s\n", r.Name, r.Delay, q.Name)
		}
		fmt.Fprintf(tw, "%s\tdlq\tdead letters of %s\n", q.DeadLetterQueue, q.Name)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if t.Declared {
		if _, err := fmt.Fprintf(w, "\ndeclared on the broker, vhost %q\n", t.VHost); err != nil {
			return err
		}
	}
	for _, m := range t.Migrated {
		state := "deleted"
		if !m.Deleted {
			state = "NOT deleted"
		}
		if _, err := fmt.Fprintf(w, "migrated %s -> %s: %s moved, %s\n", m.From, m.To, messages(m.Moved), state); err != nil {
			return err
		}
	}
	return nil
}

func writeGroups(w io.Writer, s ops.Scan) error {
	if len(s.Groups) == 0 {
		_, err := fmt.Fprintln(w, "no dead letters")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "QUEUE\tTYPE/FINGERPRINT\tCOUNT\tFIRST SEEN\tLAST SEEN\tREASON")
	for _, g := range s.Groups {
		fmt.Fprintf(tw, "%s\t%s/%s\t%d\t%s\t%s\t%s\n", g.Queue, g.Type, g.Fingerprint, g.Count,
			g.FirstSeen.UTC().Format(time.RFC3339), g.LastSeen.UTC().Format(time.RFC3339), g.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if s.Truncated {
		_, err := fmt.Fprintln(w, "(a queue holds more messages than were read: raise -n for exact counts)")
		return err
	}
	return nil
}

func writeAudit(w io.Writer, entries []ops.AuditEntry) error {
	if len(entries) == 0 {
		_, err := fmt.Fprintln(w, "the audit log is empty")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tVIA\tACTOR\tACTION\tQUEUE\tCOUNT\tOK\tRESULT")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%t\t%s\n", e.At.UTC().Format(time.RFC3339), e.Via, e.Actor,
			e.Action, e.Queue, e.Count, e.OK, e.Result)
	}
	return tw.Flush()
}
