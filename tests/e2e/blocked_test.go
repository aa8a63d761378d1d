package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/gatewayclient"
)

// TestBrokerBlocked raises a real memory alarm on the system's own broker
// node. While it lasts every service reports the broker blocked, the
// gateway refuses commands at once (not after its confirm timeout) and none
// of them takes effect after the alarm; a saga in flight waits and ends
// once the alarm clears, and everything works again.
func TestBrokerBlocked(t *testing.T) {
	t.Parallel()
	// A confirm timeout longer than the clients' deadline below: a POST
	// that waited for a confirm could not answer in time.
	const publishTimeout = 2 * time.Minute
	const clientDeadline = 30 * time.Second
	s, node := StartPrivate(t, map[string]string{"PUBLISH_TIMEOUT": publishTimeout.String(), "PAYMENT_LATENCY": "1s"})
	services := map[string]string{"gateway": s.GatewayURL, "order-service": s.OrderURL, "payment-service": s.PaymentURL}

	paid := s.createOrder(t, totalOrder(uuid.NewString(), 100, ""), "")
	s.waitStatus(t, paid, "PAID")
	// Paid one second after its command: its payment events are published
	// while the alarm lasts, so their outbox rows wait for it to clear.
	inFlight := s.createOrder(t, totalOrder(uuid.NewString(), 200, ""), "")

	node.SetMemoryAlarm(t)
	alarmOn := true
	t.Cleanup(func() {
		if alarmOn {
			node.ClearMemoryAlarm(t)
		}
	})
	for name, url := range services {
		require.Eventually(t, func() bool {
			status, checks := readiness(t, url)
			return status == http.StatusServiceUnavailable && checks["broker"] == "blocked: low on memory"
		}, 30*time.Second, 50*time.Millisecond, "%s reports the broker blocked", name)
	}

	refusedUser := uuid.NewString()
	for i := range 10 {
		status, body := request(t, clientDeadline, http.MethodPost, s.GatewayURL+"/api/orders",
			map[string]any{"userId": refusedUser, "total": 300 + i})
		assert.Equal(t, http.StatusServiceUnavailable, status, "POST %d during the alarm: %s", i, body)
		assert.Contains(t, body, `"status":503`, "POST %d: a problem document", i)
	}
	status, body := request(t, clientDeadline, http.MethodPatch, s.GatewayURL+"/api/orders/"+paid+"/cancel", nil)
	assert.Equal(t, http.StatusServiceUnavailable, status, "cancel during the alarm: %s", body)

	node.ClearMemoryAlarm(t)
	alarmOn = false
	for name, url := range services {
		require.Eventually(t, func() bool {
			status, _ := readiness(t, url)
			return status == http.StatusOK
		}, 30*time.Second, 50*time.Millisecond, "%s ready again once the alarm clears", name)
	}
	s.waitStatus(t, inFlight, "PAID")
	// A command sent after the alarm, by the same user, through the same
	// gateway connection: had a refused one been stored, it would have
	// been created before this one.
	marker := s.createOrder(t, totalOrder(refusedUser, 999, ""), "")
	s.waitStatus(t, marker, "PAID")
	limit, user := 100, uuidOf(t, refusedUser)
	var ids []string
	for _, o := range s.listOrders(t, gatewayclient.ListOrdersParams{Limit: &limit, UserId: &user}).Data {
		ids = append(ids, o.Id.String())
	}
	assert.Equal(t, []string{marker}, ids, "no command refused during the alarm took effect")
	s.waitStatus(t, paid, "PAID") // the refused cancel did not take effect either
}

// readiness is the status and checks of url's /readyz.
func readiness(t testing.TB, url string) (int, map[string]string) {
	t.Helper()
	resp, err := http.Get(url + "/readyz")
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var body struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body), "decode /readyz of %s", url)
	return resp.StatusCode, body.Checks
}

// request sends a JSON request that must be answered within deadline, and
// returns the status and body.
func request(t testing.TB, deadline time.Duration, method, url string, body any) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	var buf bytes.Buffer
	if body != nil {
		require.NoError(t, json.NewEncoder(&buf).Encode(body))
	}
	req, err := http.NewRequestWithContext(ctx, method, url, &buf)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err, "%s %s answered within %v", method, url, deadline)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(data)
}
