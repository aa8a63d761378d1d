package testinfra

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ordersaga/ordersaga/libs/rabbit/mgmt"
)

// The docker command line is all the container fallback needs: a client
// library (testcontainers-go) put some 60 modules into the graph of every
// module whose tests use testinfra, for two `docker run`s.

// dockerAvailable reports whether a Docker engine seems to be reachable.
func dockerAvailable() bool {
	if _, err := exec.LookPath("docker"); err != nil {
		return false
	}
	if os.Getenv("DOCKER_HOST") != "" {
		return true
	}
	_, err := os.Stat("/var/run/docker.sock")
	return err == nil
}

// startContainers starts PostgreSQL and RabbitMQ (with its management API)
// for the whole test binary; a watcher removes them once the binary has
// exited, however it ends.
func startContainers() (Servers, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bindIP, host := dockerHost(os.Getenv("DOCKER_HOST"))
	pg, err := runContainer(ctx, bindIP, host, "postgres:15-alpine", []string{"POSTGRES_HOST_AUTH_METHOD=trust"}, "5432")
	if err != nil {
		return Servers{}, err
	}
	mq, err := runContainer(ctx, bindIP, host, "rabbitmq:3.10-management-alpine", nil, "5672", "15672")
	if err != nil {
		return Servers{}, err
	}
	s := Servers{
		PostgresURL:   "postgres://postgres@" + pg["5432"] + "/postgres?sslmode=disable",
		AMQPURL:       "amqp://guest:guest@" + mq["5672"] + "/",
		ManagementURL: "http://guest:guest@" + mq["15672"],
	}
	if err := waitReady(ctx, s); err != nil {
		return Servers{}, err
	}
	return s, nil
}

// dockerHost returns the address to publish ports on and the host they
// answer at: the daemon's host when DOCKER_HOST names a remote one, this
// machine's loopback otherwise.
func dockerHost(dockerHostEnv string) (bindIP, host string) {
	if u, err := url.Parse(dockerHostEnv); err == nil && (u.Scheme == "tcp" || u.Scheme == "ssh") && u.Hostname() != "" {
		return "", u.Hostname()
	}
	return "127.0.0.1", "127.0.0.1"
}

// runContainer starts image with env, publishes ports on random host
// ports, and returns each port's host:port.
func runContainer(ctx context.Context, bindIP, host, image string, env []string, ports ...string) (map[string]string, error) {
	args := []string{"run", "--detach", "--rm", "--label", "org.ordersaga.testinfra=" + strconv.Itoa(os.Getpid())}
	for _, e := range env {
		args = append(args, "--env", e)
	}
	for _, p := range ports {
		args = append(args, "--publish", bindIP+"::"+p)
	}
	id, err := docker(ctx, append(args, image)...)
	if err != nil {
		return nil, fmt.Errorf("start %s container: %w", image, err)
	}
	if err := reapAfterExit(os.Getpid(), id); err != nil {
		_, _ = docker(context.Background(), "rm", "--force", id)
		return nil, err
	}
	addrs := map[string]string{}
	for _, p := range ports {
		out, err := docker(ctx, "port", id, p+"/tcp")
		if err != nil {
			return nil, fmt.Errorf("port %s of the %s container: %w", p, image, err)
		}
		hostPort, err := publishedPort(out)
		if err != nil {
			return nil, fmt.Errorf("port %s of the %s container: %w", p, image, err)
		}
		addrs[p] = net.JoinHostPort(host, hostPort)
	}
	return addrs, nil
}

// docker runs the docker command and returns its output, trimmed.
func docker(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("docker %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// publishedPort reads the host port of `docker port` output, such as
// "127.0.0.1:32768" or "0.0.0.0:32768\n[::]:32768".
func publishedPort(out string) (string, error) {
	for line := range strings.SplitSeq(out, "\n") {
		_, port, err := net.SplitHostPort(strings.TrimSpace(line))
		if err != nil {
			continue
		}
		if n, err := strconv.Atoi(port); err == nil && n > 0 && n < 1<<16 {
			return port, nil
		}
	}
	return "", fmt.Errorf("no published port in %q", out)
}

// reapAfterExit leaves a watcher that removes container id once process
// pid has exited. It runs in its own session, so that it outlives the test
// binary, and holds none of our pipes, which go test waits on.
func reapAfterExit(pid int, id string) error {
	cmd := exec.Command("sh", "-c", `while kill -0 "$1" 2>/dev/null; do sleep 1; done; exec docker rm --force "$2"`,
		"testinfra-reaper", strconv.Itoa(pid), id)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the watcher of container %s: %w", id, err)
	}
	return cmd.Process.Release()
}

// waitReady waits until PostgreSQL accepts a connection and RabbitMQ an
// AMQP connection and a management call: docker publishes the ports
// before the servers listen.
func waitReady(ctx context.Context, s Servers) error {
	api, err := mgmt.New(s.ManagementURL)
	if err != nil {
		return err
	}
	checks := []struct {
		name  string
		ready func(context.Context) error
	}{
		{"postgres", func(ctx context.Context) error {
			c, err := pgx.Connect(ctx, s.PostgresURL)
			if err != nil {
				return err
			}
			return c.Close(ctx)
		}},
		{"rabbitmq", func(ctx context.Context) error {
			if _, err := api.Overview(ctx); err != nil {
				return err
			}
			c, err := amqp.Dial(s.AMQPURL)
			if err != nil {
				return err
			}
			return c.Close()
		}},
	}
	for _, c := range checks {
		for {
			err := c.ready(ctx)
			if err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s container not ready: %w", c.name, err)
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	return nil
}
