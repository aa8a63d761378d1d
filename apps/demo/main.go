// Command demo walks a newcomer through ordersaga on a running system:
// every saga outcome, a cancellation before and after payment, and a dead
// letter replayed with sagactl. It prints each order's final state and
// timeline, and exits 0 only if every step ended as the contract says.
//
// It is a client like any other: it uses the gateway's public HTTP API, and
// the broker only to publish the commands of its dead-letter story.
// `make demo` starts the system for it; against a system you started
// yourself, run bin/demo (see README). Its expected outcomes assume the
// services' default PAYMENT_LIMIT and PAYMENT_DECLINE_RATE; a payment
// latency of about a second lets the early cancel find its order pending.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	if err != nil && ctx.Err() != nil {
		err = errors.New("interrupted")
	}
	stop()
	if err != nil {
		// One line, whatever the error says.
		fmt.Fprintln(os.Stderr, "demo:", strings.ReplaceAll(err.Error(), "\n", "; "))
		os.Exit(1)
	}
}
