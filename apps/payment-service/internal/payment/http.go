package payment

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/ordersaga/ordersaga/libs/web"
)

// Routes adds the payment queries the gateway calls.
func Routes(e *gin.Engine, s *Service) {
	e.GET("/api/payments", func(c *gin.Context) {
		paging, ok := web.ParsePaging(c)
		if !ok {
			return
		}
		status, ok := web.ParseEnumQuery(c, "status", Statuses)
		if !ok {
			return
		}
		// The gateway filters a customer's list by their id (contract §7).
		userID, ok := web.ParseUUIDQuery(c, "userId")
		if !ok {
			return
		}
		payments, total, err := s.List(c, status, userID, paging.Limit, paging.Offset())
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, web.NewPage(payments, paging, total))
	})
	e.GET("/api/payments/stats", func(c *gin.Context) {
		st, err := s.Stats(c)
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, st)
	})
	e.GET("/api/payments/:id", func(c *gin.Context) {
		id, ok := web.PathUUID(c, "id")
		if !ok {
			return
		}
		p, err := s.Get(c, id)
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, p)
	})
	e.GET("/api/payments/order/:orderId", func(c *gin.Context) {
		id, ok := web.PathUUID(c, "orderId")
		if !ok {
			return
		}
		p, err := s.ByOrder(c, id)
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, p)
	})
	e.GET("/api/payments/order/:orderId/timeline", func(c *gin.Context) {
		id, ok := web.PathUUID(c, "orderId")
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
	web.Fail(c, http.StatusServiceUnavailable, "the payment store is unavailable")
}
