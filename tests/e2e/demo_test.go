package e2e

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/gatewayclient"
	"github.com/ordersaga/ordersaga/saga"
)

var (
	demoOnce sync.Once
	demoErr  error
)

// demoBinary builds bin/demo and the sagactl it runs, race-enabled, next
// to the services, once per test binary.
func demoBinary(t testing.TB) string {
	t.Helper()
	demoOnce.Do(func() {
		root, err := repoRoot()
		if err != nil {
			demoErr = err
			return
		}
		cmd := exec.Command("go", "build", "-race", "-o", binDir+"/", "./apps/demo", "./apps/sagactl")
		cmd.Dir = root
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		demoErr = cmd.Run()
	})
	require.NoError(t, demoErr, "build demo and sagactl")
	return filepath.Join(binDir, "demo")
}

// runDemo runs bin/demo against s, as make demo does against the local
// system, with extra variables env, and returns its exit code and output.
func runDemo(t *testing.T, s *System, env ...string) (int, string) {
	t.Helper()
	bin := demoBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	// A minimal environment: nothing of the developer's may point the demo
	// elsewhere. SAGACTL is left to its default, the sagactl beside it.
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"GATEWAY_URL=" + s.GatewayURL,
		"AMQP_URL=" + s.Broker.AMQPURL,
		"RABBITMQ_MGMT_URL=" + s.Broker.ManagementURL,
		// sagactl's audit log of the demo's replay: the test's, not the repository's.
		"SAGACTL_STATE_DIR=" + t.TempDir(),
	}
	cmd.Env = append(cmd.Env, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if err != nil {
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "demo ran:\n%s", out.String())
		code = exit.ExitCode()
	}
	return code, out.String()
}

// demoUser is the user id the demo placed its orders for.
func demoUser(t *testing.T, out string) string {
	t.Helper()
	m := regexp.MustCompile(`every order belongs to user ([0-9a-f-]{36})`).FindStringSubmatch(out)
	require.NotNil(t, m, "the demo names its user:\n%s", out)
	return m[1]
}

