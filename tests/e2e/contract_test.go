package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/testinfra"
	"github.com/ordersaga/ordersaga/saga"
)

// TestStartupFailsWithOneLine checks contract §1: a misconfigured service,
// or one whose dependency stays unreachable past its start-up timeout,
// exits non-zero with one clear line.
func TestStartupFailsWithOneLine(t *testing.T) {
	t.Parallel()
	broker := testinfra.VHost(t)
	closed := closedPort(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { taken.Close() })

	base := map[string][]string{gatewayService: {"AMQP_URL=" + broker.AMQPURL}}
	for _, p := range saga.Participants() {
		base[p.Name] = []string{"AMQP_URL=" + broker.AMQPURL, "DATABASE_URL=" + testinfra.Database(t)}
	}
	cases := []struct {
		name   string
		binary string
		env    []string
		says   string        // the line names this
		after  time.Duration // and comes no sooner: the start-up timeout is waited out
	}{
		{"decline rate over 1", "payment-service", []string{"PAYMENT_DECLINE_RATE=2"}, "PAYMENT_DECLINE_RATE", 0},
		{"decline rate NaN", "payment-service", []string{"PAYMENT_DECLINE_RATE=NaN"}, "PAYMENT_DECLINE_RATE", 0},
		{"payment timeout not a duration", "order-service", []string{"ORDER_PAYMENT_TIMEOUT=abc"}, "ORDER_PAYMENT_TIMEOUT", 0},
		{"payment timeout zero", "order-service", []string{"ORDER_PAYMENT_TIMEOUT=0s"}, "ORDER_PAYMENT_TIMEOUT", 0},
		{"start-up timeout zero", "order-service", []string{"STARTUP_TIMEOUT=0s"}, "STARTUP_TIMEOUT", 0},
		{"publish timeout zero", "payment-service", []string{"PUBLISH_TIMEOUT=0"}, "PUBLISH_TIMEOUT", 0},
		{"gateway publish timeout zero", "gateway", []string{"PUBLISH_TIMEOUT=0"}, "PUBLISH_TIMEOUT", 0},
		{"log level unknown", "order-service", []string{"LOG_LEVEL=loud"}, "LOG_LEVEL", 0},
		{"gateway service URL not http", "gateway", []string{"ORDER_SERVICE_URL=ftp://x"}, "ORDER_SERVICE_URL", 0},
		{"database unreachable", "order-service",
			[]string{"STARTUP_TIMEOUT=2s", "DATABASE_URL=postgres://postgres@127.0.0.1:" + closed + "/orders?sslmode=disable"}, "database unreachable after 2s", 2 * time.Second},
		{"broker unreachable", "payment-service",
			[]string{"STARTUP_TIMEOUT=2s", "AMQP_URL=amqp://guest:guest@127.0.0.1:" + closed + "/"}, "broker unreachable after 2s", 2 * time.Second},
		{"gateway broker unreachable", "gateway",
			[]string{"STARTUP_TIMEOUT=2s", "AMQP_URL=amqp://guest:guest@127.0.0.1:" + closed + "/"}, "unreachable after 2s", 2 * time.Second},
		{"HTTP_ADDR taken", "order-service", []string{"HTTP_ADDR=" + taken.Addr().String()}, "HTTP_ADDR", 0},
		{"gateway HTTP_ADDR taken", "gateway", []string{"HTTP_ADDR=" + taken.Addr().String()}, "HTTP_ADDR", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, filepath.Join(binDir, tc.binary))
			env := append(os.Environ(), "HTTP_ADDR=127.0.0.1:0", "LOG_FORMAT=json")
			cmd.Env = append(append(env, base[tc.binary]...), tc.env...)
			var stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = io.Discard, &stderr
			start := time.Now()
			err := cmd.Run()
			elapsed := time.Since(start)
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, "%s exits on its own, with an error; stderr %q", tc.binary, stderr.String())
			assert.NotZero(t, exit.ExitCode(), "non-zero exit")
			line := stderr.String()
			assert.Equal(t, 1, strings.Count(line, "\n"), "one line: %q", line)
			assert.True(t, strings.HasPrefix(line, tc.binary+": "), "the line names the service: %q", line)
			assert.Contains(t, line, tc.says, "the line says what is wrong")
			assert.GreaterOrEqual(t, elapsed, tc.after, "the start-up timeout is waited out first")
			assert.Less(t, elapsed, tc.after+20*time.Second, "and not much longer")
		})
	}
}

