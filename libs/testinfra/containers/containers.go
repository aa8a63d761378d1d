// Package containers is testinfra's fallback for machines that have Docker
// but no PostgreSQL or RabbitMQ: it starts both with testcontainers-go. It is
// a module of its own so that only the test binaries that register it (the
// tests module's suites) depend on testcontainers-go; every other module's
// tests use the configured or local servers.
package containers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/ordersaga/ordersaga/libs/testinfra"
)

// Register makes testinfra start PostgreSQL and RabbitMQ in containers when
// no server answers (and none was configured, and CI is unset). Call it from
// TestMain before m.Run.
func Register() {
	testinfra.UseContainers(Start)
}

// dockerAvailable reports whether a Docker engine seems to be reachable.
func dockerAvailable() bool {
	if os.Getenv("DOCKER_HOST") != "" {
		return true
	}
	_, err := os.Stat("/var/run/docker.sock")
	return err == nil
}

// Start starts PostgreSQL and RabbitMQ (with its management API) for the
// whole test binary; Ryuk removes them when the binary exits.
func Start(ctx context.Context) (testinfra.Servers, error) {
	if !dockerAvailable() {
		return testinfra.Servers{}, errors.New("no Docker engine (DOCKER_HOST unset, no /var/run/docker.sock)")
	}
	pg, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:        "postgres:15.10-alpine",
			Env:          map[string]string{"POSTGRES_HOST_AUTH_METHOD": "trust"},
			ExposedPorts: []string{"5432/tcp"},
			WaitingFor:   wait.ForListeningPort("5432/tcp").WithStartupTimeout(2 * time.Minute),
		},
		Started: true,
	})
	if err != nil {
		return testinfra.Servers{}, fmt.Errorf("start postgres container: %w", err)
	}
	mq, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:        "rabbitmq:3.10.25-management-alpine",
			ExposedPorts: []string{"5672/tcp", "15672/tcp"},
			WaitingFor: wait.ForAll(
				wait.ForListeningPort("5672/tcp"),
				wait.ForHTTP("/api/overview").WithPort("15672/tcp").WithBasicAuth("guest", "guest"),
			).WithDeadline(2 * time.Minute),
		},
		Started: true,
	})
	if err != nil {
		return testinfra.Servers{}, fmt.Errorf("start rabbitmq container: %w", err)
	}
	pgHost, err := pg.PortEndpoint(ctx, "5432/tcp", "")
	if err != nil {
		return testinfra.Servers{}, err
	}
	amqpHost, err := mq.PortEndpoint(ctx, "5672/tcp", "")
	if err != nil {
		return testinfra.Servers{}, err
	}
	mgmtHost, err := mq.PortEndpoint(ctx, "15672/tcp", "")
	if err != nil {
		return testinfra.Servers{}, err
	}
	return testinfra.Servers{
		PostgresURL:   "postgres://postgres@" + pgHost + "/postgres?sslmode=disable",
		AMQPURL:       "amqp://guest:guest@" + amqpHost + "/",
		ManagementURL: "http://guest:guest@" + mgmtHost,
	}, nil
}
