package console

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"

	"github.com/ordersaga/ordersaga/apps/sagactl/internal/ops"
)

// auditShown is how many audit entries the Dead letters page shows.
const auditShown = 50

type dlqData struct {
	Scan      ops.Scan
	Audit     []ops.AuditEntry
	AuditPath string
	Rate      float64
	Result    *ops.ReplayResult
}

func (c *Console) dlqPage(w http.ResponseWriter, r *http.Request) {
	p := page{Title: "Dead letters", Nav: "dlq", Flash: r.URL.Query().Get("done"), Error: r.URL.Query().Get("failed")}
	d := dlqData{Rate: c.cfg.ReplayRate, AuditPath: c.op.Audit.Path()}
	scan, err := c.op.DLQ.Scan(r.Context(), c.cfg.ScanLimit)
	if err != nil {
		p.Error = join(p.Error, "dead-letter queues: "+err.Error())
	}
	d.Scan = scan
	audit, err := c.op.Audit.Recent(auditShown)
	if err != nil {
		p.Error = join(p.Error, err.Error())
	}
	d.Audit = audit
	p.Data = d
	c.render(w, http.StatusOK, "dlq", p)
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

type messageData struct {
	Queue   string
	Message ops.Message
	Body    string
}

func (c *Console) dlqMessagePage(w http.ResponseWriter, r *http.Request) {
	q, id := r.URL.Query().Get("queue"), r.URL.Query().Get("id")
	m, err := c.op.DLQ.Find(r.Context(), q, id, c.cfg.ScanLimit)
	if err != nil {
		status := http.StatusBadGateway
		if errors.Is(err, ops.ErrNotFound) || errors.Is(err, ops.ErrInvalid) {
			status = http.StatusNotFound
		}
		c.render(w, status, "message", page{Title: "Dead letter", Nav: "dlq", Error: err.Error(),
			Data: messageData{Queue: q}})
		return
	}
	c.render(w, http.StatusOK, "message", page{Title: "Dead letter " + short(id), Nav: "dlq",
		Data: messageData{Queue: q, Message: m, Body: pretty(m.Body)}})
}

// actor is who the audit log names for a console action: the address the
// request came from (the console has no accounts of its own; it is the
// operator's tool on the operator's machine).
func actor(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "console user at " + host
}

// dlqReplay replays what its form selects: scope "message" (queue, id),
// "group" (queue, type, fingerprint) or "all" (queue); dry_run=1 only says
// what would happen. The answer is the Dead letters page, with the outcome.
func (c *Console) dlqReplay(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	queue := r.PostForm.Get("queue")
	var sel ops.Selection
	switch r.PostForm.Get("scope") {
	case "message":
		sel.ID = r.PostForm.Get("id")
	case "group":
		sel.Type, sel.Fingerprint = r.PostForm.Get("type"), r.PostForm.Get("fingerprint")
	case "all":
		sel.All = true
	default:
		http.Error(w, "scope: want message, group or all", http.StatusBadRequest)
		return
	}
	opt := ops.ReplayOptions{DryRun: r.PostForm.Get("dry_run") == "1", Rate: c.cfg.ReplayRate}
	res, err := c.op.Replay(r.Context(), actor(r), queue, sel, opt)
	if err != nil {
		c.log.Warn("console replay failed", "queue", queue, "selection", sel.String(), "error", err)
		redirectDLQ(w, r, "", err.Error())
		return
	}
	c.log.Info("console replay", "queue", res.Queue, "selection", sel.String(), "dry_run", opt.DryRun, "count", res.Replayed)
	redirectDLQ(w, r, res.Summary(), "")
}

// dlqPurge purges a queue; the form must repeat the queue's name in
// confirm, as the operator typed it.
func (c *Console) dlqPurge(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	queue, confirm := r.PostForm.Get("queue"), r.PostForm.Get("confirm")
	if confirm != queue || queue == "" {
		redirectDLQ(w, r, "", fmt.Sprintf("not purged: type the queue's name (%s) to confirm", queue))
		return
	}
	qc, err := c.op.Purge(r.Context(), actor(r), queue)
	if err != nil {
		redirectDLQ(w, r, "", err.Error())
		return
	}
	c.log.Info("console purge", "queue", qc.Queue, "count", qc.Messages)
	redirectDLQ(w, r, "purged "+strconv.Itoa(qc.Messages)+" message(s) from "+qc.Queue, "")
}

// redirectDLQ answers a form with the Dead letters page (POST, redirect,
// GET), carrying the outcome.
func redirectDLQ(w http.ResponseWriter, r *http.Request, done, failed string) {
	q := url.Values{}
	if done != "" {
		q.Set("done", done)
	}
	if failed != "" {
		q.Set("failed", failed)
	}
	http.Redirect(w, r, "/dlq?"+q.Encode()+"#outcome", http.StatusSeeOther)
}
