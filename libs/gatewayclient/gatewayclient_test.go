package gatewayclient

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func answer(status int) *http.Response {
	return &http.Response{StatusCode: status, Request: &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/api/orders/x"}}}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		status   int
		body     string
		want     string // "" for no error
		notFound bool
	}{
		{"the status wanted", http.StatusOK, `{"id":"x"}`, "", false},
		{"a problem's detail", http.StatusNotFound, `{"title":"Not Found","detail":"order x not found"}`, "GET /api/orders/x: HTTP 404: order x not found", true},
		{"a problem's title when it has no detail", http.StatusServiceUnavailable, `{"title":"Service Unavailable"}`, "GET /api/orders/x: HTTP 503: Service Unavailable", false},
		{"no problem at all", http.StatusBadGateway, `<html>`, "GET /api/orders/x: HTTP 502", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := Check(answer(tc.status), []byte(tc.body), http.StatusOK)
			if tc.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tc.want, err.Error())
			assert.Equal(t, tc.notFound, errors.Is(err, ErrNotFound), "a 404 is ErrNotFound, nothing else is")
			var se *StatusError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tc.status, se.Status)
		})
	}
}

func TestBearerAuth(t *testing.T) {
	t.Parallel()
	for token, want := range map[string]string{"tok": "Bearer tok", "": ""} {
		req, err := http.NewRequest(http.MethodGet, "http://gateway/api/orders", nil)
		require.NoError(t, err)
		require.NoError(t, BearerAuth(token)(context.Background(), req))
		assert.Equal(t, want, req.Header.Get("Authorization"), "token %q", token)
	}
}
