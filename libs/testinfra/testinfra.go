// Package testinfra gives each test its own PostgreSQL database and its own
// RabbitMQ vhost on real servers, removed when the test ends. Servers come
// from TEST_DATABASE_URL, AMQP_URL and RABBITMQ_MGMT_URL (localhost by
// default). When none answers, a test binary that registered a container
// starter (UseContainers, as the tests module does through
// libs/testinfra/containers) starts them, unless the servers were configured
// or CI is set. Otherwise, when CI is set a missing server fails the test;
// elsewhere it skips it.
package testinfra

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ordersaga/ordersaga/libs/rabbit/mgmt"
)

// Servers are the addresses of the servers tests use.
type Servers struct {
	// PostgresURL is an administrative connection URL (any database).
	PostgresURL string
	// AMQPURL is the broker URL without a vhost.
	AMQPURL string
	// ManagementURL is the management API base URL with credentials.
	ManagementURL string
}

// Starter starts servers for the whole test binary and returns their
// addresses; it is called at most once, only when no configured server
// answers.
type Starter func(ctx context.Context) (Servers, error)

var (
	serversOnce sync.Once
	servers     Servers
	serversErr  error

	startMu sync.Mutex
	start   Starter
)

// UseContainers registers start as the way to get servers when none answers
// locally, the servers were not configured and CI is not set. Call it from
// TestMain, before any test asks for a server; the modules that do not call
// it never depend on a container library.
func UseContainers(s Starter) {
	startMu.Lock()
	defer startMu.Unlock()
	start = s
}

func starter() Starter {
	startMu.Lock()
	defer startMu.Unlock()
	return start
}

// Find returns the servers, starting them with the registered Starter where
// that is how to get them. The first failure is remembered for the whole
// test binary.
func Find() (Servers, error) {
	serversOnce.Do(func() { servers, serversErr = find(os.Getenv, localServers, starter()) })
	return servers, serversErr
}

// localServers are the servers tests use when none is configured.
var localServers = Servers{
	PostgresURL:   "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
	AMQPURL:       "amqp://guest:guest@127.0.0.1:5672/",
	ManagementURL: "http://guest:guest@127.0.0.1:15672",
}

// find picks the servers: the configured or local ones when they answer, else
// those start starts, but only where nothing was configured and CI is unset
// (a configured server that is down, or a CI without its services, is a
// mistake to report, not to paper over with containers).
func find(getenv func(string) string, local Servers, start Starter) (Servers, error) {
	value := func(k, def string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return def
	}
	s := Servers{
		PostgresURL:   value("TEST_DATABASE_URL", local.PostgresURL),
		AMQPURL:       value("AMQP_URL", local.AMQPURL),
		ManagementURL: value("RABBITMQ_MGMT_URL", local.ManagementURL),
	}
	configured := getenv("TEST_DATABASE_URL") != "" || getenv("AMQP_URL") != "" || getenv("RABBITMQ_MGMT_URL") != ""
	errLocal := reachable(s)
	if errLocal == nil {
		return s, nil
	}
	if start == nil || configured || getenv("CI") != "" {
		return s, errLocal
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	started, err := start(ctx)
	if err != nil {
		return s, fmt.Errorf("%w; fallback: %w", errLocal, err)
	}
	return started, nil
}

func reachable(s Servers) error {
	for _, raw := range []string{s.PostgresURL, s.AMQPURL, s.ManagementURL} {
		u, err := url.Parse(raw)
		if err != nil {
			return fmt.Errorf("parse %q: %w", raw, err)
		}
		host := u.Host
		if u.Port() == "" {
			host = net.JoinHostPort(u.Hostname(), map[string]string{"postgres": "5432", "amqp": "5672", "http": "80"}[u.Scheme])
		}
		conn, err := net.DialTimeout("tcp", host, 2*time.Second)
		if err != nil {
			return fmt.Errorf("%s unreachable: %w (run scripts/ensure-infra.sh)", redact(u), err)
		}
		conn.Close()
	}
	return nil
}

func redact(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// Need returns the servers or ends the test: failed under CI, skipped
// elsewhere.
func Need(t testing.TB) Servers {
	t.Helper()
	s, err := Find()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("test dependency missing (CI is set, so this fails): %v", err)
		}
		t.Skipf("test dependency missing: %v", err)
	}
	return s
}

