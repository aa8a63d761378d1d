// Command loadgen is ordersaga's benchmark: it starts (or targets) the
// three services, drives the gateway in closed and open loops, queues a
// backlog, measures the machine's floor, and prints what it saw as tables
// and JSON. It reports figures; it never judges them.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/ordersaga/ordersaga/apps/loadgen/internal/bench"
)

func main() {
	// Ctrl-C or SIGTERM cancels the run; Run then stops the services it
	// started and removes its scratch resources before returning.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs one benchmark and returns the exit code: 0 when it ran to the
// end (whatever the figures) and for -h, 2 for a bad command line, 1
// otherwise.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	c, err := parseConfig(args, getenv, stdout)
	switch {
	case errors.Is(err, errHelp):
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "loadgen: %s\n", strings.ReplaceAll(err.Error(), "\n", "; ")) // one line
		return 2
	}
	rep, err := bench.Run(ctx, c.Options, stdout)
	if rep != nil && len(rep.Steps)+len(rep.Floors) > 0 {
		rep.Print(stdout)
		if c.JSONFile != "" {
			if jerr := rep.WriteJSON(c.JSONFile); jerr != nil {
				err = errors.Join(err, fmt.Errorf("write %s: %w", c.JSONFile, jerr))
			} else {
				fmt.Fprintf(stdout, "\nJSON report: %s\n", c.JSONFile)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "loadgen: %s\n", strings.ReplaceAll(err.Error(), "\n", "; ")) // one line
		return 1
	}
	return 0
}
