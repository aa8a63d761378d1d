package gateway_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/testinfra"
)

// TestBlockedBrokerRefusesCommandsAtOnce raises a real memory alarm on a
// private node: readiness reports the broker blocked and a command is
// refused with 503 at once, although the publish timeout is far longer than
// the client's deadline (do gives up after 20 s); once the alarm clears,
// commands are accepted again.
func TestBlockedBrokerRefusesCommandsAtOnce(t *testing.T) {
	t.Parallel()
	node := testinfra.StartRabbitNode(t)
	up := newFakeService(t, nil)
	h := startGatewayOn(t, node.Broker(), 5*time.Minute, up.URL, up.URL)
	post := func() (*http.Response, []byte) {
		body := `{"userId":"` + uuid.NewString() + `","total":100}`
		return do(t, h.URL, request{method: http.MethodPost, path: "/api/orders", body: strings.NewReader(body), headers: jsonHeaders()})
	}
	readiness := func() (int, map[string]string) {
		resp, body := do(t, h.URL, request{method: http.MethodGet, path: "/readyz"})
		var r struct {
			Checks map[string]string `json:"checks"`
		}
		require.NoError(t, json.Unmarshal(body, &r), "readiness body %s", body)
		return resp.StatusCode, r.Checks
	}

	resp, body := post()
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "accepted before the alarm: %s", body)

	node.SetMemoryAlarm(t)
	alarmOn := true
	t.Cleanup(func() {
		if alarmOn {
			node.ClearMemoryAlarm(t)
		}
	})
	require.Eventually(t, func() bool {
		status, checks := readiness()
		return status == http.StatusServiceUnavailable && checks["broker"] == "blocked: low on memory"
	}, 30*time.Second, 20*time.Millisecond, "readiness reports the broker blocked")

	for i := range 5 {
		resp, body := post()
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "POST %d during the alarm", i)
		assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
		var p problem
		require.NoError(t, json.Unmarshal(body, &p), "problem body %s", body)
		assert.Contains(t, p.Detail, "blocked", "the problem says why")
	}

	node.ClearMemoryAlarm(t)
	alarmOn = false
	require.Eventually(t, func() bool {
		status, _ := readiness()
		return status == http.StatusOK
	}, 30*time.Second, 20*time.Millisecond, "ready again once the alarm clears")
	resp, body = post()
	assert.Equal(t, http.StatusAccepted, resp.StatusCode, "accepted after the alarm: %s", body)
}
