package testinfra

import (
	"context"
	"errors"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// closedPort returns a loopback address on which nothing listens.
func closedPort(t *testing.T) string { return RefusedAddr(t) }

// openPort returns a loopback address that accepts connections until the test
// ends.
func openPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err, "listen on a free port")
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return l.Addr().String()
}

func serversAt(hostPort string) Servers {
	return Servers{
		PostgresURL:   "postgres://postgres@" + hostPort + "/postgres?sslmode=disable",
		AMQPURL:       "amqp://guest:guest@" + hostPort + "/",
		ManagementURL: "http://guest:guest@" + hostPort,
	}
}

func TestFindChoosesTheServers(t *testing.T) {
	down := serversAt(closedPort(t))
	up := serversAt(openPort(t))
	containers := serversAt("container.invalid:1")
	tests := []struct {
		name        string
		env         map[string]string
		local       Servers
		start       func(calls *int) Starter
		want        Servers
		wantErr     string
		wantStarted bool
	}{
		{
			name:  "local servers answer: used, no container started",
			local: up,
			start: counting(containers, nil),
			want:  up,
		},
		{
			name:    "nothing answers, no starter registered: the error says which server",
			local:   down,
			wantErr: "unreachable",
		},
		{
			name:        "nothing answers, starter registered: its servers are used",
			local:       down,
			start:       counting(containers, nil),
			want:        containers,
			wantStarted: true,
		},
		{
			name:        "nothing answers, starter fails: both reasons reported",
			local:       down,
			start:       counting(Servers{}, errors.New("no Docker engine")),
			wantErr:     "no Docker engine",
			wantStarted: true,
		},
		{
			name:    "a configured server is down: reported, no container started",
			env:     map[string]string{"TEST_DATABASE_URL": down.PostgresURL},
			local:   up,
			start:   counting(containers, nil),
			wantErr: "unreachable",
		},
		{
			name:    "CI set and nothing answers: reported, no container started",
			env:     map[string]string{"CI": "true"},
			local:   down,
			start:   counting(containers, nil),
			wantErr: "unreachable",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			var start Starter
			if tt.start != nil {
				start = tt.start(&calls)
			}
			getenv := func(k string) string { return tt.env[k] }
			got, err := find(getenv, tt.local, start)
			if tt.wantErr != "" {
				require.Error(t, err, "find must fail")
				assert.Contains(t, err.Error(), tt.wantErr, "the error says why")
			} else {
				require.NoError(t, err, "find")
				assert.Equal(t, tt.want, got, "servers chosen")
			}
			want := 0
			if tt.wantStarted {
				want = 1
			}
			assert.Equal(t, want, calls, "times the starter was called")
		})
	}
}

// counting returns a Starter factory whose Starter answers s, err and counts
// its calls.
func counting(s Servers, err error) func(calls *int) Starter {
	return func(calls *int) Starter {
		return func(context.Context) (Servers, error) {
			*calls++
			return s, err
		}
	}
}

// TestRefusedAddrRefuses: connections are refused, and no
// listener can take the port while the test runs.
func TestRefusedAddrRefuses(t *testing.T) {
	t.Parallel()
	addr := RefusedAddr(t)
	_, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.Error(t, err)
	assert.ErrorIs(t, err, syscall.ECONNREFUSED)
	l, err := net.Listen("tcp", addr)
	if err == nil {
		l.Close()
	}
	assert.Error(t, err, "the port stays taken")
}

// TestReservedPortsAreOursOnly: the test's own server listens on a reserved
// port, stops and listens again; meanwhile no port-0 listener and no
// outgoing connection is given it, and with the server down connections
// are refused.
func TestReservedPortsAreOursOnly(t *testing.T) {
	t.Parallel()
	ports := ReservePorts(t, 2)
	require.NotEqual(t, ports[0], ports[1])
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	for range 2 {
		l, err := net.Listen("tcp", addr)
		require.NoError(t, err, "the test's own server binds its reserved port")
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		require.NoError(t, err)
		c.Close()
		l.Close()
		_, err = net.DialTimeout("tcp", addr, 5*time.Second)
		assert.ErrorIs(t, err, syscall.ECONNREFUSED, "server down: refused")
	}
	// The kernel picks ports at random from about 28,000: a thousand picks
	// of each kind would hit a port free for the taking with a chance of a
	// few per cent each; a reserved one, never.
	target, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer target.Close()
	go func() {
		for {
			c, err := target.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	reserved := map[int]bool{ports[0]: true, ports[1]: true}
	for range 1000 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		assert.False(t, reserved[l.Addr().(*net.TCPAddr).Port], "a port-0 listener got a reserved port")
		l.Close()
		c, err := net.Dial("tcp", target.Addr().String())
		require.NoError(t, err)
		assert.False(t, reserved[c.LocalAddr().(*net.TCPAddr).Port], "an outgoing connection got a reserved port")
		c.Close()
	}
}
