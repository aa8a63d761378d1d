package web_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/web"
)

// server is an engine with one GET and one POST route, served over real
// HTTP: only a real server drops the body of a HEAD answer.
func server(t testing.TB) (string, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	e := web.NewEngine(slog.New(slog.DiscardHandler), reg, nil)
	e.GET("/things/:id", func(c *gin.Context) {
		if web.IsHead(c) {
			c.Header("X-Head", "seen")
		}
		c.JSON(http.StatusOK, gin.H{"id": c.Param("id")})
	})
	e.POST("/things", func(c *gin.Context) { c.Status(http.StatusCreated) })
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv.URL, reg
}

func TestMethods(t *testing.T) {
	t.Parallel()
	base, _ := server(t)
	cases := []struct {
		name        string
		method      string
		path        string
		status      int
		allow       string
		contentType string
		body        string
	}{
		{"GET", http.MethodGet, "/things/1", 200, "", "application/json; charset=utf-8", `{"id":"1"}`},
		{"HEAD of a GET route: its headers, no body", http.MethodHead, "/things/1", 200, "", "application/json; charset=utf-8", ""},
		{"HEAD of an unknown route", http.MethodHead, "/nothing", 404, "", web.ProblemContentType, ""},
		{"HEAD of a POST route", http.MethodHead, "/things", 405, "OPTIONS, POST", web.ProblemContentType, ""},
		{"OPTIONS of a GET route", http.MethodOptions, "/things/1", 204, "GET, HEAD, OPTIONS", "", ""},
		{"OPTIONS of a POST route", http.MethodOptions, "/things", 204, "OPTIONS, POST", "", ""},
		{"OPTIONS of an unknown route", http.MethodOptions, "/nothing", 404, "", web.ProblemContentType, "no route"},
		{"wrong method lists HEAD and OPTIONS", http.MethodDelete, "/things/1", 405, "GET, HEAD, OPTIONS", web.ProblemContentType, "not allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequest(tc.method, base+tc.path, nil)
			require.NoError(t, err)
			req.Header.Set(web.RequestIDHeader, "req-"+tc.method)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, tc.status, resp.StatusCode, "status; body %s", body)
			assert.Equal(t, tc.allow, resp.Header.Get("Allow"), "Allow header")
			assert.Equal(t, tc.contentType, resp.Header.Get("Content-Type"), "Content-Type")
			assert.Equal(t, "req-"+tc.method, resp.Header.Get(web.RequestIDHeader), "the request id is echoed once")
			assert.Len(t, resp.Header.Values(web.RequestIDHeader), 1, "one request id")
			if tc.body == "" || tc.method == http.MethodHead {
				assert.Empty(t, body, "no body")
			} else {
				assert.Contains(t, string(body), tc.body)
			}
		})
	}
	t.Run("a HEAD is served as a GET that knows it", func(t *testing.T) {
		t.Parallel()
		resp, err := http.Head(base + "/things/2")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, "seen", resp.Header.Get("X-Head"), "web.IsHead in the handler")
		assert.Equal(t, int64(len(`{"id":"2"}`)), resp.ContentLength, "Content-Length of the GET answer")
	})
}

func TestHeadIsCountedOnceUnderItsRoute(t *testing.T) {
	t.Parallel()
	base, reg := server(t)
	resp, err := http.Head(base + "/things/1")
	require.NoError(t, err)
	resp.Body.Close()
	assert.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP ordersaga_http_requests_total HTTP requests by route, method and status.
# TYPE ordersaga_http_requests_total counter
ordersaga_http_requests_total{method="HEAD",route="/things/:id",status="200"} 1
`), "ordersaga_http_requests_total"), "counted as HEAD of the GET route, not as unmatched")
}

func TestMetricsShowTheBuild(t *testing.T) {
	t.Parallel()
	base, _ := server(t)
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	// Unstamped, as go test builds it.
	want := `ordersaga_build_info{commit="unknown",goversion="` + runtime.Version() + `",version="dev"} 1`
	assert.Contains(t, strings.Split(string(body), "\n"), want, "/metrics serves the build as one series")
}
