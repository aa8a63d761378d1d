package gateway

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/ordersaga/ordersaga/libs/web"
)

// InvoiceService names invoice-service (contract §6).
const InvoiceService = "invoice-service"

var invoiceStatuses = []string{"ISSUED", "CREDITED"}

// invoiceRoutes adds the invoice queries of contract §6: a customer sees
// only their own (§7).
func (g *Gateway) invoiceRoutes(api *gin.RouterGroup) {
	api.GET("/invoices", g.ownQuery, g.listInvoices)
	api.GET("/invoices/:id", g.ownInvoice, g.invoice(""))
	api.GET("/invoices/:id/pdf", g.ownInvoice, g.invoice("/pdf"))
	api.GET("/invoices/:id/credit-note/pdf", g.ownInvoice, g.invoice("/credit-note/pdf"))
	api.GET("/orders/:id/invoice", g.ownOrder("id"), g.invoiceOfOrder)
}

func (g *Gateway) listInvoices(c *gin.Context) {
	if _, ok := web.ParseListQuery(c, invoiceStatuses); !ok {
		return
	}
	g.forwardInvoices(c, "/api/invoices")
}

// invoice forwards GET /api/invoices/{id}<suffix>: the invoice, or one of
// its PDFs (application/pdf, passed on as it is).
func (g *Gateway) invoice(suffix string) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, ok := web.PathUUID(c, "id")
		if !ok {
			return
		}
		g.forwardInvoices(c, "/api/invoices/"+id.String()+suffix)
	}
}

func (g *Gateway) invoiceOfOrder(c *gin.Context) {
	id, ok := orderID(c, "id")
	if !ok {
		return
	}
	g.forwardInvoices(c, "/api/invoices/order/"+id.String())
}

// ownInvoice answers a customer's request about an invoice that is not
// theirs as if it did not exist (404).
func (g *Gateway) ownInvoice(c *gin.Context) {
	p, ok := g.customer(c)
	if !ok {
		return
	}
	id, err := web.ParseUUID(c.Param("id"))
	if err != nil {
		return // the handler's 400
	}
	if g.invoices.base == "" {
		g.invoicesUnavailable(c)
		return
	}
	var inv struct {
		UserID uuid.UUID `json:"userId"`
	}
	err = g.invoices.getJSON(requestContext(c), "/api/invoices/"+id.String(), &inv)
	if err == nil && inv.UserID != p.UserID {
		err = ErrNotFound
	}
	if errors.Is(err, ErrNotFound) {
		err = fmt.Errorf("invoice %s: %w", id, ErrNotFound)
	}
	if err != nil {
		g.fail(c, err)
	}
}

// forwardInvoices forwards an invoice query to invoice-service, or answers
// 503 where it is not a participant.
func (g *Gateway) forwardInvoices(c *gin.Context, path string) {
	if g.invoices.base == "" {
		g.invoicesUnavailable(c)
		return
	}
	g.forward(c, g.invoices, path)
}

func (g *Gateway) invoicesUnavailable(c *gin.Context) {
	c.Header("Retry-After", "1")
	web.Fail(c, http.StatusServiceUnavailable, InvoiceService+" is unavailable")
}
