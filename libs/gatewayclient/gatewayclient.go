// This file is written by hand; client.gen.go is generated (make generate)
// from the gateway's OpenAPI document, apps/gateway/internal/gateway/openapi.json.

package gatewayclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// ErrNotFound is what a *StatusError of a 404 wraps.
var ErrNotFound = errors.New("not found")

// StatusError is an answer whose status is not the one the caller
// expected. Detail is its problem+json detail (or title), when it has one.
type StatusError struct {
	Method, Path string
	Status       int
	Detail       string
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s %s: HTTP %d", e.Method, e.Path, e.Status)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// Unwrap makes errors.Is(err, ErrNotFound) true of a 404.
func (e *StatusError) Unwrap() error {
	if e.Status == http.StatusNotFound {
		return ErrNotFound
	}
	return nil
}

// Check is nil when resp has the status want, and otherwise a *StatusError
// that carries the detail of body, the answer's problem+json. Pass a
// generated answer's HTTPResponse and Body.
func Check(resp *http.Response, body []byte, want int) error {
	if resp.StatusCode == want {
		return nil
	}
	var problem Problem
	_ = json.Unmarshal(body, &problem)
	detail := problem.Detail
	if detail == "" {
		detail = problem.Title
	}
	return &StatusError{Method: resp.Request.Method, Path: resp.Request.URL.RequestURI(), Status: resp.StatusCode, Detail: detail}
}

// BearerAuth is a request editor that sends token as the bearer token of a
// request: pass it to any call that needs a caller. With "" it sends none.
func BearerAuth(token string) RequestEditorFn {
	return func(_ context.Context, req *http.Request) error {
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return nil
	}
}
