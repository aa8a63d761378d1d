package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ordersaga/ordersaga/libs/gatewayclient"
	"github.com/ordersaga/ordersaga/libs/settings"
)

const (
	// readyTimeout bounds the wait for the gateway's /readyz at the start;
	// unreachableTimeout the wait for an answer at all.
	readyTimeout       = 30 * time.Second
	unreachableTimeout = 5 * time.Second
	// existTimeout bounds the wait for an accepted order to show up (it may
	// be 404 for a few milliseconds after its 202, contract §2).
	existTimeout = 10 * time.Second
	// settleTimeout bounds the wait for the sagas: the contract's 60 s.
	settleTimeout = 60 * time.Second
	// timelineTimeout bounds the wait for a timeline to show the payment's
	// last event arriving at the order service.
	timelineTimeout = 5 * time.Second
	// pollInterval is how often a waited-for condition is checked.
	pollInterval = 100 * time.Millisecond
	// orderTotal is what every demo order costs, in cents.
	orderTotal = 4200
	steps      = 7
)

// demo is one walkthrough.
type demo struct {
	cfg config
	// api calls as the user of the orders, admin as the administrator;
	// both without a token when the gateway has AUTH_MODE=off.
	api, admin   *api
	authRequired bool
	out          *console
	userID       string // every order of this run belongs to it
	runID        string // makes this run's Idempotency-Keys its own
}

// run walks through the demo against the system at cfg's addresses. It
// returns an error if the system is not there or any step did not end as
// the contract says. -h or --help prints its usage and the variables it
// reads instead, and nothing else.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	seedOnly := len(args) > 0 && args[0] == "-seed-only"
	linger := len(args) > 0 && args[0] == "-linger"
	if seedOnly || linger {
		args = args[1:]
	}
	if help, err := settings.Help(args, stdout, intro, new(defaults())); help || err != nil {
		return err
	}
	cfg, err := parseConfig(getenv)
	if err != nil {
		return err
	}
	if seedOnly {
		return runSeed(ctx, cfg, stdout)
	}
	if linger {
		return runLinger(ctx, cfg, stdout, cfg.ConsoleURL)
	}
	if _, err := exec.LookPath(cfg.Sagactl); err != nil {
		return fmt.Errorf("sagactl, which the dead-letter step runs: %w (make build puts it in bin/, or set SAGACTL)", err)
	}
	gateway, err := newAPI(cfg.GatewayURL)
	if err != nil {
		return err
	}
	d := &demo{
		cfg:   cfg,
		api:   gateway,
		out:   &console{w: stdout, live: isTerminal(stdout, cfg.Term)},
		runID: uuid.NewString()[:8],
	}
	d.out.printf("ordersaga demo: nine sagas through the public API, three with items, one through a dead-letter queue\n")
	d.out.printf("  gateway %s · broker vhost %q\n", cfg.GatewayURL, cfg.VHost)
	if err := d.waitReady(ctx); err != nil {
		return err
	}
	if err := d.logIn(ctx); err != nil {
		return err
	}

	d.out.step(1, steps, "Accounts (POST /api/auth/register, /api/auth/login)")
	if err := d.accounts(ctx); err != nil {
		return err
	}
	d.out.printf("  every order belongs to user %s\n", d.userID)

	d.out.step(2, steps, "The catalogue (POST /api/products as the administrator; the first create of a sku stands)")
	products, err := d.seed(ctx)
	if err != nil {
		return err
	}
	if err := writeCatalogue(d, products); err != nil {
		return err
	}
	stock := map[string]gatewayclient.Product{}
	for _, p := range products {
		stock[p.Sku] = p
	}
	withItems, err := itemScenarios(stock)
	if err != nil {
		return err
	}

	d.out.step(3, steps, "Placing eight orders (POST /api/orders): three with items, five with a total; the payment method decides each payment")
	orders, err := d.place(ctx, append(withItems, scenarios...), stock)
	if err != nil {
		return err
	}

	d.out.step(4, steps, "Following the sagas (GET /api/orders/{id} and /api/payments/order/{id})")
	if err := d.follow(ctx, orders, settleTimeout); err != nil {
		return err
	}

	d.out.step(5, steps, "What a customer may not do")
	if d.authRequired {
		if err := d.forbidden(ctx, orders[len(withItems)].ID); err != nil {
			return err
		}
	} else {
		d.out.printf("  nothing with AUTH_MODE=off: every route but user administration is open (AUTH_MODE=required make run shows it)\n")
	}

	d.out.step(6, steps, "A dead letter, and its replay with sagactl")
	replayed, err := d.deadLetterStory(ctx)
	if err != nil {
		return err
	}
	orders = append(orders, replayed)

	d.out.step(7, steps, "Results")
	if err := d.results(ctx, orders); err != nil {
		return err
	}
	return d.confirmationEmail(ctx, orders)
}

