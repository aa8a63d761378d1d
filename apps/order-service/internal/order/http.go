package order

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/web"
)

// Routes adds the order queries the gateway calls.
func Routes(e *gin.Engine, s *Service) {
	e.GET("/api/orders", func(c *gin.Context) {
		q, ok := web.ParseListQuery(c, events.OrderStatuses)
		if !ok {
			return
		}
		orders, total, err := s.List(c, Filter{Status: q.Status, UserID: q.UserID}, q.Limit, q.Offset())
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, web.NewPage(orders, q.Paging, total))
	})
	e.GET("/api/orders/:id", web.GetByID("id", s.Get, fail))
	e.GET("/api/orders/:id/timeline", web.TimelineByID("id", s.Timeline, fail))
}

// fail maps a service error to its problem response.
var fail = web.StoreErrors("order", ErrNotFound)
