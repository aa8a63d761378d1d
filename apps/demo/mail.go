package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ordersaga/ordersaga/libs/gatewayclient"
)

// emailTimeout bounds the wait for a paid order's confirmation e-mail: its
// invoice is issued, then the e-mail sent (contract §6, §8).
const emailTimeout = 60 * time.Second

// confirmationEmail shows the confirmation of the first paid order as
// Mailpit received it: its record (GET /api/notifications) and the e-mail's
// subject and attachment (Mailpit's /api/v1/messages, /api/v1/message/{ID}).
// Where notification-service or invoice-service is not running it says so
// and fails nothing.
func (d *demo) confirmationEmail(ctx context.Context, orders []*tracked) error {
	var paid *tracked
	for _, t := range orders {
		if t.Order.Status == "PAID" {
			paid = t
			break
		}
	}
	if paid == nil {
		return nil
	}
	d.out.printf("\n  The confirmation e-mail of order %s (GET /api/notifications?orderId=…, then Mailpit's API)\n", paid.ID)
	var ready struct{ Checks map[string]string }
	_ = getJSON(ctx, d.cfg.GatewayURL+"/readyz", &ready)
	for _, service := range []string{"notification-service", "invoice-service"} {
		if _, ok := ready.Checks[service]; !ok {
			d.out.printf("  none: %s is not running here yet (the e-mail needs it, contract §6, §8)\n", service)
			return nil
		}
	}
	var rec *gatewayclient.Notification
	err := poll(ctx, emailTimeout, func() (bool, error) {
		data, err := d.api.notifications(ctx, paid.ID)
		if err != nil {
			return true, err
		}
		for _, n := range data {
			if n.Kind == "ORDER_CONFIRMED" && n.Status != "PENDING" {
				rec = &n
			}
		}
		return rec != nil, nil
	})
	var se *statusError
	switch {
	case errors.As(err, &se):
		d.out.printf("  none: notification-service is not running (%s)\n", se.Error())
		return nil
	case rec == nil:
		d.out.printf("  none within %s: the e-mail goes out once invoice-service (contract §6) issues the invoice\n", emailTimeout)
		return nil
	}
	d.out.printf("  record: %s to %s, %s\n", rec.Status, rec.To, rec.Subject)
	if rec.Status != "SENT" {
		return nil
	}
	return d.showMailpit(ctx, paid.ID)
}

// showMailpit prints the subject and attachments of the order's
// confirmation as Mailpit holds it.
func (d *demo) showMailpit(ctx context.Context, orderID string) error {
	var list struct {
		Messages []struct{ ID, MessageID, Subject string }
	}
	if err := getJSON(ctx, d.cfg.MailpitURL+"/api/v1/messages?limit=500", &list); err != nil {
		d.out.printf("  Mailpit's API at %s did not answer (another mail server?): %v\n", d.cfg.MailpitURL, err)
		return nil
	}
	var ids []string
	for _, m := range list.Messages {
		if strings.Trim(m.MessageID, "<>") == orderID+".ORDER_CONFIRMED@ordersaga.local" {
			ids = append(ids, m.ID)
		}
	}
	if len(ids) == 0 {
		d.out.printf("  not found in Mailpit at %s (another mail server?)\n", d.cfg.MailpitURL)
		return nil
	}
	var msg struct {
		Subject     string
		Attachments []struct {
			FileName, ContentType string
			Size                  int
		}
	}
	if err := getJSON(ctx, d.cfg.MailpitURL+"/api/v1/message/"+ids[0], &msg); err != nil {
		return err
	}
	d.out.printf("  Mailpit received: %q (%d with this Message-ID)\n", msg.Subject, len(ids))
	for _, a := range msg.Attachments {
		d.out.printf("    attached: %s (%s, %d bytes)\n", a.FileName, a.ContentType, a.Size)
	}
	d.out.printf("  all e-mails: %s/api/v1/messages (compose's Mailpit shows them in its UI)\n", d.cfg.MailpitURL)
	return nil
}

func getJSON(ctx context.Context, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
