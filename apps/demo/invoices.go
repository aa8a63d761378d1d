package main

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// invoice is the part of an Invoice (contract §6) the tour shows.
type invoice struct {
	ID         string `json:"id"`
	Number     string `json:"number"`
	Status     string `json:"status"`
	Total      int64  `json:"total"`
	Currency   string `json:"currency"`
	CreditNote *struct {
		Number string `json:"number"`
	} `json:"creditNote"`
}

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
		var inv invoice
		if credited && errors.Is(d.api.do(ctx, http.MethodGet, "/api/orders/"+t.ID+"/invoice", nil, nil, &inv, http.StatusOK), errNotFound) {
			continue // refunded without ever being paid (cancelled while its payment was decided)
		}
		err := poll(ctx, invoiceWait, func() (bool, error) {
			err := d.api.do(ctx, http.MethodGet, "/api/orders/"+t.ID+"/invoice", nil, nil, &inv, http.StatusOK)
			if errors.Is(err, errNotFound) {
				return false, nil
			}
			return err == nil && (!credited || inv.CreditNote != nil), err
		})
		if err != nil {
			d.out.printf("    %-34s no invoice yet (%v)\n", t.Name, err)
			continue
		}
		d.out.printf("    %-34s %s  %s  PDF: %s/api/invoices/%s/pdf\n", t.Name, inv.Number, money(inv.Total, inv.Currency), d.cfg.GatewayURL, inv.ID)
		if inv.CreditNote != nil {
			d.out.printf("    %-34s %s  credits %s  PDF: %s/api/invoices/%s/credit-note/pdf\n", "", inv.CreditNote.Number, inv.Number, d.cfg.GatewayURL, inv.ID)
		}
	}
}
