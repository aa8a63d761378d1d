package web_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/web"
)

var errMissing = errors.New("thing not found")

// fetch GETs url and returns the response and its body.
func fetch(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(body)
}

type thing struct {
	ID uuid.UUID `json:"id"`
}

// The routes of a query service built from GetByID, TimelineByID and
// StoreErrors answer as the hand-written routes did: 200 JSON, a 400 for a
// malformed id, 404 with the error's text for a missing thing, and 503
// without the cause for a failing store.
func TestRoutesByID(t *testing.T) {
	t.Parallel()
	found, missing, broken := uuid.New(), uuid.New(), uuid.New()
	get := func(_ context.Context, id uuid.UUID) (thing, error) {
		switch id {
		case missing:
			return thing{}, fmt.Errorf("get %s: %w", id, errMissing)
		case broken:
			return thing{}, errors.New("connection refused to 10.0.0.7")
		}
		return thing{ID: id}, nil
	}
	timeline := func(ctx context.Context, id uuid.UUID) ([]string, error) {
		if _, err := get(ctx, id); err != nil {
			return nil, err
		}
		return []string{"created", "paid"}, nil
	}
	fail := web.StoreErrors("thing", errMissing)
	e := web.NewEngine(slog.New(slog.DiscardHandler), prometheus.NewRegistry(), nil)
	e.GET("/things/:id", web.GetByID("id", get, fail))
	e.GET("/things/:id/timeline", web.TimelineByID("id", timeline, fail))
	e.GET("/things/:id/pdf", web.ByID("id", get, fail, func(c *gin.Context, v thing) {
		c.Data(http.StatusOK, "application/pdf", []byte("%PDF "+v.ID.String()))
	}))
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)

	cases := []struct {
		name        string
		path        string
		status      int
		contentType string
		body        string
	}{
		{"found", "/things/" + found.String(), 200, "application/json; charset=utf-8", `{"id":"` + found.String() + `"}`},
		{"timeline", "/things/" + found.String() + "/timeline", 200, "application/json; charset=utf-8",
			`{"events":["created","paid"],"orderId":"` + found.String() + `"}`},
		{"written by ByID's writer", "/things/" + found.String() + "/pdf", 200, "application/pdf", "%PDF " + found.String()},
		{"a writer's route answers problems alike", "/things/" + missing.String() + "/pdf", 404, web.ProblemContentType, `"status":404`},
		{"malformed id", "/things/42", 400, web.ProblemContentType, `"detail":"path parameter id must be a UUID"`},
		{"malformed id of a timeline", "/things/42/timeline", 400, web.ProblemContentType, `"detail":"path parameter id must be a UUID"`},
		{"missing", "/things/" + missing.String(), 404, web.ProblemContentType, `"detail":"get ` + missing.String() + `: thing not found"`},
		{"missing timeline", "/things/" + missing.String() + "/timeline", 404, web.ProblemContentType, `"status":404`},
		{"store down", "/things/" + broken.String(), 503, web.ProblemContentType, `"detail":"the thing store is unavailable"`},
		{"store down for a timeline", "/things/" + broken.String() + "/timeline", 503, web.ProblemContentType, `"detail":"the thing store is unavailable"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, body := fetch(t, srv.URL+tc.path)
			assert.Equal(t, tc.status, resp.StatusCode, "status; body %s", body)
			assert.Equal(t, tc.contentType, resp.Header.Get("Content-Type"), "Content-Type")
			if tc.status == 200 {
				assert.Equal(t, tc.body, body, "body")
			} else {
				assert.Contains(t, body, tc.body, "problem")
			}
			assert.NotContains(t, body, "10.0.0.7", "the store's failure stays out of the answer")
		})
	}
}

// ParseListQuery answers the first bad parameter, in the order page, limit,
// status, userId, as the routes that parsed them one by one did.
func TestParseListQuery(t *testing.T) {
	t.Parallel()
	user := uuid.New()
	e := web.NewEngine(slog.New(slog.DiscardHandler), prometheus.NewRegistry(), nil)
	e.GET("/things", func(c *gin.Context) {
		q, ok := web.ParseListQuery(c, []string{"OPEN", "CLOSED"})
		if !ok {
			return
		}
		c.JSON(http.StatusOK, gin.H{"page": q.Page, "limit": q.Limit, "status": q.Status, "userId": q.UserID})
	})
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	cases := []struct {
		name   string
		query  string
		status int
		body   string
	}{
		{"defaults", "", 200, `{"limit":10,"page":1,"status":null,"userId":null}`},
		{"every filter", "?page=2&limit=5&status=OPEN&userId=" + user.String(), 200,
			`{"limit":5,"page":2,"status":"OPEN","userId":"` + user.String() + `"}`},
		{"bad paging first", "?page=0&status=NOPE&userId=x", 400, `"errors":[{"field":"page"`},
		{"then a bad status", "?status=NOPE&userId=x", 400, `"errors":[{"field":"status","message":"must be one of OPEN, CLOSED"}]`},
		{"then a bad user", "?status=OPEN&userId=x", 400, `"errors":[{"field":"userId","message":"must be a UUID"}]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, body := fetch(t, srv.URL+"/things"+tc.query)
			assert.Equal(t, tc.status, resp.StatusCode, "status; body %s", body)
			if tc.status == 200 {
				assert.Equal(t, tc.body, body, "body")
			} else {
				assert.Contains(t, body, tc.body, "the problem names the first bad parameter alone")
			}
		})
	}
}
