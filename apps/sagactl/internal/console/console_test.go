package console_test

import (
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/rabbit/mgmt"
	"github.com/ordersaga/ordersaga/libs/timeline/timelinetest"
	"github.com/ordersaga/ordersaga/saga"

	"github.com/ordersaga/ordersaga/apps/sagactl/internal/console"
	"github.com/ordersaga/ordersaga/apps/sagactl/internal/ops"
	"github.com/ordersaga/ordersaga/apps/sagactl/internal/ops/opstest"
)

// page is the console's Dead letters page as an opstest.FrontEnd: the
// suite's scenarios go through its forms.
type page struct {
	srv *httptest.Server
}

func (p page) Via() string { return "console" }

var groupRow = regexp.MustCompile(`data-group="([^"]+)" data-count="(\d+)"`)

func (p page) Groups(t *testing.T) map[string]int {
	body := p.get(t, "/dlq")
	out := map[string]int{}
	for _, m := range groupRow.FindAllStringSubmatch(body, -1) {
		n, _ := strconv.Atoi(m[2])
		out[m[1]] += n
	}
	return out
}

func (p page) Replay(t *testing.T, queue string, sel ops.Selection, dryRun bool) string {
	f := url.Values{"queue": {queue}}
	switch {
	case sel.All:
		f.Set("scope", "all")
	case sel.ID != "":
		f.Set("scope", "message")
		f.Set("id", sel.ID)
	default:
		f.Set("scope", "group")
		f.Set("type", sel.Type)
		f.Set("fingerprint", sel.Fingerprint)
	}
	if dryRun {
		f.Set("dry_run", "1")
	}
	return p.post(t, "/dlq/replay", f)
}

func (p page) Purge(t *testing.T, queue string) string {
	return p.post(t, "/dlq/purge", url.Values{"queue": {queue}, "confirm": {queue}})
}

func (p page) get(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get(p.srv.URL + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	return string(b)
}

func (p page) post(t *testing.T, path string, f url.Values) string {
	t.Helper()
	resp, err := http.PostForm(p.srv.URL+path, f)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "the page after the redirect: %s", b)
	return string(b)
}

// newConsole serves a console on env's vhost; order-service is nowhere
// (the Dead letters page does not need it).
func newConsole(t *testing.T, env opstest.Env) *httptest.Server {
	t.Helper()
	return newConsoleOf(t, env, console.Service{Name: "order-service", URL: "http://127.0.0.1:1"})
}

// newConsoleOf serves a console of services on env's vhost.
func newConsoleOf(t *testing.T, env opstest.Env, services ...console.Service) *httptest.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	conn, err := rabbit.Dial(ctx, env.Broker.AMQPURL, "sagactl", events.Topology{}, log)
	require.NoError(t, err)
	pub := rabbit.NewPublisher(conn, "sagactl", 5*time.Second)
	t.Cleanup(func() { _ = pub.Close(); _ = conn.Close() })
	api, err := mgmt.New(env.Broker.ManagementURL)
	require.NoError(t, err)
	audit, err := ops.OpenAudit(env.StateDir)
	require.NoError(t, err)
	uri, err := amqp.ParseURI(env.Broker.AMQPURL)
	require.NoError(t, err)
	vhost := uri.Vhost
	op := &ops.Operator{DLQ: ops.NewDLQ(conn, pub, api, vhost, saga.Topology()), Audit: audit, Via: "console"}
	c, err := console.New(console.Config{Services: services,
		VHost: vhost, StuckAfter: time.Minute, ReplayRate: 100}, op, api, log)
	require.NoError(t, err)
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)
	return srv
}

// TestDLQOperations runs the dead-letter suite sagactl's commands pass too.
func TestDLQOperations(t *testing.T) {
	t.Parallel()
	opstest.Run(t, func(t *testing.T, env opstest.Env) opstest.FrontEnd {
		return page{srv: newConsole(t, env)}
	})
}

func TestPagesSayWhatIsDown(t *testing.T) {
	t.Parallel()
	env := opstest.Env{Broker: opstest.VHost(t), StateDir: t.TempDir()}
	srv := newConsole(t, env)
	p := page{srv: srv}
	body := p.get(t, "/sagas")
	assert.Contains(t, body, "order-service:", "the order service is unreachable, and the page says so")
	body = p.get(t, "/stuck")
	assert.Contains(t, body, "order-service:")
	body = p.get(t, "/health")
	assert.Contains(t, body, "unreachable")

	resp, err := http.Get(srv.URL + "/sagas")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'self'", "nothing from another host")
	for _, asset := range []string{"/static/console.css", "/static/console.js", "/static/favicon.svg"} {
		resp, err := http.Get(srv.URL + asset)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, asset)
	}
}

// TestSagaPageShowsRetriesHeadersAndBodies draws the saga of a participant
// on a real database and broker whose handler failed a command twice
// (transiently) before it handled it: the arrow's receiver is marked with
// its retries, the details give the attempt and the last error, and every
// message, command or event, lists its headers and pretty-printed body.
func TestSagaPageShowsRetriesHeadersAndBodies(t *testing.T) {
	t.Parallel()
	s := timelinetest.Run(t, "order-service", 2)
	srv := newConsoleOf(t, opstest.Env{Broker: opstest.VHost(t), StateDir: t.TempDir()},
		console.Service{Name: "order-service", URL: s.URL, Timeline: timelinetest.Path})
	body := html.UnescapeString(page{srv: srv}.get(t, "/sagas/"+s.OrderID.String()))

	assert.Equal(t, 4, strings.Count(body, `<details class="msgdetail`), "a <details> per message: two commands, two events")
	assert.Contains(t, body, `class="retrymark"`, "the receiver's lane is marked")
	assert.Contains(t, body, ">↻ 2 retries</text>", "with the number of retries")
	assert.Equal(t, 1, strings.Count(body, "↻ 2 retries at order-service"), "only the retried message says so")
	assert.Contains(t, body, "order-service handled it at attempt 3, after 2 failed attempts (retry tiers); the last error: <span class=\"mono\">"+s.LastError,
		"the details give the attempt and the last error")

	for _, want := range []string{
		"<th>exchange</th><td class=\"mono\">" + events.ExchangeOrderCommands,
		"<th>exchange</th><td class=\"mono\">" + events.ExchangeOrderEvents,
		"<th>correlation_id</th><td class=\"mono\">" + s.OrderID.String(),
		"<th>" + rabbit.HeaderCausationID + "</th><td class=\"mono\">" + s.Retried.ID.String(),
		"<th>published at</th>",
		`"reason": "changed my mind"`, // the retried command's body, kept by its consumer's inbox
		`"reason": "really"`,
		`"previousStatus": "PENDING_PAYMENT"`, // an event's body, from its sender's outbox
	} {
		assert.Contains(t, body, want, "the headers and pretty-printed bodies")
	}
	assert.NotContains(t, body, "Not kept by any timeline read", "every message's body is shown")
}