// Database creates a fresh database for t and returns its URL. It is dropped
// when the test ends.
func Database(t testing.TB) string {
	t.Helper()
	s := Need(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, s.PostgresURL)
	if err != nil {
		t.Fatalf("connect to postgres: %v", err)
	}
	defer admin.Close(ctx)
	name := "test_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:20]
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := pgx.Connect(ctx, s.PostgresURL)
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(s.PostgresURL)
	if err != nil {
		t.Fatalf("parse postgres url: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// Broker is a fresh vhost of the test broker.
type Broker struct {
	// AMQPURL connects to the vhost.
	AMQPURL string
	// VHost is the vhost's name.
	VHost string
	// ManagementURL is the management API base URL with credentials.
	ManagementURL string
}

// VHost creates a fresh vhost for t, with full permissions for the test
// user, and deletes it when the test ends.
func VHost(t testing.TB) Broker {
	t.Helper()
	s := Need(t)
	api, err := mgmt.New(s.ManagementURL)
	if err != nil {
		t.Fatalf("management API: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	reapOnce.Do(func() { go reapVHosts(api, time.Now()) })
	name := fmt.Sprintf("test-%d-%s", time.Now().Unix(), uuid.NewString()[:8])
	// Registered first: a creation whose request timed out may still
	// complete on the broker, and must not leak.
	t.Cleanup(func() { deleteVHost(t, api, name) })
	if err := createVHost(ctx, api, name); err != nil {
		t.Fatalf("%v", err)
	}
	u, err := url.Parse(s.AMQPURL)
	if err != nil {
		t.Fatalf("parse amqp url: %v", err)
	}
	if err := api.GrantAll(ctx, name, u.User.Username()); err != nil {
		t.Fatalf("%v", err)
	}
	u.Path = "/" + name
	return Broker{AMQPURL: u.String(), VHost: name, ManagementURL: s.ManagementURL}
}

// reapOnce reaps leaked vhosts once per test binary.
var reapOnce sync.Once

// vhostTTL is the age after which a test vhost is taken to be leaked.
const vhostTTL = time.Hour

// reapVHosts deletes the test vhosts that an earlier test binary leaked (it
// was killed before its cleanup, or the deletion timed out on a busy
// broker): those whose name says they were made more than vhostTTL before
// now and that have no connection. Every leaked vhost keeps its quorum
// queues, each a Raft group the broker keeps running, so leaks slow every
// later test on the machine. It runs in the background and gives up
// quietly: a vhost it misses is reaped by a later run.
func reapVHosts(api *mgmt.Client, now time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var vhosts []struct {
		Name string `json:"name"`
	}
	if err := api.Do(ctx, "GET", "/api/vhosts?columns=name", nil, &vhosts); err != nil {
		return
	}
	for _, v := range vhosts {
		if !leaked(v.Name, now) {
			continue
		}
		var conns []json.RawMessage
		if err := api.Do(ctx, "GET", "/api/vhosts/"+url.PathEscape(v.Name)+"/connections", nil, &conns); err != nil || len(conns) > 0 {
			continue
		}
		if err := api.DeleteVHost(ctx, v.Name); err != nil {
			return
		}
	}
}

// leaked reports whether name is a test vhost made more than vhostTTL
// before now ("test-<unix seconds>-<random>").
func leaked(name string, now time.Time) bool {
	rest, ok := strings.CutPrefix(name, "test-")
	if !ok {
		return false
	}
	stamp, _, ok := strings.Cut(rest, "-")
	var sec int64
	if _, err := fmt.Sscanf(stamp, "%d", &sec); !ok || err != nil || len(stamp) < 10 {
		return false
	}
	return now.Sub(time.Unix(sec, 0)) > vhostTTL
}

// Management calls the RabbitMQ management API at base (credentials
// included) with body, raw JSON or empty, and discards the answer.
func Management(base, method, path, body string) error {
	api, err := mgmt.New(base)
	if err != nil {
		return err
	}
	var in any
	if body != "" {
		in = json.RawMessage(body)
	}
	return api.Do(context.Background(), method, path, in, nil)
}

// createVHost creates vhost name, asking again while ctx lasts when a
// request fails: the broker creates and deletes vhosts one at a time, so
// one slow deletion (see deleteVHost) can hold a creation up for longer
// than one HTTP request waits. Asking again is safe: an existing vhost is
// left as it is.
func createVHost(ctx context.Context, api *mgmt.Client, name string) error {
	return retry(ctx, func() error { return api.CreateVHost(ctx, name) })
}

// retry calls f until it succeeds or ctx ends, a second apart, and returns
// f's last error.
func retry(ctx context.Context, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second):
		}
	}
}

// closeConnections closes every client connection of vhost name, best
// effort. A connection still declaring queues while its vhost is deleted
// holds the deletion, and with it every other vhost's creation and
// deletion on the broker, until the declaration gives up (over a minute
// seen here); closed first, nothing is left in flight.
func closeConnections(ctx context.Context, api *mgmt.Client, name string) {
	var conns []struct {
		Name string `json:"name"`
	}
	if err := api.Do(ctx, http.MethodGet, "/api/vhosts/"+url.PathEscape(name)+"/connections?columns=name", nil, &conns); err != nil {
		return
	}
	for _, c := range conns {
		_ = api.Do(ctx, http.MethodDelete, "/api/connections/"+url.PathEscape(c.Name), nil, nil)
	}
}

// deleteVHost deletes vhost name, retrying for up to two minutes: deleting
// a vhost deletes its quorum queues, which a busy broker may take longer to
// do than one HTTP request waits. A vhost already gone (an earlier attempt
// finished after its request timed out, or it was never created) is
// deleted. Connections still open in it are closed first.
func deleteVHost(t testing.TB, api *mgmt.Client, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := retry(ctx, func() error {
		closeConnections(ctx, api, name)
		if err := api.DeleteVHost(ctx, name); !errors.Is(err, mgmt.ErrNotFound) {
			return err
		}
		return nil
	})
	if err != nil {
		t.Errorf("%v", err)
	}
}

// ReservedAddr is one of ReservePorts' ports as a loopback host:port.
func ReservedAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(ReservePorts(t, 1)[0]))
}
