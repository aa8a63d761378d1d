package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/testinfra"
)

// syncBuffer is a log sink that run writes to while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// listenAddr waits for run's "started" log line and returns its address.
func listenAddr(t testing.TB, logs *syncBuffer, done <-chan error) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(logs.String()))
		for sc.Scan() {
			var line struct {
				Msg      string `json:"msg"`
				HTTPAddr string `json:"http_addr"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "started" {
				return line.HTTPAddr
			}
		}
		select {
		case err := <-done:
			t.Fatalf("run returned during start-up: %v\n%s", err, logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("gateway not started within 20s:\n%s", logs.String())
	return ""
}

func TestRunServesUntilCancelled(t *testing.T) {
	t.Parallel()
	b := testinfra.VHost(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncBuffer{}
	done := make(chan error, 1)
	env := envOf(map[string]string{"HTTP_ADDR": "127.0.0.1:0", "AMQP_URL": b.AMQPURL, "LOG_LEVEL": "debug"})
	go func() { done <- run(ctx, nil, env, logs) }()
	addr := listenAddr(t, logs, done)

	resp, err := http.Get("http://" + addr + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	resp, err = http.Post("http://"+addr+"/api/orders", "application/json",
		strings.NewReader(`{"userId":"8d1c7c8e-3c4e-4a51-9d43-6c0c7b3f0a11","total":100}`))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusAccepted, resp.StatusCode, "the wired gateway publishes: %s", body)

	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err, "a cancelled run stops cleanly")
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return within 20s of cancellation")
	}
	assert.Contains(t, logs.String(), `"msg":"stopped"`)
	assert.Contains(t, logs.String(), `"service":"gateway"`)
}

func TestRunEndsEventStreamsAtShutdown(t *testing.T) {
	t.Parallel()
	b := testinfra.VHost(t)
	orders := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"8d1c7c8e-3c4e-4a51-9d43-6c0c7b3f0a11","status":"PENDING_PAYMENT"}`)
	}))
	t.Cleanup(orders.Close)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncBuffer{}
	done := make(chan error, 1)
	env := envOf(map[string]string{"HTTP_ADDR": "127.0.0.1:0", "AMQP_URL": b.AMQPURL, "ORDER_SERVICE_URL": orders.URL})
	go func() { done <- run(ctx, nil, env, logs) }()
	addr := listenAddr(t, logs, done)

	resp, err := http.Get("http://" + addr + "/api/orders/8d1c7c8e-3c4e-4a51-9d43-6c0c7b3f0a11/events")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	first, err := bufio.NewReader(resp.Body).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "id: 1\n", first, "the stream started")

	start := time.Now()
	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err, "the open stream did not make the shutdown fail")
		assert.Less(t, time.Since(start), shutdownTimeout/2, "the open stream did not hold the shutdown")
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return within 20s of cancellation")
	}
}

func TestRunFailsWithoutBroker(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), nil, envOf(map[string]string{
		"HTTP_ADDR":       "127.0.0.1:0",
		"AMQP_URL":        "amqp://guest:secret@127.0.0.1:1/",
		"STARTUP_TIMEOUT": "300ms",
	}), io.Discard)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "broker")
	assert.Contains(t, err.Error(), "127.0.0.1:1")
	assert.NotContains(t, err.Error(), "secret", "the password stays out of the error")
}

func TestRunFailsOnBadConfig(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), nil, envOf(map[string]string{"LOG_LEVEL": "loud"}), io.Discard)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "LOG_LEVEL")
}
