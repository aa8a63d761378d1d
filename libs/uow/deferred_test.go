package uow_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/uow"
)

// trips counts what a pool sends to the server: each query or batch is one
// round trip.
type trips struct{ queries, batches atomic.Int64 }

func (c *trips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.queries.Add(1)
	return ctx
}
func (c *trips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (c *trips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.batches.Add(1)
	return ctx
}
func (c *trips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (c *trips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

func (c *trips) reset()      { c.queries.Store(0); c.batches.Store(0) }
func (c *trips) sent() int64 { return c.queries.Load() + c.batches.Load() }

// traced returns a runner over a second pool on setup's database whose
// round trips are counted.
func traced(t *testing.T) (*pgxpool.Pool, *uow.Runner, *trips) {
	t.Helper()
	pool, _, _ := setup(t, "n int PRIMARY KEY")
	cfg, err := pgxpool.ParseConfig(pool.Config().ConnString())
	require.NoError(t, err)
	c := &trips{}
	cfg.ConnConfig.Tracer = c
	tpool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(tpool.Close)
	return pool, uow.NewRunner(tpool, nil, prometheus.NewRegistry()), c
}

func TestDeferredSendsItsStatementsWithTheNextQueryInOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, r, c := traced(t)
	require.NoError(t, r.InTx(ctx, func(ctx context.Context, tx *uow.Tx) error {
		c.reset()
		d := tx.Deferred()
		for _, sql := range []string{"INSERT INTO effects VALUES (1)", "UPDATE effects SET n = 2 WHERE n = 1", "INSERT INTO effects VALUES (3)"} {
			_, err := d.Exec(ctx, sql)
			require.NoError(t, err)
		}
		assert.Zero(t, c.sent(), "held back")
		// A :many query sees them, in the order they were issued, in one
		// round trip with them.
		rows, err := d.Query(ctx, "SELECT n FROM effects ORDER BY n")
		require.NoError(t, err)
		ns, err := pgx.CollectRows(rows, pgx.RowTo[int])
		require.NoError(t, err)
		assert.Equal(t, []int{2, 3}, ns)
		assert.Equal(t, int64(1), c.sent())
		// The transaction is usable again, and nothing is held back now.
		var n int
		require.NoError(t, tx.QueryRow(ctx, "SELECT count(*) FROM effects").Scan(&n))
		assert.Equal(t, 2, n)
		assert.Equal(t, int64(1), c.queries.Load())

		// A :one query and an Exec of the Tx take what is held back too.
		_, _ = d.Exec(ctx, "INSERT INTO effects VALUES (4)")
		require.NoError(t, d.QueryRow(ctx, "SELECT n FROM effects WHERE n = 4").Scan(&n))
		assert.Equal(t, 4, n)
		_, _ = d.Exec(ctx, "INSERT INTO effects VALUES (5)")
		tag, err := tx.Exec(ctx, "DELETE FROM effects WHERE n >= 4")
		require.NoError(t, err)
		assert.Equal(t, int64(2), tag.RowsAffected(), "the Tx's own Exec returns its real result")
		assert.Equal(t, int64(3), c.batches.Load())

		// No row, with statements held back, is pgx.ErrNoRows as without.
		_, _ = d.Exec(ctx, "INSERT INTO effects VALUES (6)")
		err = d.QueryRow(ctx, "SELECT n FROM effects WHERE n = 99").Scan(&n)
		assert.ErrorIs(t, err, pgx.ErrNoRows)
		// Held back at the end: sent before the commit.
		_, _ = d.Exec(ctx, "INSERT INTO effects VALUES (7)")
		return nil
	}))
	assert.Equal(t, 4, count(t, pool, "SELECT count(*) FROM effects"), "2, 3, 6 and 7 committed")
	assert.Equal(t, 1, count(t, pool, "SELECT count(*) FROM effects WHERE n = 7"))
}

func TestDeferredStatementErrorFailsTheStatementItWasSentWith(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, r, _ := traced(t)
	_, err := pool.Exec(ctx, "INSERT INTO effects VALUES (1)")
	require.NoError(t, err)

	// With a query: the query returns the held-back statement's error.
	err = r.InTx(ctx, func(ctx context.Context, tx *uow.Tx) error {
		d := tx.Deferred()
		_, _ = d.Exec(ctx, "INSERT INTO effects VALUES (2)")
		_, _ = d.Exec(ctx, "INSERT INTO effects VALUES (1)") // duplicate key
		var n int
		return d.QueryRow(ctx, "SELECT count(*) FROM effects").Scan(&n)
	})
	require.ErrorContains(t, err, "deferred statement 2 of 2")
	require.ErrorContains(t, err, "duplicate key")

	// Held back to the end: the commit does not happen.
	err = r.InTx(ctx, func(ctx context.Context, tx *uow.Tx) error {
		d := tx.Deferred()
		_, _ = d.Exec(ctx, "INSERT INTO effects VALUES (3)")
		_, _ = d.Exec(ctx, "INSERT INTO effects VALUES (1)")
		return nil
	})
	require.ErrorContains(t, err, "duplicate key")
	assert.Equal(t, 1, count(t, pool, "SELECT count(*) FROM effects"), "neither transaction wrote anything")
}

func TestDeferredIsDroppedWithTheTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, r, c := traced(t)
	c.reset()
	err := r.InTx(ctx, func(ctx context.Context, tx *uow.Tx) error {
		_, _ = tx.Deferred().Exec(ctx, "INSERT INTO effects VALUES (1)")
		return assert.AnError
	})
	require.ErrorIs(t, err, assert.AnError)
	assert.Zero(t, c.batches.Load(), "a rolled-back transaction sends nothing it held back")
	assert.Zero(t, count(t, pool, "SELECT count(*) FROM effects"))
}
