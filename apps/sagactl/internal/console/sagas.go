package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/ordersaga/ordersaga/libs/events"
)

const (
	orderService     = "order-service"
	paymentService   = "payment-service"
	inventoryService = "inventory-service"
	// listLimit is how many of the latest orders the Sagas page shows.
	listLimit = 100
	// heartbeat keeps an idle stream open through proxies.
	heartbeat = 15 * time.Second
)

// order is an order as order-service answers it.
type order struct {
	ID           string    `json:"id"`
	UserID       string    `json:"userId"`
	Total        *int64    `json:"total"`
	Currency     string    `json:"currency"`
	Status       string    `json:"status"`
	CancelReason *string   `json:"cancelReason"`
	CreatedAt    time.Time `json:"createdAt"`
	UpdatedAt    time.Time `json:"updatedAt"`
	Items        []struct {
		SKU      string `json:"sku"`
		Quantity int64  `json:"quantity"`
	} `json:"items"`
}

type orderPage struct {
	Data []order `json:"data"`
	Meta struct {
		Total      int `json:"total"`
		TotalPages int `json:"totalPages"`
	} `json:"meta"`
}

// waiting is who an unfinished order waits for, and for what.
type waiting struct {
	Service string
	What    string
}

// waitsFor says which participant an order in status waits for: the one
// whose event moves it on.
func waitsFor(status string) waiting {
	switch status {
	case events.StatusPendingStock:
		return waiting{inventoryService, "no stock event yet (stock.reserved or stock.rejected)"}
	case events.StatusPendingPayment:
		return waiting{paymentService, "no payment event yet (payment.approved, declined or failed)"}
	default:
		return waiting{}
	}
}

// Waits is the participant the order waits for; "" once it is finished.
func (o order) Waits() waiting { return waitsFor(o.Status) }

// filter is the Sagas page's filter, from its query string.
type filter struct {
	Status string
	User   string
	Since  string // a duration such as 15m; "" for any time
	since  time.Duration
	Errors []string
}

// sinceChoices are the time filter's options.
var sinceChoices = []string{"5m", "15m", "1h", "6h", "24h"}

func parseFilter(q url.Values) filter {
	f := filter{Status: q.Get("status"), User: q.Get("user"), Since: q.Get("since")}
	if f.Status != "" && !slices.Contains(events.OrderStatuses, f.Status) {
		f.Errors = append(f.Errors, fmt.Sprintf("unknown status %q", f.Status))
		f.Status = ""
	}
	if f.User != "" {
		if _, err := uuid.Parse(f.User); err != nil {
			f.Errors = append(f.Errors, fmt.Sprintf("user %q is not a user id (a UUID)", f.User))
			f.User = ""
		}
	}
	if f.Since != "" {
		d, err := time.ParseDuration(f.Since)
		if err != nil || d <= 0 {
			f.Errors = append(f.Errors, fmt.Sprintf("since %q is not a duration such as 15m", f.Since))
			f.Since = ""
		}
		f.since = d
	}
	return f
}

// Query is the filter as a query string.
func (f filter) Query() string {
	q := url.Values{}
	for k, v := range map[string]string{"status": f.Status, "user": f.User, "since": f.Since} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q.Encode()
}

// latest returns the latest orders that pass f, newest first.
func (c *Console) latest(ctx context.Context, f filter) ([]order, int, error) {
	q := url.Values{"limit": {strconv.Itoa(listLimit)}}
	if f.Status != "" {
		q.Set("status", f.Status)
	}
	if f.User != "" {
		q.Set("userId", f.User)
	}
	var p orderPage
	if err := c.getJSON(ctx, c.byName[orderService].URL+"/api/orders?"+q.Encode(), &p); err != nil {
		return nil, 0, fmt.Errorf("order-service: %w", err)
	}
	if f.since == 0 {
		return p.Data, p.Meta.Total, nil
	}
	cut := time.Now().Add(-f.since)
	out := p.Data[:0]
	for _, o := range p.Data {
		if o.CreatedAt.After(cut) {
			out = append(out, o)
		}
	}
	return out, p.Meta.Total, nil
}

// sagasData is the Sagas page.
type sagasData struct {
	Filter   filter
	Statuses []string
	Since    []string
	Rows     rowsData
}

// rowsData is the table's body, rendered alone by the stream.
type rowsData struct {
	Orders []order
	Total  int
	Error  string
	At     time.Time
}

