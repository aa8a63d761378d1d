//go:build !unix

package testinfra

import (
	"net"
	"testing"
)

// RefusedAddr returns a loopback address on which nothing listens. Here
// its port is free again, so a server another test starts may take it;
// on unix (refused_unix.go) it stays bound until the test ends.
func RefusedAddr(t testing.TB) string {
	t.Helper()
	return ReservedAddr(t)
}

// ReservePorts returns n loopback ports free when it looked. Here they are
// not held: another server may take one before the test's own binds it; on
// unix (refused_unix.go) they are held until the test ends.
func ReservePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("reserve a port: %v", err)
		}
		defer l.Close() // held until all n are found: n different ports
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}
