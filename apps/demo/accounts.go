package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/uuid"

	"github.com/ordersaga/ordersaga/libs/gatewayclient"
)

// customerPassword is the password of the customers the demo registers:
// throw-away accounts of one run, 12 characters or more (contract §7).
const customerPassword = "demo customer password"

// logIn finds the gateway's AUTH_MODE and, where it needs tokens, logs in
// as the administrator: d.admin then calls as the administrator (with
// AUTH_MODE=off, as anyone).
func (d *demo) logIn(ctx context.Context) error {
	required, err := d.api.probeAuth(ctx)
	if err != nil {
		return fmt.Errorf("find the gateway's AUTH_MODE (GET /api/payments/stats without a token): %w", err)
	}
	d.authRequired = required
	d.admin = d.api
	if !required {
		return nil
	}
	if d.cfg.AdminEmail == "" || d.cfg.AdminPassword == "" {
		return errors.New("the gateway has AUTH_MODE=required: set ADMIN_EMAIL and ADMIN_PASSWORD to its administrator's (make demo does)")
	}
	token, err := d.api.login(ctx, d.cfg.AdminEmail, d.cfg.AdminPassword)
	if err != nil {
		return fmt.Errorf("log in as the administrator %s: %w", d.cfg.AdminEmail, err)
	}
	d.admin = d.api.as(token)
	return nil
}

// customer registers a throw-away customer and logs in as them; it returns
// their id and an API that calls as them.
func (d *demo) customer(ctx context.Context, name string) (string, *api, error) {
	email := fmt.Sprintf("%s-%s@demo.ordersaga.local", name, d.runID)
	id, err := d.api.register(ctx, email, customerPassword, name)
	if err != nil {
		return "", nil, fmt.Errorf("register %s: %w", email, err)
	}
	token, err := d.api.login(ctx, email, customerPassword)
	if err != nil {
		return "", nil, fmt.Errorf("log in as %s: %w", email, err)
	}
	d.out.printf("  POST /api/auth/register %-38s → 201, user %s (role customer)\n", email, id)
	d.out.printf("  POST /api/auth/login    %-38s → 200, a bearer token\n", email)
	return id, d.api.as(token), nil
}

// accounts sets the user every order belongs to: with AUTH_MODE=required
// a customer it registers and logs in as, whose token then places and
// reads the orders; with off, a made-up user id.
func (d *demo) accounts(ctx context.Context) error {
	if !d.authRequired {
		d.userID = uuid.NewString()
		d.out.printf("  the gateway has AUTH_MODE=off: no token needed (development only); make demo runs with required\n")
		return nil
	}
	d.out.printf("  the gateway has AUTH_MODE=required: every /api route but /api/auth/* needs a bearer token\n")
	d.out.printf("  POST /api/auth/login    %-38s → 200, a bearer token (role admin)\n", d.cfg.AdminEmail)
	id, customer, err := d.customer(ctx, "alice")
	if err != nil {
		return err
	}
	d.userID, d.api = id, customer
	return nil
}

// access is one request of the access story and the status it must get.
type access struct {
	who, method, path, why string
	api                    *api
	want                   int
}

// forbidden shows, with AUTH_MODE=required, what a customer may not do: see
// another customer's order (404, as if it did not exist) or the payment
// statistics (403), which the administrator sees.
func (d *demo) forbidden(ctx context.Context, orderID string) error {
	_, eve, err := d.customer(ctx, "eve")
	if err != nil {
		return err
	}
	order, cancel, stats := "/api/orders/"+orderID, "/api/orders/"+orderID+"/cancel", "/api/payments/stats"
	checks := []access{
		{"alice", http.MethodGet, order, "her own order", d.api, http.StatusOK},
		{"eve", http.MethodGet, order, "alice's order: as if it did not exist", eve, http.StatusNotFound},
		{"eve", http.MethodPatch, cancel, "cancel alice's order", eve, http.StatusNotFound},
		{"alice", http.MethodGet, stats, "payment statistics are for admins", d.api, http.StatusForbidden},
		{"admin", http.MethodGet, stats, "", d.admin, http.StatusOK},
		{"nobody", http.MethodGet, order, "no token", d.api.as(""), http.StatusUnauthorized},
	}
	// send is each request through the client, for its status only.
	send := map[string]func(*api) (interface{ StatusCode() int }, error){
		order:  func(a *api) (interface{ StatusCode() int }, error) { return a.getOrder(ctx, orderID) },
		cancel: func(a *api) (interface{ StatusCode() int }, error) { return a.cancelOrder(ctx, orderID) },
		stats: func(a *api) (interface{ StatusCode() int }, error) {
			return a.c.GetPaymentStatsWithResponse(ctx, gatewayclient.BearerAuth(a.token))
		},
	}
	var wrong []string
	for _, c := range checks {
		resp, err := send[c.path](c.api)
		if err != nil {
			return err
		}
		got := resp.StatusCode()
		mark := "✔"
		if got != c.want {
			mark = "✘"
			wrong = append(wrong, fmt.Sprintf("%s %s %s: %d, want %d", c.who, c.method, c.path, got, c.want))
		}
		why := ""
		if c.why != "" {
			why = "  (" + c.why + ")"
		}
		d.out.printf("  %s %-6s %-5s %-52s → %d%s\n", mark, c.who, c.method, shortPath(c.path), got, why)
	}
	if len(wrong) > 0 {
		return fmt.Errorf("access not as contract §7 says: %v", wrong)
	}
	return nil
}

// shortPath shortens the UUIDs of a path to their first block.
func shortPath(p string) string {
	var out []byte
	for i := 0; i < len(p); {
		if i+36 <= len(p) {
			if _, err := uuid.Parse(p[i : i+36]); err == nil {
				out = append(out, short(p[i:i+36])...)
				i += 36
				continue
			}
		}
		out = append(out, p[i])
		i++
	}
	return string(out)
}
