// Package web is the HTTP side every ordersaga service shares: a gin engine
// whose errors are RFC 9457 problem+json, request ids, one log line and
// metrics per request, and the /healthz, /readyz and /metrics endpoints.
package web

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// ProblemContentType is the media type of every error response.
const ProblemContentType = "application/problem+json"

// Problem is an RFC 9457 problem details body.
type Problem struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail"`
	Errors []FieldError `json:"errors,omitempty"`
}

// FieldError names one invalid field of a request.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

var problemTypes = map[int]string{
	http.StatusBadRequest:            "bad-request",
	http.StatusNotFound:              "not-found",
	http.StatusMethodNotAllowed:      "method-not-allowed",
	http.StatusConflict:              "conflict",
	http.StatusRequestEntityTooLarge: "payload-too-large",
	http.StatusUnsupportedMediaType:  "unsupported-media-type",
	http.StatusUnprocessableEntity:   "validation-error",
	http.StatusInternalServerError:   "internal-error",
	http.StatusBadGateway:            "bad-gateway",
	http.StatusServiceUnavailable:    "service-unavailable",
	http.StatusGatewayTimeout:        "gateway-timeout",
}

// NewProblem returns the problem for status with detail and field errors.
func NewProblem(status int, detail string, errs ...FieldError) Problem {
	slug, ok := problemTypes[status]
	if !ok {
		slug = strings.ToLower(strings.ReplaceAll(http.StatusText(status), " ", "-"))
	}
	return Problem{
		Type:   "https://ordersaga.dev/problems/" + slug,
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
		Errors: errs,
	}
}

// Fail writes a problem response and stops the handler chain.
func Fail(c *gin.Context, status int, detail string, errs ...FieldError) {
	WriteProblem(c, NewProblem(status, detail, errs...))
}

// WriteProblem writes p and stops the handler chain.
func WriteProblem(c *gin.Context, p Problem) {
	// gin's JSON renderer keeps a Content-Type that is already set.
	c.Header("Content-Type", ProblemContentType)
	c.AbortWithStatusJSON(p.Status, p)
}
