// Package buildinfo holds the version and commit that the Makefile stamps
// into every binary, answers --version with them, and exposes them as the
// ordersaga_build_info metric, so that an operator can tell which build is
// running from the binary and from /metrics alike.
package buildinfo

import (
	"fmt"
	"io"
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
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

// Collector returns the ordersaga_build_info gauge, always 1, whose labels
// carry the build: the usual way to join a build to other series.
func Collector() prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ordersaga_build_info",
		Help: "The build of this process: version, commit and Go release, as labels; always 1.",
		ConstLabels: prometheus.Labels{
			"version":   Version,
			"commit":    Commit,
			"goversion": runtime.Version(),
		},
	}, func() float64 { return 1 })
}
