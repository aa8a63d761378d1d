package notify

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/ordersaga/ordersaga/libs/web"
)

// Routes adds the e-mail log's query (contract §8), which the gateway
// proxies.
func Routes(e *gin.Engine, s *Service) {
	e.GET("/api/notifications", func(c *gin.Context) {
		paging, ok := web.ParsePaging(c)
		if !ok {
			return
		}
		var f Filter
		if f.UserID, ok = web.ParseUUIDQuery(c, "userId"); !ok {
			return
		}
		if f.OrderID, ok = web.ParseUUIDQuery(c, "orderId"); !ok {
			return
		}
		if f.Status, ok = web.ParseEnumQuery(c, "status", Statuses); !ok {
			return
		}
		list, total, err := s.List(c, f, paging.Limit, paging.Offset())
		if err != nil {
			_ = c.Error(err) // for the access log (libs/web)
			web.Fail(c, http.StatusServiceUnavailable, "the e-mail log is unavailable")
			return
		}
		c.JSON(http.StatusOK, web.NewPage(list, paging, total))
	})
}
