// Package postgres connects a service to its database: a pool that waits for
// the server at start-up, goose migrations, and transactions.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/ordersaga/ordersaga/db"
)

// Connect opens a pool on url and waits, until ctx ends, for the server to
// answer.
func Connect(ctx context.Context, url string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database pool: %w", err)
	}
	for {
		pingCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = pool.Ping(pingCtx)
		cancel()
		if err == nil {
			return pool, nil
		}
		select {
		case <-ctx.Done():
			pool.Close()
			return nil, fmt.Errorf("connect to database %s: %w", cfg.ConnConfig.Database, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Migrate applies every pending migration of each schema in order. A
// Postgres advisory lock makes instances that start together take turns.
func Migrate(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger, schemas ...db.Migrations) error {
	sqlDB := stdlib.OpenDBFromPool(pool)
	defer sqlDB.Close()
	for _, s := range schemas {
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return fmt.Errorf("migration lock: %w", err)
		}
		p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, s.FS,
			goose.WithTableName(s.Table), goose.WithSessionLocker(locker), goose.WithDisableGlobalRegistry(true))
		if err != nil {
			return fmt.Errorf("migrations %s: %w", s.Table, err)
		}
		results, err := p.Up(ctx)
		if err != nil {
			return fmt.Errorf("apply migrations %s: %w", s.Table, err)
		}
		for _, r := range results {
			log.Info("migration applied", "table", s.Table, "version", r.Source.Version, "file", r.Source.Path)
		}
	}
	// goose's SQL parser reads each file with a 4 MiB buffer of its own
	// (a sync.Pool): about 12 MiB of heap that is garbage once the
	// migrations are done, but that the runtime would hand back to the
	// system only gradually, adding that much to the service's resident
	// memory for its first minutes under load. One collection now, once
	// per start-up, returns it at once: two collections, as a pooled buffer
	// outlives the first in the pool's victim cache.
	runtime.GC()
	debug.FreeOSMemory()
	return nil
}

// IsNotFound reports whether err means a query found no row.
func IsNotFound(err error) bool { return errors.Is(err, pgx.ErrNoRows) }
