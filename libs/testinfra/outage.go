package testinfra

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// AllowConnections opens or closes the database of dbURL to new
// connections and, when closing, ends the ones it has: a database outage
// that the test can end.
func AllowConnections(t testing.TB, dbURL string, allow bool) {
	t.Helper()
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		t.Errorf("parse database url: %v", err)
		return
	}
	admin(t, func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s ALLOW_CONNECTIONS %t", pgx.Identifier{cfg.Database}.Sanitize(), allow))
		return err
	})
	if !allow {
		TerminateBackends(t, dbURL)
	}
}

// TerminateBackends ends every connection to the databases of urls, as a
// database restart would, and returns how many it ended. It may be called
// from any goroutine.
func TerminateBackends(t testing.TB, urls ...string) int {
	t.Helper()
	total := 0
	admin(t, func(ctx context.Context, conn *pgx.Conn) error {
		for _, u := range urls {
			cfg, err := pgx.ParseConfig(u)
			if err != nil {
				return err
			}
			var n int
			if err := conn.QueryRow(ctx,
				"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
				cfg.Database).Scan(&n); err != nil {
				return err
			}
			total += n
		}
		return nil
	})
	return total
}

// admin runs fn on a connection to the test server's maintenance database.
func admin(t testing.TB, fn func(ctx context.Context, conn *pgx.Conn) error) {
	t.Helper()
	s, err := Find()
	if err != nil {
		t.Errorf("find test servers: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.PostgresURL)
	if err != nil {
		t.Errorf("connect to postgres: %v", err)
		return
	}
	defer conn.Close(ctx)
	if err := fn(ctx, conn); err != nil {
		t.Errorf("postgres admin: %v", err)
	}
}
