package order

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/web"
)

// Routes adds the order queries the gateway calls.
func Routes(e *gin.Engine, s *Service) {
	e.GET("/api/orders", func(c *gin.Context) {
		paging, ok := web.ParsePaging(c)
		if !ok {
			return
		}
		status, ok := web.ParseEnumQuery(c, "status", events.OrderStatuses)
		if !ok {
			return
		}
		userID, ok := web.ParseUUIDQuery(c, "userId")
		if !ok {
			return
		}
		orders, total, err := s.List(c, Filter{Status: status, UserID: userID}, paging.Limit, paging.Offset())
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, web.NewPage(orders, paging, total))
	})
	e.GET("/api/orders/:id", func(c *gin.Context) {
		id, ok := web.PathUUID(c, "id")
		if !ok {
			return
		}
		o, err := s.Get(c, id)
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, o)
	})
	e.GET("/api/orders/:id/timeline", func(c *gin.Context) {
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
	})
}

// fail maps a service error to its problem response.
func fail(c *gin.Context, err error) {
	if errors.Is(err, ErrNotFound) {
		web.Fail(c, http.StatusNotFound, err.Error())
		return
	}
	_ = c.Error(err) // for the access log (libs/web); the answer is the problem below
	web.Fail(c, http.StatusServiceUnavailable, "the order store is unavailable")
}
