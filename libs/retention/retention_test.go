package retention_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/db"
	"github.com/ordersaga/ordersaga/libs/postgres"
	"github.com/ordersaga/ordersaga/libs/retention"
	"github.com/ordersaga/ordersaga/libs/testinfra"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// deletes records how many rows each DELETE statement removed, and the
// last statement with its arguments, by table.
type deletes struct {
	mu   sync.Mutex
	rows map[string][]int64
	last map[string]pgx.TraceQueryStartData
}

type startKey struct{}

func (d *deletes) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, startKey{}, data)
}

func (d *deletes) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	start, _ := ctx.Value(startKey{}).(pgx.TraceQueryStartData)
	if data.Err != nil || !data.CommandTag.Delete() {
		return
	}
	table := "inbox"
	if strings.Contains(start.SQL, "DELETE FROM outbox") {
		table = "outbox"
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rows[table] = append(d.rows[table], data.CommandTag.RowsAffected())
	d.last[table] = start
}

func (d *deletes) take() map[string][]int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	rows := d.rows
	d.rows = map[string][]int64{}
	return rows
}

// database returns a migrated database whose DELETE statements are traced.
func database(t testing.TB) (*pgxpool.Pool, *deletes) {
	t.Helper()
	url := testinfra.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	tr := &deletes{rows: map[string][]int64{}, last: map[string]pgx.TraceQueryStartData{}}
	cfg.ConnConfig.Tracer = tr
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, postgres.Migrate(ctx, pool, quiet, db.Messaging()))
	return pool, tr
}

type outboxRow struct {
	created   time.Duration // ago
	published *time.Duration
	parked    bool
}

func ago(d time.Duration) *time.Duration { return &d }

func addOutbox(t testing.TB, pool *pgxpool.Pool, r outboxRow) uuid.UUID {
	t.Helper()
	id := uuid.New()
	now := time.Now()
	var published, parked *time.Time
	if r.published != nil {
		at := now.Add(-*r.published)
		published = &at
	}
	if r.parked {
		parked = &now
	}
	_, err := pool.Exec(context.Background(), `INSERT INTO outbox
		(message_id, message_type, exchange, correlation_id, body, created_at, published_at, parked_at, park_reason)
		VALUES ($1, 'order.created', 'orders.events', $2, '{}', $3, $4, $5, CASE WHEN $5::timestamptz IS NULL THEN NULL ELSE 'test' END)`,
		id, uuid.NewString(), now.Add(-r.created), published, parked)
	require.NoError(t, err)
	return id
}

func addInbox(t testing.TB, pool *pgxpool.Pool, processed time.Duration) string {
	t.Helper()
	id := uuid.NewString()
	_, err := pool.Exec(context.Background(), `INSERT INTO inbox (consumer, message_id, message_type, correlation_id, processed_at)
		VALUES ('test.queue', $1, 'order.created', $1, $2)`, id, time.Now().Add(-processed))
	require.NoError(t, err)
	return id
}

