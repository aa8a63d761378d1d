// Package timelinetest runs, for the tests of what reads timelines (libs/
// timeline, sagactl's console), a participant on a real database and
// broker whose timeline records a retried command, a command handled at
// once, and the events they caused.
package timelinetest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/db"
	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/participant"
	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/testinfra"
	"github.com/ordersaga/ordersaga/libs/timeline"
	"github.com/ordersaga/ordersaga/libs/uow"
)

// Path is where the participant answers its timeline, {id} the order id
// (saga.conf's TIMELINE).
const Path = "/api/test/order/{id}/timeline"

// Saga is what Run recorded.
type Saga struct {
	// URL is the participant's HTTP server, which answers Path.
	URL     string
	OrderID uuid.UUID
	// Retried failed transiently Failures times before it was handled;
	// First was handled at its first attempt. Both are order.cancel.
	// requested commands, published as the gateway publishes them.
	Retried, First events.Message
	// Failures is how often Retried failed; LastError the error of its
	// last failure.
	Failures  int
	LastError string
}

// Run starts participant name, which consumes order.cancel.requested and
// emits an order.cancelled for each, publishes two commands of one order,
// the first of which its handler fails failures times (each a transient
// error, retried through the retry tiers: failures < rabbit's default
// attempts), and returns once both are handled and their events published.
// The participant stops when the test ends.
func Run(t testing.TB, name string, failures int) Saga {
	t.Helper()
	queue := name + ".commands"
	topology := events.Topology{Exchanges: events.Exchanges(), Queues: []events.Queue{
		{Name: queue, Bindings: []events.Binding{{Exchange: events.ExchangeOrderCommands, Key: events.TypeOrderCancelRequested}}},
		// Where the events go: a published event needs a queue.
		{Name: "sink.order-events", IfMissing: true, Bindings: []events.Binding{{Exchange: events.ExchangeOrderEvents, Key: events.TypeOrderCancelled}}},
	}}
	ctx, cancel := context.WithCancel(context.Background())
	p, err := participant.Start(ctx, participant.Config{
		Name: name, HTTPAddr: "127.0.0.1:0", AMQPURL: testinfra.VHost(t).AMQPURL, DatabaseURL: testinfra.Database(t),
		StartupTimeout: 30 * time.Second, PublishTimeout: 5 * time.Second, MessageRetention: time.Hour,
		// One delivery a batch: a failed batch would run its step again alone.
		ConsumerTuning: rabbit.ConsumerTuning{MaxAttempts: failures + 1, Workers: 1, MaxBatch: 1, Prefetch: 8},
	}, slog.New(slog.NewTextHandler(io.Discard, nil)), db.Messaging(), topology)
	if err != nil {
		cancel()
		require.NoError(t, err, "start %s", name)
	}
	s := Saga{OrderID: uuid.New(), Failures: failures}
	s.Retried = command(t, s.OrderID, "changed my mind")
	s.First = command(t, s.OrderID, "really")
	s.LastError = fmt.Sprintf("database timeout (failure %d)", failures)
	var failed atomic.Int32
	p.Handle(uow.On(func(ctx context.Context, tx *uow.Tx, c *events.OrderCancelRequested) error {
		if tx.Cause() == s.Retried.ID.String() && int(failed.Load()) < failures {
			return fmt.Errorf("database timeout (failure %d)", failed.Add(1))
		}
		return tx.Emit(events.OrderCancelled{OrderID: c.OrderID, Reason: c.Reason, PreviousStatus: events.StatusPendingPayment,
			UserID: uuid.New()}, c.OrderID.String())
	}))
	engine := p.Engine()
	require.NoError(t, p.ServeTimeline(engine, Path))
	srv := httptest.NewServer(engine)
	s.URL = srv.URL
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, engine) }()
	t.Cleanup(func() {
		srv.Close()
		cancel()
		assert.NoError(t, <-done, "%s stops cleanly", name)
	})

	gateway := rabbit.NewPublisher(p.Conn, "gateway", 5*time.Second)
	t.Cleanup(func() { _ = gateway.Close() })
	pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
	defer pcancel()
	require.NoError(t, gateway.Publish(pctx, s.Retried, s.First), "publish the commands")

	// The retries wait in the delay tiers: 1 s, then 5 s, ...
	require.Eventually(t, func() bool {
		entries, err := p.Timeline(ctx, s.OrderID)
		return err == nil && len(entries) == 4 && published(entries) == 2
	}, 60*time.Second, 50*time.Millisecond, "both commands handled and their events published")
	require.EqualValues(t, failures, failed.Load(), "the handler failed as often as asked")
	return s
}

// published counts the entries of published messages.
func published(entries []timeline.Entry) int {
	n := 0
	for _, e := range entries {
		if e.Message != nil && e.Message.PublishedAt != nil {
			n++
		}
	}
	return n
}

func command(t testing.TB, orderID uuid.UUID, reason string) events.Message {
	t.Helper()
	m, err := events.NewMessage(events.OrderCancelRequested{OrderID: orderID, Reason: reason}, orderID.String())
	require.NoError(t, err)
	return m
}
