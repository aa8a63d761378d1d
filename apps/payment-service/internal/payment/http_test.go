package payment

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/web"
)

func TestStatsRoute(t *testing.T) {
	t.Parallel()
	s, pool := newService(t, Gateway{Limit: 1_000_000})
	e := web.NewEngine(slog.New(slog.DiscardHandler), prometheus.NewRegistry(), nil)
	Routes(e, s.Service)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)

	insert := func(t *testing.T, status string, amount int64) {
		t.Helper()
		_, err := pool.Exec(context.Background(), `INSERT INTO payments
			(id, order_id, user_id, amount, currency, payment_method, status, decide_at)
			VALUES ($1, $2, $3, $4, 'USD', 'tok_visa', $5, now())`,
			uuid.New(), uuid.New(), uuid.New(), amount, status)
		require.NoError(t, err)
	}
	type row struct {
		Status      string `json:"status"`
		Count       int64  `json:"count"`
		TotalAmount int64  `json:"totalAmount"`
	}
	stats := func(t *testing.T) map[string]row {
		t.Helper()
		resp, err := http.Get(srv.URL + "/api/payments/stats")
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "body %s", body)
		var st struct {
			ByStatus []row `json:"byStatus"`
		}
		require.NoError(t, json.Unmarshal(body, &st), "body %s", body)
		var order []string
		byStatus := map[string]row{}
		for _, r := range st.ByStatus {
			order = append(order, r.Status)
			byStatus[r.Status] = r
		}
		assert.Equal(t, Statuses, order, "every status, in a stable order")
		return byStatus
	}

	t.Run("empty", func(t *testing.T) {
		for _, r := range stats(t) {
			assert.Zero(t, r.Count, r.Status)
			assert.Zero(t, r.TotalAmount, r.Status)
		}
	})
	t.Run("sums", func(t *testing.T) {
		insert(t, StatusApproved, 1500)
		insert(t, StatusApproved, 2500)
		insert(t, StatusRefunded, 700)
		st := stats(t)
		assert.Equal(t, row{StatusApproved, 2, 4000}, st[StatusApproved])
		assert.Equal(t, row{StatusRefunded, 1, 700}, st[StatusRefunded])
		assert.Equal(t, row{StatusDeclined, 0, 0}, st[StatusDeclined])
	})
	t.Run("a sum beyond int64 saturates rather than fail the answer", func(t *testing.T) {
		insert(t, StatusDeclined, math.MaxInt64)
		insert(t, StatusDeclined, math.MaxInt64)
		st := stats(t)
		assert.Equal(t, row{StatusDeclined, 2, math.MaxInt64}, st[StatusDeclined])
		assert.Equal(t, row{StatusApproved, 2, 4000}, st[StatusApproved], "the other statuses are still exact")
	})
}
