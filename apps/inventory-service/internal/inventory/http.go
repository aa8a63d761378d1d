package inventory

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/web"
)

// Routes adds the product queries the gateway calls, and the inventory's
// timeline of an order's saga.
func Routes(e *gin.Engine, s *Service) {
	e.GET("/api/products", func(c *gin.Context) {
		paging, ok := web.ParsePaging(c)
		if !ok {
			return
		}
		products, total, err := s.List(c, paging.Limit, paging.Offset())
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, web.NewPage(products, paging, total))
	})
	e.GET("/api/products/:sku", func(c *gin.Context) {
		sku, ok := pathSKU(c)
		if !ok {
			return
		}
		p, err := s.Get(c, sku)
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, p)
	})
	e.GET("/api/products/:sku/adjustments", func(c *gin.Context) {
		sku, ok := pathSKU(c)
		if !ok {
			return
		}
		paging, ok := web.ParsePaging(c)
		if !ok {
			return
		}
		adjustments, total, err := s.Adjustments(c, sku, paging.Limit, paging.Offset())
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, web.NewPage(adjustments, paging, total))
	})
	e.GET("/api/inventory/orders/:id/timeline", web.TimelineByID("id", s.Timeline, fail))
}

// pathSKU is the sku of the path; a path that cannot be a sku names no
// product (404).
func pathSKU(c *gin.Context) (string, bool) {
	sku := c.Param("sku")
	if !events.IsSKU(sku) {
		web.Fail(c, http.StatusNotFound, ErrNotFound.Error())
		return "", false
	}
	return sku, true
}

// fail maps a service error to its problem response.
var fail = web.StoreErrors("inventory", ErrNotFound)