// closedPort is a local port nothing listens on.
func closedPort(t testing.TB) string {
	t.Helper()
	_, port, err := net.SplitHostPort(testinfra.RefusedAddr(t))
	require.NoError(t, err)
	return port
}

// TestOperationalEndpoints checks contract §1's /healthz, /readyz and
// /metrics on every service, and that every service answers HEAD, OPTIONS,
// an unknown route and a wrong method sensibly.
func TestOperationalEndpoints(t *testing.T) {
	t.Parallel()
	s := Start(t, nil)
	type service struct {
		name   string
		url    string
		checks []string
	}
	// The gateway checks every participant; each participant its own
	// database.
	gw := service{gatewayService, s.GatewayURL, []string{"broker"}}
	var services []service
	for _, p := range saga.Participants() {
		gw.checks = append(gw.checks, p.Name)
		checks := []string{"broker", "database"}
		if p.Name == "notification-service" {
			// Its mail server, reported without answering 503 (Extensions:
			// notifications).
			checks = append(checks, "smtp")
		}
		services = append(services, service{p.Name, s.URL[p.Name], checks})
	}
	services = append(services, gw)
	send := func(t *testing.T, method, url string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, url, nil)
		require.NoError(t, err)
		req.Header.Set("X-Request-ID", "e2e-"+method)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err, "%s %s", method, url)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.Equal(t, "e2e-"+method, resp.Header.Get("X-Request-ID"), "request id echoed")
		return resp, body
	}
	for _, svc := range services {
		t.Run(svc.name, func(t *testing.T) {
			t.Parallel()
			resp, body := send(t, http.MethodGet, svc.url+"/healthz")
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.JSONEq(t, `{"status":"ok"}`, string(body))

			resp, body = send(t, http.MethodGet, svc.url+"/readyz")
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			var ready struct {
				Status string            `json:"status"`
				Checks map[string]string `json:"checks"`
			}
			require.NoError(t, json.Unmarshal(body, &ready), "readiness %s", body)
			want := map[string]string{}
			for _, c := range svc.checks {
				want[c] = "ok"
			}
			assert.Equal(t, "ok", ready.Status)
			assert.Equal(t, want, ready.Checks, "the checks, by name")

			resp, body = send(t, http.MethodGet, svc.url+"/metrics")
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4"),
				"Prometheus text format: %s", resp.Header.Get("Content-Type"))
			assert.Contains(t, string(body), "# TYPE ordersaga_http_requests_total counter")

			cases := []struct {
				method, path string
				status       int
				allow        string
				problem      bool
			}{
				{http.MethodHead, "/healthz", http.StatusOK, "", false},
				{http.MethodHead, "/readyz", http.StatusOK, "", false},
				{http.MethodOptions, "/readyz", http.StatusNoContent, "GET, HEAD, OPTIONS", false},
				{http.MethodGet, "/nothing", http.StatusNotFound, "", true},
				{http.MethodDelete, "/healthz", http.StatusMethodNotAllowed, "GET, HEAD, OPTIONS", true},
				{http.MethodHead, "/nothing", http.StatusNotFound, "", false},
			}
			for _, tc := range cases {
				resp, body := send(t, tc.method, svc.url+tc.path)
				what := fmt.Sprintf("%s %s", tc.method, tc.path)
				assert.Equal(t, tc.status, resp.StatusCode, "%s: %s", what, body)
				assert.Equal(t, tc.allow, resp.Header.Get("Allow"), "%s: Allow", what)
				if tc.method == http.MethodHead || tc.method == http.MethodOptions {
					assert.Empty(t, body, "%s: no body", what)
				}
				if tc.problem {
					assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"), what)
					var p map[string]any
					require.NoError(t, json.Unmarshal(body, &p), "%s: %s", what, body)
					for _, k := range []string{"type", "title", "status", "detail"} {
						assert.Contains(t, p, k, "%s: problem field %s", what, k)
					}
				}
			}
		})
	}
}
