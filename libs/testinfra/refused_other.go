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
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("refused address: %v", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatalf("refused address: %v", err)
	}
	return addr
}
