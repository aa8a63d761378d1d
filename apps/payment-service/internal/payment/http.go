package payment

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/ordersaga/ordersaga/libs/web"
)

// Routes adds the payment queries the gateway calls.
func Routes(e *gin.Engine, s *Service) {
	e.GET("/api/payments", func(c *gin.Context) {
		// The gateway filters a customer's list by their id (contract §7).
		q, ok := web.ParseListQuery(c, Statuses)
		if !ok {
			return
		}
		payments, total, err := s.List(c, q.Status, q.UserID, q.Limit, q.Offset())
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, web.NewPage(payments, q.Paging, total))
	})
	e.GET("/api/payments/stats", func(c *gin.Context) {
		st, err := s.Stats(c)
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, st)
	})
	e.GET("/api/payments/:id", web.GetByID("id", s.Get, fail))
	e.GET("/api/payments/order/:orderId", web.GetByID("orderId", s.ByOrder, fail))
	e.GET("/api/payments/order/:orderId/timeline", web.TimelineByID("orderId", s.Timeline, fail))
}

// fail maps a service error to its problem response.
var fail = web.StoreErrors("payment", ErrNotFound)
