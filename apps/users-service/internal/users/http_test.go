package users

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/web"
)

func serve(t *testing.T) (*Service, *httptest.Server) {
	t.Helper()
	s := newService(t)
	gin.SetMode(gin.ReleaseMode)
	e := web.NewEngine(slog.New(slog.DiscardHandler), prometheus.NewRegistry(), nil)
	Routes(e, s)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return s, srv
}

func send(t *testing.T, srv *httptest.Server, method, path, contentType, body, token string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(data)
}

func TestHTTP(t *testing.T) {
	t.Parallel()
	_, srv := serve(t)
	const js = "application/json"
	cases := []struct {
		name, method, path, contentType, body string
		status                                int
		field                                 string
	}{
		{"register", "POST", "/api/auth/register", js, `{"email":"Eve@Example.com","password":"eve's long password","name":"Eve"}`, 201, ""},
		{"register again", "POST", "/api/auth/register", js, `{"email":"eve@example.com","password":"eve's long password","name":"Eve"}`, 409, ""},
		{"a short password", "POST", "/api/auth/register", js, `{"email":"x@example.com","password":"short","name":"X"}`, 422, "password"},
		{"an unknown field", "POST", "/api/auth/register", js, `{"email":"x@example.com","password":"long enough pw","name":"X","admin":true}`, 400, ""},
		{"a wrong type", "POST", "/api/auth/register", js, `{"email":1,"password":"long enough pw","name":"X"}`, 400, ""},
		{"not JSON", "POST", "/api/auth/register", "text/plain", `hello`, 415, ""},
		{"login without password", "POST", "/api/auth/login", js, `{"email":"eve@example.com"}`, 422, "password"},
		{"login with a wrong password", "POST", "/api/auth/login", js, `{"email":"eve@example.com","password":"nope nope nope"}`, 401, ""},
		{"me without a token", "GET", "/api/users/me", "", "", 401, ""},
		{"the JWKS", "GET", "/api/auth/jwks.json", "", "", 200, ""},
	}
	for _, tc := range cases {
		resp, body := send(t, srv, tc.method, tc.path, tc.contentType, tc.body, "")
		assert.Equal(t, tc.status, resp.StatusCode, "%s: %s", tc.name, body)
		if tc.status >= 400 {
			assert.Equal(t, web.ProblemContentType, resp.Header.Get("Content-Type"), tc.name)
		}
		if tc.status == 401 && tc.path != "/api/auth/login" {
			assert.Equal(t, "Bearer", resp.Header.Get("WWW-Authenticate"), tc.name)
		}
		if tc.field != "" {
			assert.Contains(t, body, `"field":"`+tc.field+`"`, tc.name)
		}
	}

	resp, body := send(t, srv, "POST", "/api/auth/login", js, `{"email":"EVE@example.com","password":"eve's long password"}`, "")
	require.Equal(t, 200, resp.StatusCode, body)
	var tok Token
	require.NoError(t, json.Unmarshal([]byte(body), &tok))
	resp, body = send(t, srv, "GET", "/api/users/me", "", "", tok.AccessToken)
	assert.Equal(t, 200, resp.StatusCode, body)
	assert.Contains(t, body, `"email":"eve@example.com"`)
	resp, _ = send(t, srv, "GET", "/api/users", "", "", tok.AccessToken)
	assert.Equal(t, 403, resp.StatusCode, "a customer lists no users")
	resp, _ = send(t, srv, "PATCH", "/api/users/"+"00000000-0000-4000-8000-000000000001", js, `{"roles":["admin"]}`, tok.AccessToken)
	assert.Equal(t, 403, resp.StatusCode, "a customer changes no roles")
}
