package compose

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
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
	"github.com/ordersaga/ordersaga/saga"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// initScript creates each participant's role and database in the
// postgres container (docker-entrypoint-initdb.d), from saga/saga.conf.
const initScript = "deploy/postgres/init.sh"

// applyInitScript runs deploy/postgres/init.sh with psql on the test server,
// every role and database name suffixed (ORDERSAGA_NAME_SUFFIX), and
// returns the suffix. Everything is dropped when the test ends.
func applyInitScript(t *testing.T) string {
	t.Helper()
	s := testinfra.Need(t)
	_, err := exec.LookPath("psql")
	require.NoError(t, err, "the init script runs psql (make infra installs it)")
	server, err := url.Parse(s.PostgresURL)
	require.NoError(t, err)
	suffix := "_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:10]

	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := pgx.Connect(ctx, s.PostgresURL)
		if err != nil {
			t.Errorf("clean up %s: %v", initScript, err)
			return
		}
		defer admin.Close(ctx)
		for _, p := range saga.Participants() {
			for _, stmt := range []string{"DROP DATABASE IF EXISTS " + p.Database + suffix + " WITH (FORCE)", "DROP ROLE IF EXISTS " + role(p) + suffix} {
				if _, err := admin.Exec(ctx, stmt); err != nil {
					t.Errorf("clean up %s: %v", initScript, err)
				}
			}
		}
	})
	password, _ := server.User.Password()
	cmd := exec.Command("sh", filepath.Join(repoRoot(t), initScript))
	cmd.Env = append(os.Environ(),
		"SAGA_CONF="+filepath.Join(repoRoot(t), "saga/saga.conf"),
		"ORDERSAGA_NAME_SUFFIX="+suffix,
		"PGHOST="+server.Hostname(), "PGPORT="+server.Port(), "PGPASSWORD="+password,
		"POSTGRES_USER="+server.User.Username(), "POSTGRES_DB="+strings.TrimPrefix(server.Path, "/"))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s: %s", initScript, out)
	return suffix
}

// role is participant p's database role (deploy/postgres/init.sh).
func role(p saga.Participant) string { return strings.ReplaceAll(p.Name, "-", "_") }

// scramMatches says whether verifier, a role's SCRAM-SHA-256 secret from
// pg_authid, is that of password (RFC 5802: StoredKey = H(HMAC(SaltedPassword,
// "Client Key"))). The local server may trust local connections, so a
// password is checked here rather than by logging in.
func scramMatches(t *testing.T, verifier, password string) bool {
	t.Helper()
	var iterations int
	var salt, stored, server string
	_, err := fmt.Sscanf(strings.NewReplacer("$", " ", ":", " ").Replace(verifier), "SCRAM-SHA-256 %d %s %s %s", &iterations, &salt, &stored, &server)
	require.NoError(t, err, "a SCRAM-SHA-256 secret: %q", verifier)
	rawSalt, err := base64.StdEncoding.DecodeString(salt)
	require.NoError(t, err)
	salted, err := pbkdf2.Key(sha256.New, password, rawSalt, iterations, sha256.Size)
	require.NoError(t, err)
	mac := hmac.New(sha256.New, salted)
	mac.Write([]byte("Client Key"))
	want := sha256.Sum256(mac.Sum(nil))
	return base64.StdEncoding.EncodeToString(want[:]) == stored
}

func repoRoot(t *testing.T) string {
	t.Helper()
	return filepath.Dir(load(t).ComposeFiles[0])
}

// TestDatabaseRolesOwnTheirDatabase runs the init script (under throwaway
// names) and checks that each participant's role is the one its compose
// DATABASE_URL names, with that password, that it applies migrations in its
// own database, and that it cannot connect to another participant's.
func TestDatabaseRolesOwnTheirDatabase(t *testing.T) {
	t.Parallel()
	ps := saga.Participants()
	require.GreaterOrEqual(t, len(ps), 2, "two participants to keep apart")
	suffix := applyInitScript(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := testinfra.Need(t)
	admin, err := pgx.Connect(ctx, s.PostgresURL)
	require.NoError(t, err)
	defer admin.Close(ctx)
	server, err := url.Parse(s.PostgresURL)
	require.NoError(t, err)
	compose := load(t)

	for i, p := range ps {
		service, err := compose.GetService(p.Name)
		require.NoError(t, err)
		want, err := url.Parse(*service.Environment["DATABASE_URL"])
		require.NoError(t, err)
		password, _ := want.User.Password()
		require.Equal(t, role(p), want.User.Username(), "%s connects as its role", p.Name)

		var owner, verifier string
		err = admin.QueryRow(ctx, `SELECT pg_get_userbyid(d.datdba), coalesce(a.rolpassword, '')
			FROM pg_database d JOIN pg_authid a ON a.rolname = $2 WHERE d.datname = $1`,
			p.Database+suffix, role(p)+suffix).Scan(&owner, &verifier)
		require.NoError(t, err, "the script created database %s and role %s", p.Database, role(p))
		assert.Equal(t, role(p)+suffix, owner, "%s owns %s", role(p), p.Database)
		assert.True(t, scramMatches(t, verifier, password), "%s's role has the password of its DATABASE_URL", p.Name)
		assert.False(t, scramMatches(t, verifier, password+"x"), "the password check can fail")

		u := *server
		u.User = url.UserPassword(role(p)+suffix, password)
		u.Path = "/" + p.Database + suffix
		pool, err := postgres.Connect(ctx, u.String(), 2)
		require.NoError(t, err, "the owner connects to %s", p.Database)
		err = postgres.Migrate(ctx, pool, quiet, db.Messaging())
		assert.NoError(t, err, "the owner of %s creates tables there", p.Database)
		pool.Close()

		other := ps[(i+1)%len(ps)].Database
		u.Path = "/" + other + suffix
		conn, err := pgx.Connect(ctx, u.String())
		if err == nil {
			conn.Close(ctx)
		}
		var pgErr *pgconn.PgError
		require.True(t, errors.As(err, &pgErr), "the owner of %s cannot connect to %s: %v", p.Database, other, err)
		assert.Equal(t, "42501", pgErr.Code, "refused for lack of the CONNECT privilege: %v", err)
	}
}
