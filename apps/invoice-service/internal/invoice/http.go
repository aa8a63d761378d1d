package invoice

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/ordersaga/ordersaga/libs/web"
)

// Routes adds the invoice queries the gateway calls (contract §6), the
// PDFs notification-service fetches, and the invoice service's timeline of
// an order's saga.
func Routes(e *gin.Engine, s *Service) {
	e.GET("/api/invoices", s.listRoute)
	e.GET("/api/invoices/:id", web.GetByID("id", s.Get, fail))
	e.GET("/api/invoices/:id/pdf", pdfByID(s.PDF))
	e.GET("/api/invoices/:id/credit-note/pdf", pdfByID(s.CreditNotePDF))
	e.GET("/api/invoices/order/:id", web.GetByID("id", s.OfOrder, fail))
	e.GET("/api/invoices/order/:id/timeline", web.TimelineByID("id", s.Timeline, fail))
}

func (s *Service) listRoute(c *gin.Context) {
	q, ok := web.ParseListQuery(c, Statuses)
	if !ok {
		return
	}
	invoices, total, err := s.List(c, Filter{Status: q.Status, UserID: q.UserID}, q.Limit, q.Offset())
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, web.NewPage(invoices, q.Paging, total))
}

// pdfByID is the handler of a route answering the PDF that get renders of
// the document that the path parameter id names.
func pdfByID(get func(ctx context.Context, id uuid.UUID) ([]byte, error)) gin.HandlerFunc {
	return web.ByID("id", get, fail, func(c *gin.Context, pdf []byte) { c.Data(http.StatusOK, "application/pdf", pdf) })
}

// fail maps a service error to its problem response.
var fail = web.StoreErrors("invoice", ErrNotFound, ErrNoCreditNote)
