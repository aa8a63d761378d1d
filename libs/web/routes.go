package web

import (
	"context"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
)

// ByID is the handler of a GET route whose path parameter param is the
// UUID of what get returns: a malformed id is PathUUID's 400 problem, an
// error of get is answered by fail (the service's mapping of its errors to
// problems), and what get returns is written by write.
func ByID[T any](param string, get func(ctx context.Context, id uuid.UUID) (T, error), fail func(*gin.Context, error),
	write func(*gin.Context, T)) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, ok := PathUUID(c, param)
		if !ok {
			return
		}
		v, err := get(c, id)
		if err != nil {
			fail(c, err)
			return
		}
		write(c, v)
	}
}

// GetByID is ByID answering what get returns as the 200 JSON body.
func GetByID[T any](param string, get func(ctx context.Context, id uuid.UUID) (T, error), fail func(*gin.Context, error)) gin.HandlerFunc {
	return ByID(param, get, fail, func(c *gin.Context, v T) { c.JSON(http.StatusOK, v) })
}

// TimelineByID is the handler of GET …/:param/timeline, a service's part of
// the timeline of the order that param names: {"orderId", "events"} with
// the entries timeline returns, or GetByID's problems.
func TimelineByID[T any](param string, timeline func(ctx context.Context, orderID uuid.UUID) ([]T, error), fail func(*gin.Context, error)) gin.HandlerFunc {
	return GetByID(param, func(ctx context.Context, id uuid.UUID) (gin.H, error) {
		entries, err := timeline(ctx, id)
		return gin.H{"orderId": id, "events": entries}, err
	}, fail)
}

// StoreErrors returns the mapping of a query service's errors to problems:
// an error that is one of notFound is a 404 with the error's text; any
// other is a failure of the service's store, kept for the access log and
// answered 503 "the <store> store is unavailable", without its cause.
func StoreErrors(store string, notFound ...error) func(*gin.Context, error) {
	return func(c *gin.Context, err error) {
		for _, target := range notFound {
			if errors.Is(err, target) {
				Fail(c, http.StatusNotFound, err.Error())
				return
			}
		}
		_ = c.Error(err) // for the access log; the answer is the problem below
		Fail(c, http.StatusServiceUnavailable, "the "+store+" store is unavailable")
	}
}
