package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"
)

// lingerTimeout bounds each wait of -linger.
const lingerTimeout = 20 * time.Second

// runLinger leaves two things for an operator to look at in the console
// once the tour is over, outside its pass/fail (make demo runs it with
// payment-service paused): a saga stuck waiting for payment-service, and a
// dead letter (the cancel of an order that does not exist).
func runLinger(ctx context.Context, cfg config, stdout io.Writer, consoleURL string) error {
	gateway, err := newAPI(cfg.GatewayURL)
	if err != nil {
		return err
	}
	d := &demo{cfg: cfg, api: gateway, out: &console{w: stdout}, runID: uuid.NewString()[:8]}
	if err := d.logIn(ctx); err != nil {
		return err
	}
	if err := d.accounts(ctx); err != nil {
		return err
	}
	stuck, err := d.placeOrder(ctx, scenario{Name: "stuck", Method: "tok_visa"})
	if err != nil {
		return err
	}
	if _, err := d.waitExists(ctx, stuck); err != nil {
		return err
	}
	b, err := dialBroker(ctx, cfg.AMQPURL)
	if err != nil {
		return err
	}
	defer b.close()
	before, err := b.count(commandsDLQ)
	if err != nil {
		return err
	}
	ghost := uuid.NewString()
	if _, err := b.publish(ctx, typeCancel, ghost, map[string]any{"orderId": ghost, "reason": reasonUserRequested}); err != nil {
		return fmt.Errorf("publish %s: %w", typeCancel, err)
	}
	if err := poll(ctx, lingerTimeout, func() (bool, error) {
		n, err := b.count(commandsDLQ)
		return n > before, err
	}); err != nil {
		return fmt.Errorf("the cancel of order %s did not reach %s: %w", ghost, commandsDLQ, err)
	}
	d.out.printf(`
  Left for the console at %s:
    a stuck saga   order %s, waiting for payment-service (paused):
                   %s/stuck, then click the order for its sequence diagram
    a dead letter  the cancel of order %s, which does not exist:
                   %s/dlq (dry run, replay, purge; the audit log below)
`, consoleURL, stuck, consoleURL, ghost, consoleURL)
	return nil
}
