package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/gatewayclient"
)

// browser is a headless Chromium (Debian's chromium, which
// scripts/ensure-infra.sh installs) with a fresh profile, recording every
// URL its pages request.
type browser struct {
	ctx  context.Context
	mu   sync.Mutex
	urls []string
}

func startBrowser(t *testing.T) *browser {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("chromium not found (scripts/ensure-infra.sh installs it): %v", err)
		}
		t.Skipf("chromium not found (scripts/ensure-infra.sh installs it): %v", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 900),
		chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	b := &browser{}
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithListener(func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			b.mu.Lock()
			b.urls = append(b.urls, e.Request.URL)
			b.mu.Unlock()
		}
	}))
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	b.ctx = ctx
	// The first run starts the browser, and lives as long as ctx: no
	// timeout on it; each later step has its own.
	require.NoError(t, chromedp.Do(ctx), "start chromium")
	return b
}

// do runs steps, within a minute.
func (b *browser) do(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.screenshot(t, "failed")
		t.Fatalf("%s: %v", what, err)
	}
}

// text is the text of the first element sel selects.
func (b *browser) text(t *testing.T, sel string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(t, err, "read %s", sel)
	return s
}

// screenshot saves the whole page as .run/console-<name>.png, the test's
// artifact.
func (b *browser) screenshot(t *testing.T, name string) {
	t.Helper()
	root, err := repoRoot()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err, "screenshot %s", name)
	dir := filepath.Join(root, ".run")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "console-"+name+".png"), png, 0o644))
}

// waitText reloads path until the page's text holds every one of want.
func (b *browser) waitText(t *testing.T, url string, within time.Duration, want ...string) {
	t.Helper()
	end := time.Now().Add(within)
	for {
		b.do(t, "open "+url, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("main")))
		text := b.text(t, "main")
		missing := ""
		for _, w := range want {
			if !strings.Contains(text, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%s: %q not shown within %v; the page says:\n%s", url, missing, within, text)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// TestConsoleInBrowser drives the console in headless Chromium against the
// running system: a new order appears live, a stuck saga shows its waiting
// step, a poison message is grouped with its reason and replayed from the
// page once its order exists, the audit log shows it, and no page loads
// anything from another host. Screenshots go to .run/console-*.png.
func TestConsoleInBrowser(t *testing.T) {
	t.Parallel()
	b := startBrowser(t)
	s := Start(t, nil)
	c := StartConsole(t, s)

	// Sagas: an order placed through the API appears without a reload.
	b.do(t, "open the sagas", chromedp.Navigate(c.URL+"/sagas"), chromedp.WaitVisible(chromedp.CSS("#live.on")))
	id := s.createOrder(t, totalOrder(uuid.NewString(), 2599, ""), "")
	b.do(t, "the new order appears live", chromedp.WaitVisible(chromedp.CSS(`#rows tr[data-id="`+id+`"]`)))
	s.waitStatus(t, id, "PAID")
	b.do(t, "its status follows", chromedp.WaitVisible(chromedp.CSS(`#rows tr[data-id="`+id+`"][data-status="PAID"]`)))

	// Stuck: payment-service is down, the order waits for it.
	s.Stop("payment-service")
	stuck := s.createOrder(t, totalOrder(uuid.NewString(), 1500, ""), "")
	b.waitText(t, c.URL+"/stuck?after=1s", 30*time.Second, stuck[len(stuck)-8:], "PENDING_PAYMENT for", "no payment event yet", "payment-service")
	b.screenshot(t, "stuck")
	b.do(t, "open the sagas", chromedp.Navigate(c.URL+"/sagas"), chromedp.WaitVisible(chromedp.CSS(`#rows tr[data-id="`+stuck+`"]`)))
	b.screenshot(t, "sagas")
	s.StartService("payment-service")

	// Dead letters: a cancel before its create is grouped with its reason,
	// replayed from the page once the order exists, and the saga completes.
	orderID, msgID := poisonCancel(t, s)
	b.waitText(t, c.URL+"/dlq", 30*time.Second, "order.cancel.requested", "not found", "order-service.commands.dlq")
	b.screenshot(t, "dlq-group")
	createDirect(t, s, orderID)
	s.waitOrder(t, orderID, 30*time.Second, func(o gatewayclient.Order) bool { return o.Status != "" })
	b.do(t, "replay the message from the page",
		chromedp.Navigate(c.URL+"/dlq"),
		chromedp.Click(chromedp.CSS(`button[data-replay="`+msgID+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`p.flash`)))
	flash, audit := b.text(t, "p.flash"), b.text(t, "#audit")
	assert.Contains(t, flash, "replayed 1 message from order-service.commands.dlq")
	assert.Contains(t, audit, "replay")
	assert.Contains(t, audit, "message "+msgID, "the audit log shows the action")
	b.screenshot(t, "dlq-replayed")
	s.waitStatus(t, orderID, "CANCELLED")

	// One saga: its sequence diagram, a message's details (its headers and
	// body) opened by a click on its arrow.
	b.do(t, "open the saga",
		chromedp.Navigate(c.URL+"/sagas/"+orderID),
		chromedp.WaitVisible(chromedp.CSS("#diagram g.msg")),
		chromedp.Click(chromedp.CSS("#diagram g.msg rect.hit")),
		chromedp.WaitVisible(chromedp.CSS("details#msg-0[open] pre.body")))
	sagaText := b.text(t, "main")
	assert.Contains(t, sagaText, "CANCELLED")
	assert.Contains(t, sagaText, "order.cancel.requested")
	details := b.text(t, "details#msg-0")
	assert.Contains(t, details, "correlation_id", "the clicked message's headers")
	assert.Contains(t, details, orderID, "and its body")
	b.screenshot(t, "saga")

	// Health: every service and queue.
	b.waitText(t, c.URL+"/health", 30*time.Second, "payment-service", "order-service.commands", "outbox backlog")
	b.screenshot(t, "health")

	b.mu.Lock()
	defer b.mu.Unlock()
	require.NotEmpty(t, b.urls)
	for _, u := range b.urls {
		if !strings.HasPrefix(u, c.URL+"/") && !strings.HasPrefix(u, "data:") {
			t.Errorf("a page requested %s, outside the console", u)
		}
	}
}