// results prints every order's outcome, items, stock and timeline, and
// fails unless every one ended as the contract says.
func (d *demo) results(ctx context.Context, orders []*tracked) error {
	for _, t := range orders {
		d.waitStockBack(ctx, t)
	}
	timelines := d.timelines(ctx, orders)
	if err := writeResults(d.out.w, orders); err != nil {
		return err
	}
	d.out.printf("\n  Orders with items (GET /api/orders/{id}): the inventory priced each line when it reserved it\n")
	for _, t := range orders {
		if t.Items != nil {
			writeItems(d, t)
		}
	}
	for _, t := range orders {
		writeStockStory(d, t)
	}
	d.writeInvoices(ctx, orders)
	d.out.printf("\n  Timelines (GET /api/orders/{id}/timeline): every command and event of each saga, from both services\n")
	for _, t := range orders {
		if err := writeTimeline(d.out.w, t, timelines[t]); err != nil {
			return err
		}
	}
	d.whereToLook(orders)

	var failed []string
	for _, t := range orders {
		if !t.OK() {
			failed = append(failed, t.Name)
		}
	}
	if len(failed) > 0 {
		d.out.printf("\n✘ %d of %d steps did not end as the contract says: %s\n", len(failed), len(orders), strings.Join(failed, ", "))
		return fmt.Errorf("%d of %d steps did not end as the contract says: %s", len(failed), len(orders), strings.Join(failed, ", "))
	}
	d.out.printf("\n✔ all %d steps ended as the contract says\n", len(orders))
	return nil
}

// waitReady waits for the gateway's /readyz, which checks the broker and
// both services.
func (d *demo) waitReady(ctx context.Context) error {
	start := time.Now()
	err := poll(ctx, readyTimeout, func() (bool, error) {
		err := d.api.ready(ctx)
		var answered *statusError
		if err != nil && !errors.As(err, &answered) && time.Since(start) > unreachableTimeout {
			return true, err // nothing listens: no use waiting for a start-up
		}
		if err != nil {
			d.out.progress("waiting for the gateway to be ready", time.Since(start))
		}
		return err == nil, err
	})
	d.out.endProgress()
	if err != nil {
		return fmt.Errorf("the system is not ready at %s (%w); start it with make run, or use make demo, which starts it", d.cfg.GatewayURL, err)
	}
	return nil
}

// place places one order per scenario and cancels the early-cancel order at
// once.
func (d *demo) place(ctx context.Context, all []scenario, stock map[string]gatewayclient.Product) ([]*tracked, error) {
	var orders []*tracked
	for _, sc := range all {
		t := &tracked{scenario: sc}
		if sc.Cancel == cancelOncePaid && len(sc.Items) == 1 {
			before := stock[sc.Items[0].Sku]
			t.StockBefore = &before
		}
		id, err := d.placeOrder(ctx, sc)
		if err != nil {
			return nil, err
		}
		t.ID = id
		accepted := statusPending
		if sc.Items != nil {
			accepted = statusPendingStock
		}
		d.out.printf("  %-12s  %-11s  order %s  202 %-15s  (%s)\n", sc.Name, sc.Method, short(id), accepted, sc.Story)
		if tid := d.api.trace(); tid != "" {
			// The gateway traces (TRACING=on): the saga is this one trace.
			d.out.printf("  %-12s  trace %s  %s/api/traces/%s\n", "", tid, d.cfg.JaegerURL, tid)
		}
		if sc.Cancel == cancelAtOnce {
			d.cancelAtOnce(ctx, t)
		}
		orders = append(orders, t)
	}
	return orders, nil
}