func (c *Console) rows(ctx context.Context, f filter) rowsData {
	orders, total, err := c.latest(ctx, f)
	r := rowsData{Orders: orders, Total: total, At: time.Now()}
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

func (c *Console) sagasPage(w http.ResponseWriter, r *http.Request) {
	f := parseFilter(r.URL.Query())
	d := sagasData{Filter: f, Statuses: events.OrderStatuses, Since: sinceChoices, Rows: c.rows(r.Context(), f)}
	p := page{Title: "Sagas", Nav: "sagas", Data: d}
	if len(f.Errors) > 0 {
		p.Error = fmt.Sprint(f.Errors)
	}
	c.render(w, http.StatusOK, "sagas", p)
}

// sagasRows answers the table's body alone (for a reload without SSE).
func (c *Console) sagasRows(w http.ResponseWriter, r *http.Request) {
	html, err := c.fragment("sagas", "rows", c.rows(r.Context(), parseFilter(r.URL.Query())))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(html))
}

// sagasStream sends the table's body as Server-Sent Events ("rows"), each
// time it changes, polling order-service every Poll.
func (c *Console) sagasStream(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	f := parseFilter(r.URL.Query())
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprint(w, "retry: 2000\n\n")
	flusher.Flush()
	ctx := r.Context()
	poll := time.NewTicker(c.cfg.Poll)
	defer poll.Stop()
	beat := time.NewTicker(heartbeat)
	defer beat.Stop()
	last := ""
	for {
		rows := c.rows(ctx, f)
		rows.At = time.Time{} // not part of what changed
		html, err := c.fragment("sagas", "rows", rows)
		if err != nil {
			c.log.Error("render rows", "error", err)
			return
		}
		if html != last {
			if !sendEvent(w, "rows", html) {
				return
			}
			flusher.Flush()
			last = html
		}
		select {
		case <-ctx.Done():
			return
		case <-c.closing:
			return // the server shuts down; the browser reconnects to the next one
		case <-beat.C:
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil {
				return
			}
			flusher.Flush()
		case <-poll.C:
		}
	}
}

// sendEvent writes one event whose data may span lines.
func sendEvent(w http.ResponseWriter, name, data string) bool {
	if _, err := fmt.Fprintf(w, "event: %s\n", name); err != nil {
		return false
	}
	start := 0
	for i := 0; i <= len(data); i++ {
		if i == len(data) || data[i] == '\n' {
			if _, err := fmt.Fprintf(w, "data: %s\n", data[start:i]); err != nil {
				return false
			}
			start = i + 1
		}
	}
	_, err := fmt.Fprint(w, "\n")
	return err == nil
}

// stuckOrder is an order not finished after the threshold.
type stuckOrder struct {
	order
	Waiting  waiting
	InStatus time.Duration
	Age      time.Duration
}

type stuckData struct {
	After    string
	Orders   []stuckOrder
	Error    string
	Examined int
}

// stuckLimit is at most how many unfinished orders of each status the
// Stuck page reads (the oldest).
const stuckLimit = 200

// unfinished returns the oldest orders of status, at most stuckLimit.
func (c *Console) unfinished(ctx context.Context, status string) ([]order, error) {
	base := c.byName[orderService].URL + "/api/orders?limit=100&status=" + url.QueryEscape(status)
	var first orderPage
	if err := c.getJSON(ctx, base+"&page=1", &first); err != nil {
		return nil, err
	}
	pages := first.Meta.TotalPages
	if pages <= 1 {
		return first.Data, nil
	}
	var out []order
	// Newest first: the oldest are on the last pages.
	for p := pages; p >= 1 && len(out) < stuckLimit; p-- {
		var pg orderPage
		if err := c.getJSON(ctx, fmt.Sprintf("%s&page=%d", base, p), &pg); err != nil {
			return nil, err
		}
		out = append(out, pg.Data...)
	}
	return out, nil
}

func (c *Console) stuck(ctx context.Context, after time.Duration) ([]stuckOrder, int, error) {
	now := time.Now()
	var out []stuckOrder
	examined := 0
	for _, status := range []string{events.StatusPendingStock, events.StatusPendingPayment} {
		orders, err := c.unfinished(ctx, status)
		if err != nil {
			return nil, 0, fmt.Errorf("order-service: %w", err)
		}
		examined += len(orders)
		for _, o := range orders {
			if age := now.Sub(o.CreatedAt); age >= after {
				out = append(out, stuckOrder{order: o, Waiting: waitsFor(o.Status), InStatus: now.Sub(o.UpdatedAt), Age: age})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, examined, nil
}

func (c *Console) stuckPage(w http.ResponseWriter, r *http.Request) {
	after := c.cfg.StuckAfter
	p := page{Title: "Stuck sagas", Nav: "stuck"}
	if v := r.URL.Query().Get("after"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			p.Error = fmt.Sprintf("after %q is not a duration such as 2m", v)
		} else {
			after = d
		}
	}
	d := stuckData{After: after.String()}
	orders, n, err := c.stuck(r.Context(), after)
	if err != nil {
		d.Error = err.Error()
	}
	d.Orders, d.Examined = orders, n
	p.Data = d
	c.render(w, http.StatusOK, "stuck", p)
}
