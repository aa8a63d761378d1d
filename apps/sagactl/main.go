// Command sagactl is the operator CLI of ordersaga: it lists, shows,
// replays and purges the saga's dead-letter queues, and prints or declares
// the RabbitMQ topology.
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
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// run runs the command in args and returns the process's exit code: usage
// text on stderr and 2 for a malformed command line, usage on stdout and 0
// for -h/--help/help, one error line on stderr and 1 for a failure.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, getenv, stdout)
	var uerr *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &uerr) && uerr.msg == "":
		fmt.Fprint(stdout, uerr.usage) // asked for: it is the output
		return exitOK
	case errors.As(err, &uerr):
		fmt.Fprintf(stderr, "sagactl: %s\n\n", uerr.msg)
		fmt.Fprint(stderr, uerr.usage)
		return exitUsage
	default:
		// One line, even for joined errors.
		fmt.Fprintf(stderr, "sagactl: %s\n", strings.ReplaceAll(err.Error(), "\n", "; "))
		return exitFailure
	}
}
