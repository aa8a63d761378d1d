package gateway

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/ordersaga/ordersaga/libs/web"
)

// notificationStatuses are the statuses of an e-mail (contract §8).
var notificationStatuses = []string{"PENDING", "SENT", "FAILED", "SKIPPED"}

// listNotifications forwards the e-mail log's query (a customer's own,
// ownQuery) to notification-service, or answers 503 where it is not a
// participant.
func (g *Gateway) listNotifications(c *gin.Context) {
	if _, ok := web.ParseListQuery(c, notificationStatuses); !ok {
		return
	}
	if _, ok := web.ParseUUIDQuery(c, "orderId"); !ok {
		return
	}
	if g.notifications.base == "" {
		c.Header("Retry-After", "1")
		web.Fail(c, http.StatusServiceUnavailable, NotificationService+" is unavailable")
		return
	}
	g.forward(c, g.notifications, "/api/notifications")
}