// placeOrder posts a scenario's order. A 503 (no broker confirm) may still
// have taken effect, so it is retried with the same Idempotency-Key, which
// yields at most one order.
func (d *demo) placeOrder(ctx context.Context, sc scenario) (string, error) {
	key := "demo-" + d.runID + "-" + sc.Name
	var id string
	err := poll(ctx, existTimeout, func() (bool, error) {
		var err error
		id, err = d.api.placeOrder(ctx, d.userID, orderTotal, sc.Items, sc.Method, key)
		var se *statusError
		if errors.As(err, &se) && se.Status == http.StatusServiceUnavailable {
			return false, err
		}
		return true, err
	})
	if err != nil {
		return "", fmt.Errorf("place the %s order: %w", sc.Name, err)
	}
	return id, nil
}

// cancelAtOnce cancels t's order as soon as it exists.
func (d *demo) cancelAtOnce(ctx context.Context, t *tracked) {
	o, err := d.waitExists(ctx, t.ID)
	if err != nil {
		t.Failure = err.Error()
		return
	}
	if err := d.api.cancel(ctx, t.ID); err != nil {
		t.Failure = fmt.Sprintf("cancel: %v", err)
		d.out.printf("  %-12s  ✗ PATCH /api/orders/%s/cancel: %v\n", t.Name, short(t.ID), err)
		return
	}
	t.CancelSent = true
	d.out.printf("  %-12s  PATCH /api/orders/%s/cancel → 202, sent while the order was %s\n", t.Name, short(t.ID), o.Status)
}

// waitExists waits until an accepted order can be read.
func (d *demo) waitExists(ctx context.Context, id string) (gatewayclient.Order, error) {
	var o gatewayclient.Order
	err := poll(ctx, existTimeout, func() (bool, error) {
		var err error
		o, err = d.api.order(ctx, id)
		return err == nil, err
	})
	if err != nil {
		return o, fmt.Errorf("order %s not readable within %s: %w", id, existTimeout, err)
	}
	return o, nil
}

