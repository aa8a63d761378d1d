//go:build unix

package testinfra

import (
	"net"
	"strconv"
	"syscall"
	"testing"
)

// RefusedAddr returns a loopback address (host:port) that refuses every
// connection until the test ends. Its port is bound but never listened on,
// so no server another test starts meanwhile can take it: a port whose
// listener was merely closed again can be, and a test that expects a
// connection refused then talks to that server instead.
func RefusedAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(boundPort(t, "refused address", false)))
}

// ReservePorts returns n loopback ports that the test's own servers may
// listen on, stop and listen on again, and that nobody else is given until
// the test ends. Each is held by a socket bound with SO_REUSEADDR and never
// listened on: a server that sets SO_REUSEADDR too (every Go net.Listen
// does on unix) may bind it beside that socket, while the kernel gives the
// port to no port-0 bind and to no outgoing connection, as it does for any
// port bound. A port found by listening and closing is free again at once:
// another test's server, or an outgoing connection's source port, may take
// it before the server meant for it binds, or while that server is down.
func ReservePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	for range n {
		ports = append(ports, boundPort(t, "reserve a port", true))
	}
	return ports
}

// boundPort binds a socket to a free loopback port, with SO_REUSEADDR or
// without, never listens on it, and closes it when the test ends; what
// says what failed.
func boundPort(t testing.TB, what string, reuse bool) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("%s: socket: %v", what, err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if reuse {
		if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
			t.Fatalf("%s: SO_REUSEADDR: %v", what, err)
		}
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("%s: bind: %v", what, err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("%s: getsockname: %v", what, err)
	}
	return sa.(*syscall.SockaddrInet4).Port
}
