package console

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// serviceHealth is one service's readiness and outbox.
type serviceHealth struct {
	Name   string
	URL    string
	Ready  bool
	Status string  // the HTTP status, or the error
	Checks []check // /readyz's checks
	Outbox *outboxState
}

type outboxState struct {
	Backlog   float64
	OldestAge time.Duration
	Parked    float64
}

// queueRow is a work queue with its retry and dead-letter queues.
type queueRow struct {
	Name      string
	Messages  int
	Unacked   int
	Consumers int
	Retry     int // messages waiting in its retry queues
	Dead      int
	Missing   bool
}

type healthData struct {
	Services []serviceHealth
	Queues   []queueRow
	Others   []mgmtQueue // queues outside the saga's work/retry/.dlq pattern
	Error    string
}

// mgmtQueue is a queue as the management API lists it.
type mgmtQueue struct {
	Name      string `json:"name"`
	Messages  int    `json:"messages"`
	Unacked   int    `json:"messages_unacknowledged"`
	Consumers int    `json:"consumers"`
}

func (c *Console) healthPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 4*time.Second)
	defer cancel()
	d := healthData{Services: make([]serviceHealth, len(c.cfg.Services))}
	var wg sync.WaitGroup
	for i, s := range c.cfg.Services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.Services[i] = c.serviceHealth(ctx, s)
		}()
	}
	queues, others, err := c.queueRows(ctx)
	wg.Wait()
	d.Queues, d.Others = queues, others
	if err != nil {
		d.Error = err.Error()
	}
	c.render(w, http.StatusOK, "health", page{Title: "Health", Nav: "health", Data: d})
}

func (c *Console) serviceHealth(ctx context.Context, s Service) serviceHealth {
	h := serviceHealth{Name: s.Name, URL: s.URL}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/readyz", nil)
	resp, err := c.http.Do(req)
	if err != nil {
		h.Status = "unreachable: " + unwrapURL(err)
		return h
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	h.Ready, h.Status = resp.StatusCode == http.StatusOK, resp.Status
	var answer map[string]any
	if json.Unmarshal(body, &answer) == nil {
		h.Checks = checks(answer)
	}
	h.Outbox = c.outbox(ctx, s.URL)
	return h
}

// check is one line of a /readyz answer.
type check struct {
	Name, Value string
	OK          bool
}

// checks flattens a /readyz answer ({"status": ..., "checks": {...}}) into
// its checks, sorted by name; "status" is the service's dot.
func checks(answer map[string]any) []check {
	var out []check
	var add func(prefix string, m map[string]any)
	add = func(prefix string, m map[string]any) {
		for k, v := range m {
			if sub, ok := v.(map[string]any); ok {
				add(k, sub)
				continue
			}
			if prefix == "" && k == "status" {
				continue
			}
			val := fmt.Sprint(v)
			out = append(out, check{Name: k, Value: val, OK: val == "ok" || val == "ready" || val == "true"})
		}
	}
	add("", answer)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// unwrapURL is a transport error without its "Get URL:" prefix.
func unwrapURL(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// outbox reads a service's outbox gauges from its /metrics; nil when it
// has none (the gateway).
func (c *Console) outbox(ctx context.Context, base string) *outboxState {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	m := parseMetrics(resp.Body, "ordersaga_outbox_backlog_messages", "ordersaga_outbox_oldest_age_seconds",
		"ordersaga_outbox_parked_messages")
	backlog, ok := m["ordersaga_outbox_backlog_messages"]
	if !ok {
		return nil
	}
	return &outboxState{Backlog: backlog, Parked: m["ordersaga_outbox_parked_messages"],
		OldestAge: time.Duration(m["ordersaga_outbox_oldest_age_seconds"] * float64(time.Second))}
}

// parseMetrics reads the unlabelled samples of names out of Prometheus's
// text format, summing a name's series.
func parseMetrics(r io.Reader, names ...string) map[string]float64 {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, ok := strings.Cut(line, " ")
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
			_, rest, ok = strings.Cut(line, "} ")
		}
		if !ok || !want[name] {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		if err == nil {
			out[name] += v
		}
	}
	return out
}

// queueRows reads every queue of the vhost and folds each work queue's
// retry and dead-letter queues into its row.
func (c *Console) queueRows(ctx context.Context) ([]queueRow, []mgmtQueue, error) {
	var qs []mgmtQueue
	path := "/api/queues/" + url.PathEscape(c.cfg.VHost) + "?columns=name,messages,messages_unacknowledged,consumers"
	if err := c.mgmt.Do(ctx, http.MethodGet, path, nil, &qs); err != nil {
		return nil, nil, fmt.Errorf("management API: %w", err)
	}
	byName := map[string]mgmtQueue{}
	for _, q := range qs {
		byName[q.Name] = q
	}
	used := map[string]bool{}
	var rows []queueRow
	for _, q := range c.op.DLQ.Topology().Queues {
		w, ok := byName[q.Name]
		row := queueRow{Name: q.Name, Messages: w.Messages, Unacked: w.Unacked, Consumers: w.Consumers, Missing: !ok}
		used[q.Name] = true
		for name, rq := range byName {
			if strings.HasPrefix(name, q.Name+".retry.") {
				row.Retry += rq.Messages
				used[name] = true
			}
		}
		row.Dead = byName[q.Name+".dlq"].Messages
		used[q.Name+".dlq"] = true
		rows = append(rows, row)
	}
	var others []mgmtQueue
	for _, q := range qs {
		if !used[q.Name] {
			others = append(others, q)
		}
	}
	sort.Slice(others, func(i, j int) bool { return others[i].Name < others[j].Name })
	return rows, others, nil
}