// follow polls the orders until every one settled or the limit passed,
// printing each change of an order or its payment, and cancels the
// cancel-paid order once it is PAID.
func (d *demo) follow(ctx context.Context, orders []*tracked, limit time.Duration) error {
	start := time.Now()
	label := func(n int) string {
		if len(orders) == 1 {
			return fmt.Sprintf("waiting for the %s saga…", orders[0].Name)
		}
		return fmt.Sprintf("waiting for %d sagas… %d/%d settled", len(orders), n, len(orders))
	}
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		n := 0
		for _, t := range orders {
			if !t.Settled {
				d.refresh(ctx, t, start)
			}
			if t.Settled {
				n++
			}
		}
		if n == len(orders) {
			d.out.endProgress()
			d.out.printf("  settled in %s\n", seconds(time.Since(start)))
			return nil
		}
		if time.Since(start) > limit {
			d.out.endProgress()
			for _, t := range orders {
				if !t.Settled {
					t.Settled = true
					t.Failure = fmt.Sprintf("not settled within %s; last seen %s", limit, state(t.Order, t.Payment))
					if t.lastErr != nil {
						t.Failure += fmt.Sprintf(" (last error: %v)", t.lastErr)
					}
				}
			}
			return nil
		}
		d.out.progress(label(n), time.Since(start))
		select {
		case <-ctx.Done():
			d.out.endProgress()
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// refresh reads t's order and payment, prints what changed, and acts on it.
func (d *demo) refresh(ctx context.Context, t *tracked, start time.Time) {
	o, err := d.api.order(ctx, t.ID)
	if err != nil {
		if !errors.Is(err, errNotFound) { // 404: not created yet
			t.lastErr = err
		}
		return
	}
	paymentStatus := ""
	p, err := d.api.payment(ctx, t.ID)
	switch {
	case err == nil:
		paymentStatus = string(p.Status)
	case !errors.Is(err, errNotFound):
		t.lastErr = err
		return
	}
	if o.Status != t.Order.Status || reasonOf(o) != reasonOf(t.Order) || paymentStatus != t.Payment {
		t.Order, t.Payment = o, paymentStatus
		d.out.printf("  %s  %-12s  %s\n", offset(time.Since(start)), t.Name, state(o, paymentStatus))
	}
	if t.Cancel == cancelOncePaid && !t.CancelSent && o.Status == statusPaid && paymentStatus == paymentApproved {
		if err := d.api.cancel(ctx, t.ID); err != nil {
			t.Failure, t.Settled = fmt.Sprintf("cancel once PAID: %v", err), true
			d.out.printf("  %s  %-12s  ✗ PATCH /api/orders/%s/cancel: %v\n", offset(time.Since(start)), t.Name, short(t.ID), err)
			return
		}
		t.CancelSent = true
		d.out.printf("  %s  %-12s  PATCH /api/orders/%s/cancel → 202\n", offset(time.Since(start)), t.Name, short(t.ID))
		if t.StockBefore != nil {
			if p, err := d.api.product(ctx, t.StockBefore.Sku); err == nil {
				t.StockPaid = &p
			}
		}
	}
	t.Settled = settled(t)
}

// timelines reads each order's timeline. It waits a little for the
// payment's last event to reach the order service, so that no timeline is
// cut short by the moment it was read; after that it takes what is there.
func (d *demo) timelines(ctx context.Context, orders []*tracked) map[*tracked][]gatewayclient.TimelineEvent {
	out := map[*tracked][]gatewayclient.TimelineEvent{}
	for _, t := range orders {
		var entries []gatewayclient.TimelineEvent
		last := "payment." + strings.ToLower(t.Payment)
		err := poll(ctx, timelineTimeout, func() (bool, error) {
			var err error
			entries, err = d.api.timeline(ctx, t.ID)
			switch {
			case errors.Is(err, errNotFound): // an order that never was
				return true, err
			case err != nil || t.Payment == "":
				return err == nil, err
			}
			for _, e := range entries {
				if e.Service == "order-service" && e.Type == last {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil && len(entries) == 0 {
			t.Note = strings.TrimSpace(t.Note + " (timeline: " + err.Error() + ")")
		}
		if t.Cancel != noCancel && t.Cancel != cancelOncePaid && t.OK() {
			t.Note = cancelNote(t, entries)
		}
		out[t] = entries
	}
	return out
}

// whereToLook tells the newcomer where to go next.
func (d *demo) whereToLook(orders []*tracked) {
	ui, login := managementUI(d.cfg.ManagementURL)
	if login != "" {
		login = " (log in as " + login + ")"
	}
	vhost := url.PathEscape(d.cfg.VHost) // "/" is %2F
	g := d.cfg.GatewayURL
	d.out.printf(`
  Where to look next (the gateway's addresses need the system running: make run)
    API documentation   %[1]s/docs  (Swagger UI), %[1]s/api/openapi.json
    this run's orders   curl -s '%[1]s/api/orders?userId=%[2]s'
    one saga, live      curl -N %[1]s/api/orders/%[3]s/events  (Server-Sent Events until its outcome)
    payments by status  curl -s %[1]s/api/payments/stats
    the catalogue       curl -s %[1]s/api/products · /api/products/DEMO-CAP/adjustments
%[8]s    RabbitMQ management %[4]s%[5]s
      Queues tab, filter "order-service": each work queue with its retry tiers
        (.retry.1s|5s|15s.quorum) and its .dlq side by side; the dead letter above went
        through %[4]s/#/queues/%[6]s/order-service.commands.dlq
      Exchanges tab → orders.commands: the bindings that route both commands
      Connections tab: one per service, named after it
    dead letters        %[7]s dlq list · dlq show QUEUE · dlq replay QUEUE --id ID · dlq purge QUEUE --yes
`, g, d.userID, orders[0].ID, ui, login, vhost, d.sagactlShown(), d.tokenHint())
}

// tokenHint says, with AUTH_MODE=required, how to call the addresses above.
func (d *demo) tokenHint() string {
	if !d.authRequired {
		return ""
	}
	return fmt.Sprintf(`    with AUTH_MODE=required each needs a token: add -H "Authorization: Bearer $TOKEN" after
      TOKEN=$(curl -s %s/api/auth/login -H 'Content-Type: application/json' \
        -d '{"email":"%s","password":"…"}' | jq -r .accessToken)
`, d.cfg.GatewayURL, d.cfg.AdminEmail)
}

// poll calls check every pollInterval until it reports done, ctx ends or
// limit passed; then it returns check's last error, or one saying so.
func poll(ctx context.Context, limit time.Duration, check func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		done, err := check()
		if done {
			return err
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("not done within %s", limit)
			}
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
