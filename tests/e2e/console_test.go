package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/gatewayclient"
	"github.com/ordersaga/ordersaga/saga"
)

// Console is sagactl console running against a System.
type Console struct {
	URL      string
	StateDir string
	log      *lockedWriter
}

// StartConsole runs `sagactl console` against s, with the operator's
// credentials: the test's vhost and management API, each service's own URL
// (never the machine's defaults, which others may use).
func StartConsole(t *testing.T, s *System) *Console {
	t.Helper()
	demoBinary(t) // builds sagactl beside the services
	ports := freePorts(t, 1)
	c := &Console{URL: fmt.Sprintf("http://127.0.0.1:%d", ports[0]), StateDir: t.TempDir(), log: &lockedWriter{buf: &bytes.Buffer{}}}
	cmd := exec.Command(filepath.Join(binDir, "sagactl"), "console", "--addr", fmt.Sprintf("127.0.0.1:%d", ports[0]))
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"AMQP_URL=" + s.Broker.AMQPURL,
		"RABBITMQ_MGMT_URL=" + s.Broker.ManagementURL,
		"SAGACTL_STATE_DIR=" + c.StateDir,
		"GATEWAY_URL=" + s.GatewayURL,
		"CONSOLE_STUCK_AFTER=1s",
	}
	for _, p := range saga.Participants() {
		cmd.Env = append(cmd.Env, p.URLVar()+"="+s.URL[p.Name])
	}
	cmd.Stdout, cmd.Stderr = c.log, c.log
	require.NoError(t, cmd.Start(), "start sagactl console")
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("sagactl console did not stop within 10s of SIGINT")
		}
		if t.Failed() {
			t.Logf("sagactl console log:\n%s", c.log.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(c.URL + "/static/console.css")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c
			}
		}
		select {
		case <-done:
			t.Fatalf("sagactl console exited:\n%s", c.log.String())
		default:
		}
		require.True(t, time.Now().Before(deadline), "console not up within 30s:\n%s", c.log.String())
		time.Sleep(50 * time.Millisecond)
	}
}

// Get fetches a console page and returns its status and body.
func (c *Console) Get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(c.URL + path)
	require.NoError(t, err, "GET %s", path)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// Post submits a console form and returns the page it leads to.
