package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// jaeger is a Jaeger of the test's own, on free ports, keeping traces in
// memory.
type jaeger struct {
	OTLP  string // what the services export to
	Query string // the query API's base URL
}

// startJaeger runs the pinned Jaeger that scripts/ensure-tools.sh builds
// (once) with deploy/jaeger/local.yaml. Where it cannot be had the test is
// skipped, except under CI, where it fails.
func startJaeger(t *testing.T) jaeger {
	t.Helper()
	root, err := repoRoot()
	require.NoError(t, err)
	out, err := exec.Command(filepath.Join(root, "scripts/ensure-tools.sh"), "jaeger").Output()
	if err != nil {
		msg := fmt.Sprintf("jaeger not available (scripts/ensure-tools.sh jaeger): %v", err)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	ports := freePorts(t, 4)
	cmd := exec.Command(strings.TrimSpace(string(out)), "--config", filepath.Join(root, "deploy/jaeger/local.yaml"))
	cmd.Env = append(os.Environ(),
		fmt.Sprintf("JAEGER_OTLP_HTTP_PORT=%d", ports[0]), fmt.Sprintf("JAEGER_QUERY_PORT=%d", ports[1]),
		fmt.Sprintf("JAEGER_QUERY_GRPC_PORT=%d", ports[2]), fmt.Sprintf("JAEGER_HEALTH_PORT=%d", ports[3]))
	logs := &lockedWriter{buf: &bytes.Buffer{}}
	cmd.Stdout, cmd.Stderr = logs, logs
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	health := fmt.Sprintf("http://127.0.0.1:%d/status", ports[3])
	deadline := time.Now().Add(60 * time.Second)
	for {
		if resp, err := http.Get(health); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-done:
			t.Fatalf("jaeger exited during start-up:\n%s", logs.String())
		default:
		}
		require.True(t, time.Now().Before(deadline), "jaeger not ready after 60s:\n%s", logs.String())
		time.Sleep(100 * time.Millisecond)
	}
	return jaeger{OTLP: fmt.Sprintf("http://127.0.0.1:%d", ports[0]), Query: fmt.Sprintf("http://127.0.0.1:%d", ports[1])}
}

