package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/gatewayclient"
)

// TestOrderEventStream follows one order over Server-Sent Events from its
// creation to its outcome; the stream closes by itself.
func TestOrderEventStream(t *testing.T) {
	t.Parallel()
	// The latency is the window in which the stream must open, to see
	// PENDING_PAYMENT before PAID: seconds, for a loaded machine.
	s := Start(t, map[string]string{"PAYMENT_LATENCY": "5s"})
	id := s.createOrder(t, totalOrder(uuid.NewString(), 1200, ""), "")
	s.waitStatus(t, id, "PENDING_PAYMENT")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.GatewayURL+"/api/orders/"+id+"/events", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))

	var statuses []string
	sc := bufio.NewScanner(resp.Body)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && event == "status":
			var o gatewayclient.Order
			require.NoError(t, json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &o))
			assert.Equal(t, id, o.Id.String())
			statuses = append(statuses, string(o.Status))
		}
	}
	require.NoError(t, sc.Err(), "the stream closed cleanly after the outcome")
	assert.Equal(t, []string{"PENDING_PAYMENT", "PAID"}, statuses)
}
