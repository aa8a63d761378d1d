// Package testinfra gives each test its own PostgreSQL database and its own
// RabbitMQ vhost on real servers, removed when the test ends. Servers come
// from TEST_DATABASE_URL, AMQP_URL and RABBITMQ_MGMT_URL (localhost by
// default); where none is configured, nothing answers locally and Docker is
// available, testcontainers-go starts them. When CI is set, a missing server
// fails the test; elsewhere it skips it.
package testinfra

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
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

var (
	serversOnce sync.Once
	servers     Servers
	serversErr  error
)

// Find returns the servers, starting containers where that is how to get
// them. The first failure is remembered for the whole test binary.
func Find() (Servers, error) {
	serversOnce.Do(func() { servers, serversErr = find() })
	return servers, serversErr
}

func find() (Servers, error) {
	s := Servers{
		PostgresURL:   env("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"),
		AMQPURL:       env("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
		ManagementURL: env("RABBITMQ_MGMT_URL", "http://guest:guest@127.0.0.1:15672"),
	}
	configured := os.Getenv("TEST_DATABASE_URL") != "" || os.Getenv("AMQP_URL") != "" || os.Getenv("RABBITMQ_MGMT_URL") != ""
	errLocal := reachable(s)
	if errLocal == nil {
		return s, nil
	}
	if configured || os.Getenv("CI") != "" || !dockerAvailable() {
		return s, errLocal
	}
	return startContainers()
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

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
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
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := "test-" + uuid.NewString()[:13]
	if err := api.CreateVHost(ctx, name); err != nil {
		t.Fatalf("%v", err)
	}
	u, err := url.Parse(s.AMQPURL)
	if err != nil {
		t.Fatalf("parse amqp url: %v", err)
	}
	if err := api.GrantAll(ctx, name, u.User.Username()); err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := api.DeleteVHost(ctx, name); err != nil {
			t.Errorf("%v", err)
		}
	})
	u.Path = "/" + name
	return Broker{AMQPURL: u.String(), VHost: name, ManagementURL: s.ManagementURL}
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