// A span as Jaeger's query API (/api/traces/{id}) gives it.
type jspan struct {
	TraceID       string `json:"traceID"`
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	ProcessID     string `json:"processID"`
	References    []struct {
		RefType string `json:"refType"`
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	Logs []struct {
		Fields []struct {
			Key   string `json:"key"`
			Value any    `json:"value"`
		} `json:"fields"`
	} `json:"logs"`
	Tags []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`
	service string
}

type jtrace struct {
	id    string
	spans map[string]*jspan // by span id
}

// events are the names of the span's events.
func (s *jspan) events() []string {
	var names []string
	for _, l := range s.Logs {
		for _, f := range l.Fields {
			if f.Key == "event" {
				names = append(names, fmt.Sprint(f.Value))
			}
		}
	}
	return names
}

// parent is the span s is a child of, "" for a root.
func (s *jspan) parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

// fetchTrace reads trace id from Jaeger, or returns nil if it has no such
// trace (yet).
func (j jaeger) fetchTrace(t testing.TB, id string) *jtrace {
	t.Helper()
	resp, err := http.Get(j.Query + "/api/traces/" + id)
	require.NoError(t, err)
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil
	}
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET /api/traces/%s", id)
	var body struct {
		Data []struct {
			Spans     []*jspan `json:"spans"`
			Processes map[string]struct {
				ServiceName string `json:"serviceName"`
			} `json:"processes"`
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	if len(body.Data) == 0 {
		return nil
	}
	tr := &jtrace{id: id, spans: map[string]*jspan{}}
	for _, d := range body.Data {
		for _, s := range d.Spans {
			s.service = d.Processes[s.ProcessID].ServiceName
			tr.spans[s.SpanID] = s
		}
	}
	return tr
}

// waitTrace reads trace id until ready says it is complete and no span's
// parent is still to arrive (spans are exported as they end, a parent
// often after its children), and returns it; it fails with what is
// missing after the deadline.
func (j jaeger) waitTrace(t testing.TB, id string, ready func(*jtrace) string) *jtrace {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		tr := j.fetchTrace(t, id)
		missing := "no trace"
		if tr != nil {
			if missing = ready(tr) + tr.orphans(); missing == "" {
				return tr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("trace %s incomplete after 45s: %s\n%s", id, missing, tr)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (tr *jtrace) String() string {
	if tr == nil {
		return "(none)"
	}
	var b strings.Builder
	for _, s := range tr.spans {
		fmt.Fprintf(&b, "  %s %-18s %-40s parent %-16s events %v\n", s.SpanID, s.service, s.OperationName, s.parent(), s.events())
	}
	return b.String()
}

// find returns the spans of service named op.
func (tr *jtrace) find(service, op string) []*jspan {
	var found []*jspan
	for _, s := range tr.spans {
		if s.service == service && s.OperationName == op {
			found = append(found, s)
		}
	}
	return found
}

// has reports what of want ("service: operation") the trace lacks.
func (tr *jtrace) lacks(want ...string) string {
	var missing []string
	for _, w := range want {
		service, op, _ := strings.Cut(w, ": ")
		if len(tr.find(service, op)) == 0 {
			missing = append(missing, w)
		}
	}
	return strings.Join(missing, ", ")
}

// orphans names the spans whose parent is not in the trace.
func (tr *jtrace) orphans() string {
	var names []string
	for _, s := range tr.spans {
		if p := s.parent(); p != "" && tr.spans[p] == nil {
			names = append(names, s.service+": "+s.OperationName)
		}
	}
	if len(names) == 0 {
		return ""
	}
	return "; orphans " + strings.Join(names, ", ")
}

// checkTree checks that every span is of trace tr.id, that exactly one is
// the root, and that every other's parent is in the trace: no orphan.
func checkTree(t testing.TB, tr *jtrace) {
	t.Helper()
	roots := 0
	for _, s := range tr.spans {
		assert.Equal(t, tr.id, s.TraceID, "span %s %s", s.service, s.OperationName)
		p := s.parent()
		if p == "" {
			roots++
			continue
		}
		assert.Contains(t, tr.spans, p, "orphan span %s %s (parent %s):\n%s", s.service, s.OperationName, p, tr)
	}
	assert.Equal(t, 1, roots, "one root span:\n%s", tr)
}

// parentOf returns the parent of s in tr, failing if it has none there.
func parentOf(t testing.TB, tr *jtrace, s *jspan) *jspan {
	t.Helper()
	p, ok := tr.spans[s.parent()]
	require.True(t, ok, "span %s %s has no parent in the trace:\n%s", s.service, s.OperationName, tr)
	return p
}

// crossesBroker checks that the consumer span of typ in service is the
// child of a publish span of typ in a service of from.
func crossesBroker(t testing.TB, tr *jtrace, service, typ string, from ...string) {
	t.Helper()
	consumers := tr.find(service, "process "+typ)
	require.NotEmpty(t, consumers, "%s processed %s:\n%s", service, typ, tr)
	for _, c := range consumers {
		p := parentOf(t, tr, c)
		assert.Equal(t, "publish "+typ, p.OperationName, "%s's process %s is the child of its publish:\n%s", service, typ, tr)
		assert.Contains(t, from, p.service, "%s published by %v:\n%s", typ, from, tr)
	}
}

// traceOf is the trace id of a traceparent header.
func traceOf(t testing.TB, traceparent string) string {
	t.Helper()
	parts := strings.Split(traceparent, "-")
	require.Len(t, parts, 4, "traceparent %q", traceparent)
	return parts[1]
}

func TestTracingOneSagaOneTrace(t *testing.T) {
	t.Parallel()
	j := startJaeger(t)
	s := Start(t, map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": j.OTLP,
		"OTEL_BSP_SCHEDULE_DELAY":     "100",
		// One retry, then the dead letter: the retry step below.
		"CONSUMER_MAX_ATTEMPTS": "2",
	})
	t.Run("paid", func(t *testing.T) { tracePaid(t, s, j) })
	t.Run("cancelled after payment", func(t *testing.T) { traceCancelled(t, s, j) })
	t.Run("retried, dead-lettered, replayed", func(t *testing.T) { traceReplayed(t, s, j) })
}

// post places an order and returns its id and the response's traceparent.
func post(t *testing.T, s *System) (string, string) {
	t.Helper()
	resp, err := s.API.CreateOrderWithResponse(context.Background(), nil, totalOrder(uuid.NewString(), 100, ""))
	require.NoError(t, err)
	expect(t, resp.HTTPResponse, resp.Body, http.StatusAccepted)
	tp := resp.HTTPResponse.Header.Get("traceparent")
	require.NotEmpty(t, tp, "the gateway answers with the request's traceparent")
	return resp.JSON202.OrderId.String(), tp
}

func tracePaid(t *testing.T, s *System, j jaeger) {
	id, tp := post(t, s)
	s.waitStatus(t, id, "PAID")
	tr := j.waitTrace(t, traceOf(t, tp), func(tr *jtrace) string {
		return tr.lacks("gateway: POST /api/orders", "gateway: publish order.create.requested",
			"order-service: process order.create.requested", "order-service: publish order.created",
			"payment-service: process order.created", "payment-service: publish payment.approved",
			"order-service: process payment.approved", "order-service: publish order.paid",
			"inventory-service: process order.paid")
	})
	checkTree(t, tr)
	crossesBroker(t, tr, "order-service", "order.create.requested", "gateway")
	// Through the outbox: written by one process's unit of work, published
	// by its relay as a child of it, consumed by another.
	crossesBroker(t, tr, "payment-service", "order.created", "order-service")
	crossesBroker(t, tr, "order-service", "payment.approved", "payment-service")
	for _, pub := range tr.find("order-service", "publish order.created") {
		p := parentOf(t, tr, pub)
		for p.service == "order-service" && p.OperationName != "process order.create.requested" {
			p = parentOf(t, tr, p)
		}
		assert.Equal(t, "process order.create.requested", p.OperationName, "order.created descends from the command's handling")
	}
}

func traceCancelled(t *testing.T, s *System, j jaeger) {
	id, tp := post(t, s)
	s.waitStatus(t, id, "PAID")
	// The cancel joins the saga's trace: the client sends its traceparent
	// (raw: the header is what is tested).
	resp := s.Do(http.MethodPatch, "/api/orders/"+id+"/cancel", nil, map[string]string{"traceparent": tp}, nil)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "cancel")
	assert.Equal(t, traceOf(t, tp), traceOf(t, resp.Header.Get("traceparent")), "the cancel is in the saga's trace")
	s.waitPayment(t, id, paymentIs("REFUNDED"))
	tr := j.waitTrace(t, traceOf(t, tp), func(tr *jtrace) string {
		return tr.lacks("gateway: publish order.create.requested", "gateway: publish order.cancel.requested",
			"order-service: process order.cancel.requested", "order-service: publish order.cancelled",
			"payment-service: process order.cancelled", "payment-service: publish payment.refunded",
			"order-service: process payment.refunded")
	})
	checkTree(t, tr)
	crossesBroker(t, tr, "order-service", "order.cancel.requested", "gateway")
	crossesBroker(t, tr, "payment-service", "order.cancelled", "order-service")
	crossesBroker(t, tr, "order-service", "payment.refunded", "payment-service")
}

// traceReplayed forces an order's create command through a retry and the
// dead-letter queue (the orders table refuses every new row for a while),
// replays it with sagactl, and reads the three steps in the saga's trace.
func traceReplayed(t *testing.T, s *System, j jaeger) {
	ctx := context.Background()
	db, err := pgx.Connect(ctx, s.OrderDB)
	require.NoError(t, err)
	defer db.Close(ctx)
	_, err = db.Exec(ctx, `ALTER TABLE orders ADD CONSTRAINT e2e_refuse_all CHECK (false) NOT VALID`)
	require.NoError(t, err)
	defer db.Exec(ctx, `ALTER TABLE orders DROP CONSTRAINT IF EXISTS e2e_refuse_all`) //nolint:errcheck

	id, tp := post(t, s)
	trace := traceOf(t, tp)
	j.waitTrace(t, trace, func(tr *jtrace) string {
		for _, sp := range tr.find("order-service", "process order.create.requested") {
			if strings.Contains(strings.Join(sp.events(), ","), "dead-lettered") {
				return ""
			}
		}
		return "no dead-lettered attempt"
	})
	_, err = db.Exec(ctx, `ALTER TABLE orders DROP CONSTRAINT e2e_refuse_all`)
	require.NoError(t, err)

	demoBinary(t) // builds sagactl beside it
	cmd := exec.Command(filepath.Join(binDir, "sagactl"), "dlq", "replay", "order-service.commands.dlq", "--all")
	cmd.Env = append(os.Environ(), "AMQP_URL="+s.Broker.AMQPURL, "RABBITMQ_MGMT_URL="+s.Broker.ManagementURL,
		"OTEL_EXPORTER_OTLP_ENDPOINT="+j.OTLP)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "sagactl dlq replay: %s", out)
	s.waitStatus(t, id, "PAID")

	tr := j.waitTrace(t, trace, func(tr *jtrace) string {
		return tr.lacks("sagactl: replay order.create.requested", "order-service: publish order.created",
			"order-service: process payment.approved")
	})
	checkTree(t, tr)
	var events []string
	attempts := tr.find("order-service", "process order.create.requested")
	for _, a := range attempts {
		events = append(events, a.events()...)
	}
	assert.Len(t, attempts, 3, "the first attempt, its retry, the replayed one:\n%s", tr)
	assert.Subset(t, events, []string{"retry scheduled", "dead-lettered", "replayed from the dead-letter queue"}, "\n%s", tr)
	replay := tr.find("sagactl", "replay order.create.requested")[0]
	assert.Equal(t, "publish order.create.requested", parentOf(t, tr, replay).OperationName,
		"the replay continues from the dead letter's traceparent")
	for _, a := range attempts {
		if strings.Contains(strings.Join(a.events(), ","), "replayed") {
			assert.Equal(t, replay.SpanID, a.parent(), "the replayed attempt is the replay's child")
		}
	}
}
