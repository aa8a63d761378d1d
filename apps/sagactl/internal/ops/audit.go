package ops

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// AuditFile is the name of the audit log in the state directory.
const AuditFile = "audit.jsonl"

// AuditEntry is one operator action on the dead-letter queues: who did
// what, from where, and what came of it.
type AuditEntry struct {
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`  // the OS user of sagactl, or the console's remote address
	Via    string    `json:"via"`    // "sagactl" or "console"
	Action string    `json:"action"` // replay, replay-dry-run, purge
	Queue  string    `json:"queue"`
	Target string    `json:"target"` // the selection, for a replay
	Count  int       `json:"count"`  // messages replayed, would be, or purged
	// MessageIDs are the messages replayed (not those of a dry run).
	MessageIDs []string `json:"messageIds,omitempty"`
	Result     string   `json:"result"` // the summary, or the error
	OK         bool     `json:"ok"`
}

// Audit is the audit log: a JSON-lines file, one entry a line, appended to
// by sagactl and the console alike (each line is one write to a file opened
// for appending, so processes that share it do not interleave lines).
type Audit struct {
	path string
	mu   sync.Mutex
}

// OpenAudit returns the audit log of state directory dir, creating the
// directory when missing.
func OpenAudit(dir string) (*Audit, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return &Audit{path: filepath.Join(dir, AuditFile)}, nil
}

// Path is the file of the log.
func (a *Audit) Path() string { return a.path }

// Record appends e, stamped with the current time when it has none.
func (a *Audit) Record(e AuditEntry) error {
	if e.At.IsZero() {
		e.At = time.Now().UTC()
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	f, err := os.OpenFile(a.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		_ = f.Close()
		return fmt.Errorf("audit log %s: %w", a.path, err)
	}
	return f.Close()
}

// Recent returns the last n entries, the newest first. A line that is not
// an entry (a torn write) is skipped.
func (a *Audit) Recent(n int) ([]AuditEntry, error) {
	f, err := os.Open(a.path)
	if errors.Is(err, fs.ErrNotExist) {
		return []AuditEntry{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	defer f.Close()
	var all []AuditEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e AuditEntry
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			all = append(all, e)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("audit log %s: %w", a.path, err)
	}
	out := make([]AuditEntry, 0, n)
	for i := len(all) - 1; i >= 0 && len(out) < n; i-- {
		out = append(out, all[i])
	}
	return out, nil
}

// Operator runs the actions on dead letters that change something, each
// recorded in the audit log: sagactl's dlq commands and the console's
// buttons are both this code.
type Operator struct {
	DLQ   *DLQ
	Audit *Audit
	// Via names the tool in the audit log: "sagactl" or "console".
	Via string
}

// Replay replays as DLQ.Replay does, on behalf of actor, and records it.
func (o *Operator) Replay(ctx context.Context, actor, queue string, sel Selection, opt ReplayOptions) (ReplayResult, error) {
	res, err := o.DLQ.Replay(ctx, queue, sel, opt)
	e := AuditEntry{Actor: actor, Via: o.Via, Action: "replay", Queue: res.Queue, Target: sel.String(), Count: res.Replayed}
	if e.Queue == "" {
		e.Queue = queue
	}
	if opt.DryRun {
		e.Action = "replay-dry-run"
	} else {
		e.MessageIDs = res.IDs
	}
	return res, o.record(e, res.Summary(), err)
}

// Purge purges as DLQ.Purge does, on behalf of actor, and records it.
func (o *Operator) Purge(ctx context.Context, actor, queue string) (QueueCount, error) {
	qc, err := o.DLQ.Purge(ctx, queue)
	e := AuditEntry{Actor: actor, Via: o.Via, Action: "purge", Queue: qc.Queue, Target: "all messages", Count: qc.Messages}
	if e.Queue == "" {
		e.Queue = queue
	}
	return qc, o.record(e, fmt.Sprintf("purged %s from %s", countOf(qc.Messages), qc.Queue), err)
}

// record writes e with the summary of a success or the error of a
// failure, and returns err, joined with a failure to record.
func (o *Operator) record(e AuditEntry, summary string, err error) error {
	e.OK, e.Result = err == nil, summary
	if err != nil {
		e.Result = err.Error()
	}
	if aerr := o.Audit.Record(e); aerr != nil {
		return errors.Join(err, fmt.Errorf("the action is not in the audit log: %w", aerr))
	}
	return err
}
