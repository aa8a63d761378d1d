package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Management is a small client of the RabbitMQ management HTTP API.
type Management struct {
	base     string // without credentials or trailing slash
	user     string
	password string
	client   *http.Client
}

// NewManagement returns a client of the management API at rawURL, whose
// user info, if any, is used for basic authentication.
func NewManagement(rawURL string) (*Management, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		// The parse error would echo the URL, password included.
		return nil, errorf(ErrInvalid, "management URL is not a valid URL")
	}
	m := &Management{client: &http.Client{Timeout: 15 * time.Second}}
	if u.User != nil {
		m.user = u.User.Username()
		m.password, _ = u.User.Password()
	}
	u.User = nil
	m.base = strings.TrimSuffix(u.String(), "/")
	return m, nil
}

// QueueInfo is a queue as the management API lists it.
type QueueInfo struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Messages lags the queue by the statistics interval (5 s by default).
	Messages int `json:"messages"`
}

// Queues lists the queues of vhost.
func (m *Management) Queues(ctx context.Context, vhost string) ([]QueueInfo, error) {
	// The vhost is one path segment: the default vhost "/" is sent as %2F.
	path := "/api/queues/" + url.PathEscape(vhost) + "?columns=name,type,messages"
	var qs []QueueInfo
	if err := m.get(ctx, path, &qs); err != nil {
		return nil, fmt.Errorf("list queues of vhost %q: %w", vhost, err)
	}
	return qs, nil
}

func (m *Management) get(ctx context.Context, path string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.base+path, nil)
	if err != nil {
		return err
	}
	if m.user != "" {
		req.SetBasicAuth(m.user, m.password)
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return fmt.Errorf("management API at %s: %w", m.base, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return errorf(ErrNotFound, "management API %s: 404 (no such vhost?)", m.base)
	case resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("management API %s: 401 (check the credentials in RABBITMQ_MGMT_URL)", m.base)
	case resp.StatusCode >= 300:
		return fmt.Errorf("management API %s: %s", m.base, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("management API %s: read answer: %w", m.base, err)
	}
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("management API %s: decode answer: %w", m.base, err)
	}
	return nil
}
