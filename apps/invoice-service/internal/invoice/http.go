package invoice

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/ordersaga/ordersaga/libs/web"
)

// Routes adds the invoice queries the gateway calls (contract §6), the
// PDFs notification-service fetches, and the invoice service's timeline of
// an order's saga.
func Routes(e *gin.Engine, s *Service) {
	e.GET("/api/invoices", s.listRoute)
	e.GET("/api/invoices/:id", s.getRoute)
	e.GET("/api/invoices/:id/pdf", s.pdfRoute)
	e.GET("/api/invoices/:id/credit-note/pdf", s.creditNotePDFRoute)
	e.GET("/api/invoices/order/:id", s.ofOrderRoute)
	e.GET("/api/invoices/order/:id/timeline", s.timelineRoute)
}

func (s *Service) listRoute(c *gin.Context) {
	paging, ok := web.ParsePaging(c)
	if !ok {
		return
	}
	status, ok := web.ParseEnumQuery(c, "status", Statuses)
	if !ok {
		return
	}
	userID, ok := web.ParseUUIDQuery(c, "userId")
	if !ok {
		return
	}
	invoices, total, err := s.List(c, Filter{Status: status, UserID: userID}, paging.Limit, paging.Offset())
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, web.NewPage(invoices, paging, total))
}

func (s *Service) getRoute(c *gin.Context) {
	id, ok := web.PathUUID(c, "id")
	if !ok {
		return
	}
	inv, err := s.Get(c, id)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, inv)
}

func (s *Service) ofOrderRoute(c *gin.Context) {
	id, ok := web.PathUUID(c, "id")
	if !ok {
		return
	}
	inv, err := s.OfOrder(c, id)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, inv)
}

func (s *Service) pdfRoute(c *gin.Context) {
	id, ok := web.PathUUID(c, "id")
	if !ok {
		return
	}
	pdf, err := s.PDF(c, id)
	if err != nil {
		fail(c, err)
		return
	}
	c.Data(http.StatusOK, "application/pdf", pdf)
}

func (s *Service) creditNotePDFRoute(c *gin.Context) {
	id, ok := web.PathUUID(c, "id")
	if !ok {
		return
	}
	pdf, err := s.CreditNotePDF(c, id)
	if err != nil {
		fail(c, err)
		return
	}
	c.Data(http.StatusOK, "application/pdf", pdf)
}

func (s *Service) timelineRoute(c *gin.Context) {
	id, ok := web.PathUUID(c, "id")
	if !ok {
		return
	}
	entries, err := s.Timeline(c, id)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"orderId": id, "events": entries})
}

// fail maps a service error to its problem response.
func fail(c *gin.Context, err error) {
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrNoCreditNote) {
		web.Fail(c, http.StatusNotFound, err.Error())
		return
	}
	_ = c.Error(err) // for the access log (libs/web); the answer is the problem below
	web.Fail(c, http.StatusServiceUnavailable, "the invoice store is unavailable")
}
