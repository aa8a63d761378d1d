// Package buildinfo holds the version and commit that the Makefile stamps
// into every binary and answers --version with them, so that an operator
// can tell which build runs (libs/web shows them on /metrics too). It
// imports nothing beyond the standard library: every command line uses it.
package buildinfo

import (
	"fmt"
	"io"
	"runtime"
)

// Version and Commit are set at link time by the Makefile's build target
// (-ldflags "-X github.com/ordersaga/ordersaga/libs/buildinfo.Version=...");
// a plain `go build` or `go run` leaves these values, which say so.
var (
	Version = "dev"
	Commit  = "unknown"
)

// Asked reports whether args ask for the version: its first argument is
// -version or --version, as -h and --help are recognised only there.
func Asked(args []string) bool {
	return len(args) > 0 && (args[0] == "-version" || args[0] == "--version")
}

// Write writes the one line that --version prints: the version, the commit
// and the Go release the binary was built with.
func Write(w io.Writer) error {
	_, err := fmt.Fprintf(w, "ordersaga %s (commit %s, %s)\n", Version, Commit, runtime.Version())
	return err
}
