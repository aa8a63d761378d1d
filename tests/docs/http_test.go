// Package docs checks the request collection docs/ordersaga.http against
// the contract: every request is a route of docs/contract.md, and the main
// flows are all there.
package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const root = "../.."

// route is a method and a path template, {name} matching any segment.
type route struct{ method, path string }

func (r route) matches(method, path string) bool {
	if r.method != method {
		return false
	}
	want, got := strings.Split(r.path, "/"), strings.Split(path, "/")
	if len(want) != len(got) {
		return false
	}
	for i := range want {
		if !strings.HasPrefix(want[i], "{") && want[i] != got[i] {
			return false
		}
	}
	return true
}

var (
	contractRoute = regexp.MustCompile("`(GET|POST|PATCH|PUT|DELETE) (/api/[^` ?]*)")
	requestLine   = regexp.MustCompile(`^(GET|POST|PATCH|PUT|DELETE) \{\{baseUrl\}\}(/[^ ?]*)`)
)

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, path))
	require.NoError(t, err)
	return string(b)
}

func TestHTTPCollectionFollowsTheContract(t *testing.T) {
	var routes []route
	for _, m := range contractRoute.FindAllStringSubmatch(read(t, "docs/contract.md"), -1) {
		routes = append(routes, route{m[1], m[2]})
	}
	require.NotEmpty(t, routes, "docs/contract.md: no route found")
	var requests []route
	for _, line := range strings.Split(read(t, "docs/ordersaga.http"), "\n") {
		m := requestLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		req := route{m[1], m[2]}
		requests = append(requests, req)
		known := false
		for _, r := range routes {
			known = known || r.matches(req.method, req.path)
		}
		assert.True(t, known, "docs/ordersaga.http: %s %s is not a route of docs/contract.md", req.method, req.path)
	}
	// The main flows: each of these routes has a request.
	for _, flow := range []route{
		{"POST", "/api/auth/register"}, {"POST", "/api/auth/login"},
		{"POST", "/api/orders"}, {"GET", "/api/orders/{id}"}, {"PATCH", "/api/orders/{id}/cancel"},
		{"GET", "/api/orders/{id}/timeline"}, {"GET", "/api/payments"}, {"GET", "/api/products"},
		{"POST", "/api/products"}, {"GET", "/api/invoices"}, {"GET", "/api/notifications"},
	} {
		found := false
		for _, req := range requests {
			found = found || flow.matches(req.method, req.path)
		}
		assert.True(t, found, "docs/ordersaga.http: no request for %s %s", flow.method, flow.path)
	}
}

func TestRouteMatching(t *testing.T) {
	r := route{"GET", "/api/orders/{id}/timeline"}
	assert.True(t, r.matches("GET", "/api/orders/{{orderId}}/timeline"))
	assert.False(t, r.matches("POST", "/api/orders/{{orderId}}/timeline"))
	assert.False(t, r.matches("GET", "/api/orders/{{orderId}}"))
	assert.False(t, r.matches("GET", "/api/orders/x/events"))
}