// resultRow matches a row of the demo's results table.
func resultRow(scenario, orderStatus, reason, paymentStatus, result string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^  [0-9a-f]{8}\s+` + regexp.QuoteMeta(scenario) + `\s+.*\s` +
		orderStatus + `\s+` + regexp.QuoteMeta(reason) + `\s+` + paymentStatus + `\s+` + result + `$`)
}

// TestDemoWalkthrough runs the demo as make demo does (AUTH_MODE=required,
// an administrator it logs in as) and as against make run (AUTH_MODE=off):
// it must pass in both.
func TestDemoWalkthrough(t *testing.T) {
	t.Parallel()
	admin := []string{"ADMIN_EMAIL=" + adminEmail, "ADMIN_PASSWORD=" + adminPassword}
	cases := []struct {
		name     string
		authMode string
	}{
		{"auth required", "required"},
		{"auth off", "off"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// As make demo runs it: the latency makes the early cancel land
			// while the payment is being decided.
			s := Start(t, map[string]string{"PAYMENT_LATENCY": "1s", "AUTH_MODE": tc.authMode,
				"ADMIN_EMAIL": adminEmail, "ADMIN_PASSWORD": adminPassword})
			code, out := runDemo(t, s, admin...)
			require.Equal(t, 0, code, "demo exit code; output:\n%s", out)
			checkDemoOutput(t, s, out, tc.authMode == "required")
		})
	}
}

// checkDemoOutput checks what a passing demo printed, and what it claims
// against the system without it.
func checkDemoOutput(t *testing.T, s *System, out string, authRequired bool) {
	t.Helper()
	for _, row := range []*regexp.Regexp{
		resultRow("items-paid", "PAID", "-", "APPROVED", "OK"),
		resultRow("out-of-stock", "CANCELLED", "OUT_OF_STOCK", "none", "OK"),
		resultRow("items-cancel", "CANCELLED", "USER_REQUESTED", "REFUNDED", "OK"),
		resultRow("approved", "PAID", "-", "APPROVED", "OK"),
		resultRow("declined", "CANCELLED", "PAYMENT_DECLINED", "DECLINED", "OK"),
		resultRow("failed", "FAILED", "-", "FAILED", "OK"),
		resultRow("cancel-paid", "CANCELLED", "USER_REQUESTED", "REFUNDED", "OK"),
		resultRow("early-cancel", "CANCELLED", "USER_REQUESTED", "CANCELLED", "OK"),
		resultRow("dlq-replay", "CANCELLED", "USER_REQUESTED", "(CANCELLED|REFUNDED)", "OK"),
	} {
		assert.Regexp(t, row, out, "results table")
	}
	assert.Contains(t, out, "early-cancel: the cancel found the order PENDING_PAYMENT; its payment was CANCELLED")
	assert.Contains(t, out, "x-error-kind:     permanent")
	assert.Regexp(t, `x-error:\s+cancel order [0-9a-f-]{36}: order not found`, out, "the dead letter's reason")
	assert.Regexp(t, `(?m)^  \$ \S*sagactl dlq replay order-service.commands.dlq --id [0-9a-f-]{36}\n    replayed 1 message from order-service.commands.dlq to order-service.commands$`,
		out, "the replay, as the operator types it")
	// The paid order's lines, priced by the inventory, and the caps of the
	// cancelled one back on hand.
	assert.Regexp(t, `(?m)^    DEMO-MUG\s+× 2\s+at\s+12\.50 USD\s+=\s+25\.00 USD$`, out)
	assert.Regexp(t, `(?m)^    total\s+49\.00 USD$`, out)
	assert.Regexp(t, `(?m)^    before the order\s+onHand 1000, reserved 0, available 1000\n(    PAID.*\n)?    cancelled \(returned\)\s+onHand 1000, reserved 0, available 1000$`, out)
	assert.Contains(t, out, "✔ all 9 steps ended as the contract says")
	// Contract §6: the invoice of a paid order and where its PDF is; the
	// credit note of the one cancelled once paid.
	assert.Regexp(t, `INV-\d{4}-\d{6}\s+\S+ \S+\s+PDF: http://\S+/api/invoices/[0-9a-f-]{36}/pdf`, out, "an invoice and its PDF")
	assert.Regexp(t, `CN-\d{4}-\d{6}\s+credits INV-\d{4}-\d{6}\s+PDF: http://\S+/api/invoices/[0-9a-f-]{36}/credit-note/pdf`, out, "a credit note")
	token := ""
	if authRequired {
		assert.Regexp(t, `(?m)^  ✔ eve\s+GET\s+/api/orders/[0-9a-f]{8}\s+→ 404`, out, "another customer's order")
		assert.Regexp(t, `(?m)^  ✔ alice\s+GET\s+/api/payments/stats\s+→ 403`, out, "payment stats")
		token = s.login(t, adminEmail, adminPassword)
	} else {
		assert.Contains(t, out, "the gateway has AUTH_MODE=off")
	}

	// What the demo claims, checked without it: nine orders of its user,
	// the catalogue, and the replayed dead letter gone from the queue.
	limit, user := 100, uuidOf(t, demoUser(t, out))
	list, err := s.API.ListOrdersWithResponse(context.Background(), &gatewayclient.ListOrdersParams{Limit: &limit, UserId: &user}, gatewayclient.BearerAuth(token))
	require.NoError(t, err)
	expect(t, list.HTTPResponse, list.Body, http.StatusOK)
	statuses := map[string]int{}
	for _, o := range list.JSON200.Data {
		statuses[string(o.Status)]++
	}
	assert.Equal(t, map[string]int{"PAID": 2, "CANCELLED": 6, "FAILED": 1}, statuses, "the demo's orders")
	resp, err := s.API.GetProductWithResponse(context.Background(), "DEMO-MUG", gatewayclient.BearerAuth(token))
	require.NoError(t, err)
	expect(t, resp.HTTPResponse, resp.Body, http.StatusOK)
	mug := resp.JSON200
	assert.Equal(t, [5]any{"DEMO-MUG", int64(1250), "USD", int64(998), int64(998)},
		[5]any{mug.Sku, mug.Price, mug.Currency, mug.OnHand, mug.Available}, "two mugs sold")
	conn, err := amqp.Dial(s.Broker.AMQPURL)
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	q, err := ch.QueueDeclarePassive(events.DeadLetterQueue(saga.QueueOrderCommands), true, false, false, false, nil)
	require.NoError(t, err)
	assert.Equal(t, 0, q.Messages, "the replay took the dead letter out of its queue")
}

// TestDemoFailsWhenTheContractIsNotMet runs the demo against a system
// whose payment limit declines every demo order that should be paid: it
// must say which steps failed and exit non-zero, without waiting for its
// deadlines.
func TestDemoFailsWhenTheContractIsNotMet(t *testing.T) {
	t.Parallel()
	s := Start(t, map[string]string{"PAYMENT_LATENCY": "1s", "PAYMENT_LIMIT": "100"})
	start := time.Now()
	code, out := runDemo(t, s)
	assert.Equal(t, 1, code, "demo exit code; output:\n%s", out)
	assert.Regexp(t, resultRow("approved", "CANCELLED", "PAYMENT_DECLINED", "DECLINED", "FAIL"), out)
	assert.Regexp(t, resultRow("cancel-paid", "CANCELLED", "PAYMENT_DECLINED", "DECLINED", "FAIL"), out)
	assert.Regexp(t, resultRow("declined", "CANCELLED", "PAYMENT_DECLINED", "DECLINED", "OK"), out)
	assert.Contains(t, out, "approved: FAIL: ended CANCELLED (PAYMENT_DECLINED) · payment DECLINED, expected PAID · APPROVED")
	// The dead-letter order is declined too if its replay comes after the
	// payment's decision: allowed, not asserted.
	assert.Regexp(t, resultRow("items-paid", "CANCELLED", "PAYMENT_DECLINED", "DECLINED", "FAIL"), out)
	assert.Regexp(t, resultRow("out-of-stock", "CANCELLED", "OUT_OF_STOCK", "none", "OK"), out)
	assert.Regexp(t, `(?m)^demo: [45] of 9 steps did not end as the contract says: items-paid, items-cancel, approved, cancel-paid(, dlq-replay)?$`, out)
	assert.Less(t, time.Since(start), 45*time.Second, "a saga that settled wrong fails at once, not at the deadline")
}