func (c *Console) Post(t *testing.T, path string, form url.Values) (int, string) {
	t.Helper()
	resp, err := http.PostForm(c.URL+path, form)
	require.NoError(t, err, "POST %s", path)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// eventually polls a console page until its body contains every one of
// want, or fails with the last body.
func (c *Console) eventually(t *testing.T, path string, within time.Duration, want ...string) string {
	t.Helper()
	end := time.Now().Add(within)
	for {
		code, body := c.Get(t, path)
		missing := ""
		for _, w := range want {
			if !strings.Contains(body, w) {
				missing = w
				break
			}
		}
		if code == http.StatusOK && missing == "" {
			return body
		}
		if time.Now().After(end) {
			t.Fatalf("GET %s: %q not there within %v (HTTP %d):\n%s", path, missing, within, code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// publish sends a message straight to an exchange, as a back-office tool
// would, and returns its message id.
func publish(t *testing.T, s *System, exchange, typ, orderID string, payload map[string]any) string {
	t.Helper()
	conn, err := amqp.Dial(s.Broker.AMQPURL)
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	require.NoError(t, ch.Confirm(false))
	body, err := json.Marshal(payload)
	require.NoError(t, err)
	id := uuid.NewString()
	dc, err := ch.PublishWithDeferredConfirm(exchange, typ, true, false, amqp.Publishing{
		ContentType: "application/json", DeliveryMode: amqp.Persistent, MessageId: id, Type: typ,
		CorrelationId: orderID, Timestamp: time.Now().UTC(), AppId: "e2e-backoffice", Body: body,
		Headers: amqp.Table{"x-schema-version": int32(1)},
	})
	require.NoError(t, err)
	ok, err := dc.WaitContext(context.Background())
	require.NoError(t, err)
	require.True(t, ok, "the broker confirmed %s", typ)
	return id
}

// poisonCancel publishes the cancel of an order that does not exist yet:
// order-service dead-letters it at once (permanent). It returns the order id
// and the cancel's message id.
func poisonCancel(t *testing.T, s *System) (string, string) {
	t.Helper()
	orderID := uuid.NewString()
	id := publish(t, s, events.ExchangeOrderCommands, events.TypeOrderCancelRequested, orderID,
		map[string]any{"orderId": orderID, "reason": "USER_REQUESTED"})
	return orderID, id
}

// createDirect publishes an order's create command, as the gateway does.
func createDirect(t *testing.T, s *System, orderID string) {
	t.Helper()
	publish(t, s, events.ExchangeOrderCommands, events.TypeOrderCreateRequested, orderID, map[string]any{
		"orderId": orderID, "userId": uuid.NewString(), "total": 4200, "currency": "USD", "paymentMethod": "tok_visa"})
}

// TestConsoleHandlers reads every page of the console against a running
// system, and replays a dead letter with a dry run first.
func TestConsoleHandlers(t *testing.T) {
	t.Parallel()
	s := Start(t, nil)
	c := StartConsole(t, s)

	id := s.createOrder(t, totalOrder(uuid.NewString(), 1234, ""), "")
	s.waitStatus(t, id, "PAID")
	body := c.eventually(t, "/sagas", 10*time.Second, id[len(id)-8:], "PAID", "12.34 USD")
	assert.Contains(t, body, `href="/static/console.css"`)
	_, body = c.Get(t, "/sagas?status=PENDING_PAYMENT")
	assert.NotContains(t, body, id, "filtered out by status")
	code, body := c.Get(t, "/sagas?status=NOPE&user=x&since=zz")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "unknown status")

	_, body = c.Get(t, "/sagas/"+id)
	for _, want := range []string{"order.create.requested", "order.created", "payment.approved", "order.paid",
		`class="lanename"`, "payment-service", "gateway"} {
		assert.Contains(t, body, want, "the saga page")
	}
	assert.Contains(t, body, `<details class="msgdetail" id="msg-0">`, "every message's details, without script")
	assert.Contains(t, body, "<th>exchange</th>", "with its headers")
	// notification-service's lane: the console reads its timeline, which
	// the gateway's merged one leaves out (saga.conf: unmerged).
	c.eventually(t, "/sagas/"+id, 20*time.Second, "invoice-service → notification-service")
	// The invoice, issued once the order is paid, is linked with its PDF.
	body = c.eventually(t, "/sagas/"+id, 20*time.Second, `<span class="label">Invoice</span>`)
	pdf := regexp.MustCompile(`href="(http://[^"]+/api/invoices/[^"/]+/pdf)"`).FindStringSubmatch(body)
	require.Len(t, pdf, 2, "the invoice's PDF link")
	if resp, err := http.Get(pdf[1]); assert.NoError(t, err) {
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, "the PDF link answers")
		assert.Equal(t, "application/pdf", resp.Header.Get("Content-Type"))
	}
	for _, e := range s.mustTimeline(t, id).Events {
		assert.NotEqual(t, "notification-service", string(e.Service), "the gateway does not merge notification-service's timeline")
	}
	code, _ = c.Get(t, "/sagas/not-a-uuid")
	assert.Equal(t, http.StatusBadRequest, code)

	_, body = c.Get(t, "/health")
	for _, p := range saga.Participants() {
		assert.Contains(t, body, p.Name)
	}
	assert.Contains(t, body, "order-service.commands")
	assert.Contains(t, body, "outbox backlog")

	orderID, msgID := poisonCancel(t, s)
	body = c.eventually(t, "/dlq", 20*time.Second, msgID, "order.cancel.requested")
	assert.Contains(t, body, "order-service.commands.dlq")
	_, body = c.Get(t, "/dlq/message?queue=order-service.commands.dlq&id="+msgID)
	assert.Contains(t, body, orderID)

	dry := url.Values{"queue": {"order-service.commands.dlq"}, "scope": {"message"}, "id": {msgID}, "dry_run": {"1"}}
	_, body = c.Post(t, "/dlq/replay", dry)
	assert.Contains(t, body, "dry run: would replay 1 message")
	assert.Contains(t, body, msgID, "still there after the dry run")

	createDirect(t, s, orderID)
	s.waitOrder(t, orderID, 30*time.Second, func(o gatewayclient.Order) bool { return o.Status != "" })
	_, body = c.Post(t, "/dlq/replay", url.Values{"queue": {"order-service.commands.dlq"}, "scope": {"message"}, "id": {msgID}})
	assert.Contains(t, body, "replayed 1 message from order-service.commands.dlq")
	s.waitStatus(t, orderID, "CANCELLED")
	assert.Contains(t, body, "replay-dry-run", "the audit log shows the dry run")

	_, body = c.Post(t, "/dlq/purge", url.Values{"queue": {"order-service.commands.dlq"}, "confirm": {"wrong"}})
	assert.Contains(t, body, "not purged")

	req, err := http.NewRequest(http.MethodPost, c.URL+"/dlq/purge", strings.NewReader("queue=order-service.commands.dlq&confirm=order-service.commands.dlq"))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://evil.example")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "a cross-origin form is refused")
}

// TestConsoleStream follows the live list: a new order arrives as an
// event carrying its row.
func TestConsoleStream(t *testing.T) {
	t.Parallel()
	s := Start(t, nil)
	c := StartConsole(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL+"/sagas/stream", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	var id string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	events := 0
	for sc.Scan() {
		line := sc.Text()
		if line != "event: rows" {
			continue
		}
		events++
		var data strings.Builder
		for sc.Scan() && sc.Text() != "" {
			data.WriteString(strings.TrimPrefix(sc.Text(), "data: "))
		}
		if events == 1 {
			id = s.createOrder(t, totalOrder(uuid.NewString(), 999, ""), "")
			continue
		}
		if strings.Contains(data.String(), `data-id="`+id+`"`) {
			return
		}
	}
	t.Fatalf("the stream ended (%v) before order %s appeared in it", sc.Err(), id)
}
