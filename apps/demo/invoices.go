package main

import (
	"context"
	"errors"
	"time"

	"github.com/ordersaga/ordersaga/libs/gatewayclient"
)

// invoiceWait bounds the wait for an invoice: invoice-service issues it
// moments after the order is PAID.
const invoiceWait = 15 * time.Second

// writeInvoices shows the invoice of every order that was paid, with where
// to download its PDF, and the credit note of those cancelled since.
func (d *demo) writeInvoices(ctx context.Context, orders []*tracked) {
	d.out.printf("\n  Invoices (GET /api/orders/{id}/invoice): one per paid order, numbered without gaps; a credit note when it is cancelled\n")
	for _, t := range orders {
		credited := t.Payment == "REFUNDED"
		if t.Order.Status != "PAID" && !credited {
			continue
		}
		var inv gatewayclient.Invoice
		if credited {
			if _, err := d.api.invoiceOfOrder(ctx, t.ID); errors.Is(err, errNotFound) {
				continue // refunded without ever being paid (cancelled while its payment was decided)
			}
		}
		err := poll(ctx, invoiceWait, func() (bool, error) {
			var err error
			inv, err = d.api.invoiceOfOrder(ctx, t.ID)
			if errors.Is(err, errNotFound) {
				return false, nil
			}
			return err == nil && (!credited || inv.CreditNote != nil), err
		})
		if err != nil {
			d.out.printf("    %-34s no invoice yet (%v)\n", t.Name, err)
			continue
		}
		d.out.printf("    %-34s %s  %s  PDF: %s/api/invoices/%s/pdf\n", t.Name, inv.Number, money(inv.Total, inv.Currency), d.cfg.GatewayURL, inv.Id)
		if inv.CreditNote != nil {
			d.out.printf("    %-34s %s  credits %s  PDF: %s/api/invoices/%s/credit-note/pdf\n", "", inv.CreditNote.Number, inv.Number, d.cfg.GatewayURL, inv.Id)
		}
	}
}
