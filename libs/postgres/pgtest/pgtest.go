// Package pgtest gives a test a pool on a fresh database of its own
// (testinfra.Database), migrated as a service migrates its own. It is apart
// from testinfra so that the modules whose tests need only a vhost or a
// database URL do not depend on the migrations and their driver.
package pgtest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordersaga/ordersaga/db"
	"github.com/ordersaga/ordersaga/libs/postgres"
	"github.com/ordersaga/ordersaga/libs/testinfra"
)

// Pool connects to a fresh database (testinfra.Database) with at most maxConns
// connections and migrates it to schemas, in order, as a service does at
// start (db.Messaging() first for a participant). The pool is closed when
// the test ends, before the database is dropped.
func Pool(t testing.TB, maxConns int32, schemas ...db.Migrations) *pgxpool.Pool {
	t.Helper()
	url := testinfra.Database(t) // its own deadline: creating it may queue
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := postgres.Connect(ctx, url, maxConns)
	if err != nil {
		t.Fatalf("connect to the test database: %v", err)
	}
	t.Cleanup(pool.Close)
	if err := postgres.Migrate(ctx, pool, slog.New(slog.DiscardHandler), schemas...); err != nil {
		t.Fatalf("migrate the test database: %v", err)
	}
	return pool
}
