package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ordersaga/ordersaga/libs/events"
)

// pageNames are the pages, each templates/<name>.html on the layout.
var pageNames = []string{"sagas", "stuck", "saga", "dlq", "message", "health"}

var funcs = template.FuncMap{
	"ago":      ago,
	"since":    func(t time.Time) string { return human(time.Since(t)) },
	"human":    human,
	"stamp":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	"clock":    func(t time.Time) string { return t.UTC().Format("15:04:05.000") },
	"short":    short,
	"status":   statusClass,
	"money":    money,
	"pretty":   pretty,
	"add":      func(a, b int) int { return a + b },
	"pct":      func(f float64) string { return fmt.Sprintf("%.3f%%", f*100) },
	"finished": events.SagaFinished,
}

func parsePages() (map[string]*template.Template, error) {
	pages := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS,
			"templates/layout.html", "templates/parts.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: page %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// page is what the layout shows around a page's Data.
type page struct {
	Title string
	Nav   string // the menu entry to highlight
	Flash string
	Error string
	VHost string
	Now   time.Time
	Data  any
}

// render writes page name, the layout around it, with status.
func (c *Console) render(w http.ResponseWriter, status int, name string, p page) {
	p.VHost, p.Now = c.cfg.VHost, time.Now()
	var b bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&b, "layout", p); err != nil {
		c.log.Error("render page", "page", name, "error", err)
		http.Error(w, "the page could not be rendered: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = b.WriteTo(w)
}

// fragment renders template name of page into a string.
func (c *Console) fragment(pageName, name string, data any) (string, error) {
	var b strings.Builder
	if err := c.pages[pageName].ExecuteTemplate(&b, name, data); err != nil {
		return "", err
	}
	return b.String(), nil
}

// getJSON GETs url and decodes a 200 answer into out; other answers are
// errors naming the status.
func (c *Console) getJSON(ctx context.Context, url string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return &statusError{url: url, code: resp.StatusCode, body: strings.TrimSpace(string(body))}
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("GET %s: decode: %w", url, err)
	}
	return nil
}

type statusError struct {
	url  string
	code int
	body string
}

func (e *statusError) Error() string {
	if len(e.body) > 200 {
		e.body = e.body[:200] + "…"
	}
	return fmt.Sprintf("GET %s: %d %s", e.url, e.code, e.body)
}

// ago is how long ago t was, in words.
func ago(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return human(time.Since(t)) + " ago"
}

// human is d as an operator reads it: 12 s, 3 m 05 s, 2 h 10 m, 3 d 4 h.
func human(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d m %02d s", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h %02d m", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%d d %d h", int(d.Hours())/24, int(d.Hours())%24)
	}
}

// short is an id's last 8 characters: the order ids are UUIDv7, whose
// first characters are a timestamp that orders placed together share.
func short(id string) string {
	if len(id) > 8 {
		return "…" + id[len(id)-8:]
	}
	return id
}

func statusClass(status string) string {
	switch status {
	case events.StatusPaid:
		return "ok"
	case events.StatusFailed:
		return "bad"
	case events.StatusCancelled:
		return "off"
	default:
		return "wait"
	}
}

// money is an amount in minor units with its currency.
func money(total *int64, currency string) string {
	if total == nil {
		return "—"
	}
	return fmt.Sprintf("%d.%02d %s", *total/100, *total%100, currency)
}

// pretty indents a JSON document; anything else is returned as it is.
func pretty(b []byte) string {
	var out bytes.Buffer
	if json.Indent(&out, b, "", "  ") == nil {
		return out.String()
	}
	return string(b)
}
