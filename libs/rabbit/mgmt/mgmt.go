// Package mgmt is a small client of the RabbitMQ management HTTP API: the
// few calls that sagactl, loadgen and the tests make (vhosts, permissions,
// queues, the overview), and Do for the rest.
package mgmt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

var (
	// ErrNotFound matches an answer 404 (errors.Is): no such vhost, queue,
	// user or connection.
	ErrNotFound = errors.New("not found")
	// ErrUnauthorized matches an answer 401 (errors.Is): wrong credentials.
	ErrUnauthorized = errors.New("unauthorized")
)

// StatusError is an answer of the API other than 2xx.
type StatusError struct {
	Method string
	Path   string
	// Code is the HTTP status code.
	Code int
	// Status is the status line, such as "404 Not Found".
	Status string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("management API %s %s: %s", e.Method, e.Path, e.Status)
}

// Is lets errors.Is match ErrNotFound and ErrUnauthorized.
func (e *StatusError) Is(target error) bool {
	return target == ErrNotFound && e.Code == http.StatusNotFound ||
		target == ErrUnauthorized && e.Code == http.StatusUnauthorized
}

// Client calls the management API of one broker.
type Client struct {
	base     string // without credentials or trailing slash
	user     string
	password string
	http     *http.Client
}

// New returns a client of the management API at rawURL, such as
// http://guest:guest@127.0.0.1:15672, whose user info, if any, is used for
// basic authentication. Every call times out after 15 s.
func New(rawURL string) (*Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The parse error would echo the URL, password included.
		return nil, errors.New("management URL: want an http(s) URL such as http://guest:guest@127.0.0.1:15672")
	}
	c := &Client{http: &http.Client{Timeout: 15 * time.Second}}
	if u.User != nil {
		c.user = u.User.Username()
		c.password, _ = u.User.Password()
	}
	u.User = nil
	c.base = strings.TrimSuffix(u.String(), "/")
	return c, nil
}

// Do sends method path with in encoded as its JSON body (no body when in is
// nil) and decodes a JSON answer into out (the answer is discarded when out
// is nil). Path segments such as vhost names must be escaped with
// url.PathEscape by the caller.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("management API %s %s: encode body: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("management API %s %s: %w", method, path, err)
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.password)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// err names the URL, which holds no credentials.
		return fmt.Errorf("management API at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return &StatusError{Method: method, Path: path, Code: resp.StatusCode, Status: resp.Status}
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("management API %s %s: read answer: %w", method, path, err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("management API %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// vhostPath is the path of vhost under prefix: a vhost is one path
// segment, so the default vhost "/" is sent as %2F.
func vhostPath(prefix, vhost string) string {
	return prefix + url.PathEscape(vhost)
}

// CreateVHost creates vhost; an existing one is left as it is.
func (c *Client) CreateVHost(ctx context.Context, vhost string) error {
	if err := c.Do(ctx, http.MethodPut, vhostPath("/api/vhosts/", vhost), nil, nil); err != nil {
		return fmt.Errorf("create vhost %s: %w", vhost, err)
	}
	return nil
}

// DeleteVHost deletes vhost and everything in it; a missing vhost is an
// error matching ErrNotFound.
func (c *Client) DeleteVHost(ctx context.Context, vhost string) error {
	if err := c.Do(ctx, http.MethodDelete, vhostPath("/api/vhosts/", vhost), nil, nil); err != nil {
		return fmt.Errorf("delete vhost %s: %w", vhost, err)
	}
	return nil
}

// GrantAll gives user every permission (configure, write, read) on vhost.
func (c *Client) GrantAll(ctx context.Context, vhost, user string) error {
	perms := map[string]string{"configure": ".*", "write": ".*", "read": ".*"}
	path := vhostPath("/api/permissions/", vhost) + "/" + url.PathEscape(user)
	if err := c.Do(ctx, http.MethodPut, path, perms, nil); err != nil {
		return fmt.Errorf("grant %s every permission on vhost %s: %w", user, vhost, err)
	}
	return nil
}

// Queue is a queue as the API lists it.
type Queue struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Messages lags the queue by the statistics interval (5 s by default).
	Messages int `json:"messages"`
}

// Queues lists the queues of vhost.
func (c *Client) Queues(ctx context.Context, vhost string) ([]Queue, error) {
	var qs []Queue
	if err := c.Do(ctx, http.MethodGet, vhostPath("/api/queues/", vhost)+"?columns=name,type,messages", nil, &qs); err != nil {
		return nil, fmt.Errorf("list queues of vhost %q: %w", vhost, err)
	}
	return qs, nil
}

// Overview is what the API says of the broker as a whole.
type Overview struct {
	RabbitMQVersion string `json:"rabbitmq_version"`
	ErlangVersion   string `json:"erlang_version"`
}

// Overview returns the broker's versions; it also tells that the API
// answers.
func (c *Client) Overview(ctx context.Context) (Overview, error) {
	var ov Overview
	if err := c.Do(ctx, http.MethodGet, "/api/overview", nil, &ov); err != nil {
		return Overview{}, err
	}
	return ov, nil
}
