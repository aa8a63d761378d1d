// Package alerts checks deploy/prometheus's broker alert against what the
// broker's rabbitmq_prometheus plugin really exposes: the rule tests
// (alerts_test.yml) write their series by hand, and a label name or metric
// that the plugin spells differently would pass them and never fire.
package alerts

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/testinfra"
)

const root = "../.."

// prometheusURL is the plugin's per-object endpoint: the per-queue series
// the alert reads (deploy/prometheus/prometheus.yml scrapes the same path).
func prometheusURL() string {
	if u := os.Getenv("RABBITMQ_PROMETHEUS_URL"); u != "" {
		return u
	}
	return "http://127.0.0.1:15692/metrics/per-object"
}

// need fails under CI, and skips elsewhere, when something the test needs
// is missing.
func need(t *testing.T, err error, what string) {
	t.Helper()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("%s: %v", what, err)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// TestDeadLetterAlertFiresOnTheLivePlugin dead-letters two messages in a
// fresh vhost, scrapes the plugin until it shows them, and runs promtool
// over deploy/prometheus/alerts.yml with exactly the scraped series: the
// dead-letter alert must fire with the vhost and queue as the broker names
// them, and must not fire for the work queue beside it.
func TestDeadLetterAlertFiresOnTheLivePlugin(t *testing.T) {
	out, err := exec.Command(filepath.Join(root, "scripts/ensure-tools.sh"), "promtool").Output()
	need(t, err, "promtool (scripts/ensure-tools.sh promtool)")
	promtool := strings.TrimSpace(string(out))

	b := testinfra.VHost(t)
	const work, dlq = "orders.payment-events", "orders.payment-events.dlq"
	conn, err := amqp.Dial(b.AMQPURL)
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	for _, q := range []string{work, dlq} {
		_, err := ch.QueueDeclare(q, true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
		require.NoError(t, err)
	}
	require.NoError(t, ch.Confirm(false))
	for range 2 {
		c, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), "", dlq, true, false,
			amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(`{}`)})
		require.NoError(t, err)
		ok, err := c.WaitContext(context.Background())
		require.NoError(t, err)
		require.True(t, ok, "publish to %s nacked", dlq)
	}

	// The plugin's per-queue figures come from the broker's statistics,
	// collected every few seconds.
	var series []string
	deadline := time.Now().Add(60 * time.Second)
	for {
		var err error
		series, err = scrape(prometheusURL(), "rabbitmq_queue_messages", b.VHost)
		if err != nil && time.Now().After(deadline) {
			need(t, err, "the rabbitmq_prometheus plugin (scripts/ensure-infra.sh enables it)")
		}
		if err == nil && has(series, dlq, "2") && has(series, work, "0") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the plugin did not show 2 messages in %s and 0 in %s within 60 s; it showed:\n%s",
				dlq, work, strings.Join(series, "\n"))
		}
		time.Sleep(500 * time.Millisecond)
	}

	rules, err := filepath.Abs(filepath.Join(root, "deploy/prometheus/alerts.yml"))
	require.NoError(t, err)
	var f strings.Builder
	fmt.Fprintf(&f, "rule_files: [%q]\nevaluation_interval: 15s\ntests:\n  - interval: 15s\n    input_series:\n", rules)
	for _, s := range series {
		name, value, _ := strings.Cut(s, " ")
		fmt.Fprintf(&f, "      - series: %q\n        values: %q\n", name, value+"x8")
	}
	fmt.Fprintf(&f, `    alert_rule_test:
      - eval_time: 2m
        alertname: OrdersagaDeadLetters
        exp_alerts:
          - exp_labels: {severity: page, vhost: %[1]q, queue: %[2]q}
            exp_annotations:
              summary: "2 dead letter(s) in %[2]s"
              description: "Messages were dead-lettered and wait in %[2]s (vhost %[1]s). Read why with `+"`sagactl dlq show %[2]s`"+`, fix the cause, then `+"`sagactl dlq replay`"+`."
`, b.VHost, dlq)
	file := filepath.Join(t.TempDir(), "live_test.yml")
	require.NoError(t, os.WriteFile(file, []byte(f.String()), 0o600))
	res, err := exec.Command(promtool, "test", "rules", file).CombinedOutput()
	require.NoError(t, err, "promtool test rules over the live series:\n%s\n%s", f.String(), res)
}

// scrape returns the samples of metric in vhost as exposed ("name{labels}
// value" lines).
func scrape(url, metric, vhost string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	var out []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, metric+"{") && strings.Contains(line, fmt.Sprintf("vhost=%q", vhost)) {
			out = append(out, line)
		}
	}
	return out, sc.Err()
}

// has reports whether series holds queue q's sample with value v.
func has(series []string, q, v string) bool {
	for _, s := range series {
		if strings.Contains(s, fmt.Sprintf("queue=%q", q)) && strings.HasSuffix(s, "} "+v) {
			return true
		}
	}
	return false
}
