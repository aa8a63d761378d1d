package inbox_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/db"
	"github.com/ordersaga/ordersaga/libs/inbox"
	"github.com/ordersaga/ordersaga/libs/postgres"
	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/testinfra"
)

func TestRedeliveryIsANoOpAndAFailureLeavesNoTrace(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := postgres.Connect(ctx, testinfra.Database(t), 4)
	require.NoError(t, err)
	defer pool.Close()
	require.NoError(t, postgres.Migrate(ctx, pool, slog.New(slog.NewTextHandler(io.Discard, nil)), db.Messaging()))
	_, err = pool.Exec(ctx, "CREATE TABLE effects (message_id text)")
	require.NoError(t, err)
	in := inbox.New(pool, prometheus.NewRegistry())

	d := rabbit.Delivery{MessageID: uuid.NewString(), Type: "order.created", CorrelationID: uuid.NewString(), Body: []byte(`{"total":5}`)}
	effect := func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO effects VALUES ($1)", d.MessageID)
		return err
	}
	effects := func() int {
		var n int
		require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM effects").Scan(&n))
		return n
	}

	boom := errors.New("boom")
	err = in.Once(ctx, "consumer-a", d, func(tx pgx.Tx) error {
		if err := effect(tx); err != nil {
			return err
		}
		return boom
	})
	require.ErrorIs(t, err, boom)
	assert.Zero(t, effects(), "a failed handler rolls back its effect")

	for range 3 {
		require.NoError(t, in.Once(ctx, "consumer-a", d, effect))
	}
	assert.Equal(t, 1, effects(), "a redelivered message has its effect once")

	require.NoError(t, in.Once(ctx, "consumer-b", d, effect))
	assert.Equal(t, 2, effects(), "another consumer handles the same message on its own")
}
