package compose

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/db"
	"github.com/ordersaga/ordersaga/libs/postgres"
	"github.com/ordersaga/ordersaga/libs/testinfra"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// applyInitSQL runs deploy/postgres/init.sql on the test server with every
// role and database name suffixed, and returns each database's URL as its
// owner connects to it (by database name: orders, payments). Everything is
// dropped when the test ends.
func applyInitSQL(t *testing.T) map[string]string {
	t.Helper()
	s := testinfra.Need(t)
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy/postgres/init.sql"))
	require.NoError(t, err)
	suffix := "_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:10]
	names := regexp.MustCompile(`\b(order_service|payment_service|orders|payments)\b`)
	var statements []string
	for _, stmt := range strings.Split(stripComments(string(raw)), ";") {
		if stmt = strings.TrimSpace(stmt); stmt != "" {
			statements = append(statements, names.ReplaceAllString(stmt, "${1}"+suffix))
		}
	}
	require.NotEmpty(t, statements)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, s.PostgresURL)
	require.NoError(t, err)
	defer admin.Close(ctx)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := pgx.Connect(ctx, s.PostgresURL)
		if err != nil {
			t.Errorf("clean up init.sql: %v", err)
			return
		}
		defer admin.Close(ctx)
		for _, stmt := range []string{"DROP DATABASE IF EXISTS orders%s WITH (FORCE)", "DROP DATABASE IF EXISTS payments%s WITH (FORCE)",
			"DROP ROLE IF EXISTS order_service%s", "DROP ROLE IF EXISTS payment_service%s"} {
			if _, err := admin.Exec(ctx, strings.ReplaceAll(stmt, "%s", suffix)); err != nil {
				t.Errorf("clean up init.sql: %v", err)
			}
		}
	})
	// One by one: CREATE DATABASE cannot run inside the implicit
	// transaction of a multi-statement string.
	for _, stmt := range statements {
		_, err := admin.Exec(ctx, stmt)
		require.NoError(t, err, "init.sql: %s", stmt)
	}

	passwords := map[string]string{}
	for _, m := range createRole.FindAllStringSubmatch(string(raw), -1) {
		passwords[m[1]] = m[2]
	}
	server, err := url.Parse(s.PostgresURL)
	require.NoError(t, err)
	urls := map[string]string{}
	for _, m := range createDB.FindAllStringSubmatch(string(raw), -1) {
		database, role := m[1], m[2]
		u := *server
		u.User = url.UserPassword(role+suffix, passwords[role])
		u.Path = "/" + database + suffix
		urls[database] = u.String()
	}
	return urls
}

func stripComments(sql string) string {
	var b strings.Builder
	for _, line := range strings.Split(sql, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

func repoRoot(t *testing.T) string {
	t.Helper()
	return filepath.Dir(load(t).ComposeFiles[0])
}

// TestDatabaseRolesOwnTheirDatabase applies init.sql (under throwaway
// names) and checks that each service's role applies its migrations in its
// own database and cannot connect to the other's. The local server may
// trust local connections, so passwords are not what this checks.
func TestDatabaseRolesOwnTheirDatabase(t *testing.T) {
	t.Parallel()
	urls := applyInitSQL(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	schemas := map[string]db.Migrations{"orders": db.Order(), "payments": db.Payment()}
	other := map[string]string{"orders": "payments", "payments": "orders"}
	for database, dbURL := range urls {
		pool, err := postgres.Connect(ctx, dbURL, 2)
		require.NoError(t, err, "the owner connects to %s", database)
		err = postgres.Migrate(ctx, pool, quiet, db.Messaging(), schemas[database])
		assert.NoError(t, err, "the owner of %s applies the service's migrations there", database)
		pool.Close()

		u, err := url.Parse(dbURL)
		require.NoError(t, err)
		u.Path = strings.Replace(u.Path, database, other[database], 1)
		conn, err := pgx.Connect(ctx, u.String())
		if err == nil {
			conn.Close(ctx)
		}
		var pgErr *pgconn.PgError
		require.True(t, errors.As(err, &pgErr), "the owner of %s cannot connect to %s: %v", database, other[database], err)
		assert.Equal(t, "42501", pgErr.Code, "refused for lack of the CONNECT privilege: %v", err)
	}
}