func TestPruneDeletesOnlyOldPublishedAndHandledRowsInBoundedBatches(t *testing.T) {
	t.Parallel()
	pool, tr := database(t)
	ctx := context.Background()
	const keep, batch, old = time.Hour, 10, 25

	outboxCases := map[string]struct {
		row    outboxRow
		pruned bool
	}{
		"published before the retention":        {outboxRow{created: 3 * time.Hour, published: ago(2 * time.Hour)}, true},
		"published within the retention":        {outboxRow{created: time.Minute, published: ago(time.Minute)}, false},
		"written long ago, published within it": {outboxRow{created: 3 * time.Hour, published: ago(time.Minute)}, false},
		"written long ago, never published":     {outboxRow{created: 3 * time.Hour}, false},
		"written long ago, parked":              {outboxRow{created: 3 * time.Hour, parked: true}, false},
	}
	outboxIDs := map[string]uuid.UUID{}
	for name, tc := range outboxCases {
		outboxIDs[name] = addOutbox(t, pool, tc.row)
	}
	inboxCases := map[string]struct {
		processed time.Duration
		pruned    bool
	}{
		"handled before the retention": {2 * time.Hour, true},
		"handled within the retention": {time.Minute, false},
	}
	inboxIDs := map[string]string{}
	for name, tc := range inboxCases {
		inboxIDs[name] = addInbox(t, pool, tc.processed)
	}
	// Enough old rows for several batches.
	for range old - 1 {
		addOutbox(t, pool, outboxRow{created: 3 * time.Hour, published: ago(2 * time.Hour)})
		addInbox(t, pool, 2*time.Hour)
	}

	reg := prometheus.NewRegistry()
	p := retention.New(pool, keep, quiet, reg)
	p.Batch = batch
	tr.take()
	n, err := p.Prune(ctx)
	require.NoError(t, err)
	assert.Equal(t, retention.Pruned{Outbox: old, Inbox: old}, n)
	assert.Equal(t, map[string][]int64{"outbox": {10, 10, 5}, "inbox": {10, 10, 5}}, tr.take(),
		"rows deleted a batch per statement, until a batch comes back short")

	for name, tc := range outboxCases {
		var exists bool
		require.NoError(t, pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM outbox WHERE message_id = $1)", outboxIDs[name]).Scan(&exists))
		assert.Equal(t, !tc.pruned, exists, "outbox row %s kept", name)
	}
	for name, tc := range inboxCases {
		var exists bool
		require.NoError(t, pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM inbox WHERE message_id = $1)", inboxIDs[name]).Scan(&exists))
		assert.Equal(t, !tc.pruned, exists, "inbox row %s kept", name)
	}
	assert.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP ordersaga_messages_pruned_total Rows deleted because they were older than MESSAGE_RETENTION, by table (outbox: published messages, inbox: handled ones).
# TYPE ordersaga_messages_pruned_total counter
ordersaga_messages_pruned_total{table="inbox"} 25
ordersaga_messages_pruned_total{table="outbox"} 25
`), "ordersaga_messages_pruned_total"))

	n, err = p.Prune(ctx)
	require.NoError(t, err)
	assert.Equal(t, retention.Pruned{}, n, "nothing left to prune")
}

// The statements find old rows through the indexes, and delete them by
// their keys: they do not read the whole table, however large it grows.
func TestPruneStatementsUseTheIndexes(t *testing.T) {
	t.Parallel()
	for name, age := range map[string]string{
		"no row old":    "0s",
		"every row old": "2h",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pool, tr := database(t)
			ctx := context.Background()
			// Enough rows that the planner weighs a scan of the table.
			_, err := pool.Exec(ctx, `INSERT INTO outbox (message_id, message_type, exchange, correlation_id, body, published_at)
				SELECT gen_random_uuid(), 'order.created', 'orders.events', g::text, '{}', now() - $1::interval
				FROM generate_series(1, 20000) g`, age)
			require.NoError(t, err)
			_, err = pool.Exec(ctx, `INSERT INTO inbox (consumer, message_id, message_type, correlation_id, processed_at)
				SELECT 'q', g::text, 'order.created', g::text, now() - $1::interval FROM generate_series(1, 20000) g`, age)
			require.NoError(t, err)
			for _, table := range []string{"outbox", "inbox"} {
				_, err = pool.Exec(ctx, "ANALYZE "+table)
				require.NoError(t, err)
			}

			_, err = retention.New(pool, time.Hour, quiet, prometheus.NewRegistry()).Prune(ctx)
			require.NoError(t, err)
			for table, index := range map[string]string{"outbox": "outbox_published", "inbox": "inbox_processed"} {
				stmt, ok := tr.last[table]
				require.True(t, ok, "%s pruned", table)
				rows, err := pool.Query(ctx, "EXPLAIN "+stmt.SQL, stmt.Args...)
				require.NoError(t, err)
				lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
				require.NoError(t, err)
				plan := strings.Join(lines, "\n")
				assert.NotContains(t, plan, "Seq Scan", "%s: no scan of the whole table:\n%s", table, plan)
				assert.Contains(t, plan, "Index Scan using "+index+" ", "%s: old rows found through the index:\n%s", table, plan)
			}
		})
	}
}
