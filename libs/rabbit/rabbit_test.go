package rabbit_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/testinfra"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// queue receives the order.created messages of the tests' topology.
const queue = "test.order-events"

var topology = events.Topology{Exchanges: events.Exchanges(), Queues: []events.Queue{
	{Name: queue, Bindings: []events.Binding{{Exchange: events.ExchangeOrderEvents, Key: events.TypeOrderCreated}}},
}}

// broker dials a fresh vhost with the tests' topology declared.
func broker(t testing.TB) (testinfra.Broker, *rabbit.Conn, *rabbit.Publisher) {
	t.Helper()
	b := testinfra.VHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := rabbit.Dial(ctx, b.AMQPURL, t.Name(), topology, quiet)
	require.NoError(t, err, "dial broker")
	pub := rabbit.NewPublisher(conn, "test", 5*time.Second)
	t.Cleanup(func() {
		pub.Close()
		conn.Close()
	})
	return b, conn, pub
}

// get waits for one message on queue, read with a plain client.
func get(t testing.TB, url, queue string) amqp.Delivery {
	t.Helper()
	conn, err := amqp.Dial(url)
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	deadline := time.Now().Add(20 * time.Second)
	for {
		d, ok, err := ch.Get(queue, true)
		require.NoError(t, err)
		if ok {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message on %s within 20s", queue)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func count(t testing.TB, url, queue string) int {
	t.Helper()
	conn, err := amqp.Dial(url)
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	require.NoError(t, err)
	return q.Messages
}

func orderCreated(t testing.TB) events.Message {
	t.Helper()
	id := uuid.New()
	m, err := events.NewMessage(events.OrderCreated{OrderPlaced: events.OrderPlaced{
		OrderID: id, UserID: uuid.New(), Total: 100, Currency: "USD", PaymentMethod: "tok_visa"}}, id.String())
	require.NoError(t, err)
	return m
}

func TestPublishCarriesContractProperties(t *testing.T) {
	t.Parallel()
	b, _, pub := broker(t)
	m := orderCreated(t)
	m.CausationID = "cause-1"
	require.NoError(t, pub.Publish(context.Background(), m))

	d := get(t, b.AMQPURL, queue)
	assert.Equal(t, "application/json", d.ContentType)
	assert.Equal(t, amqp.Persistent, d.DeliveryMode)
	assert.Equal(t, m.ID.String(), d.MessageId)
	assert.Equal(t, events.TypeOrderCreated, d.Type)
	assert.Equal(t, m.CorrelationID, d.CorrelationId)
	assert.Equal(t, "test", d.AppId)
	assert.WithinDuration(t, time.Now(), d.Timestamp, time.Minute)
	assert.EqualValues(t, 1, d.Headers[rabbit.HeaderSchemaVersion])
	assert.Equal(t, "cause-1", d.Headers[rabbit.HeaderCausationID])
	assert.JSONEq(t, string(m.Body), string(d.Body))
}

func TestUnroutablePublishIsAnError(t *testing.T) {
	t.Parallel()
	_, _, pub := broker(t)
	reg := prometheus.NewRegistry()
	require.NoError(t, pub.Instrument(reg))
	err := pub.Send(context.Background(), rabbit.Outgoing{Exchange: "", Key: "no-such-queue",
		Msg: amqp.Publishing{MessageId: uuid.NewString(), Body: []byte("{}")}})
	require.ErrorIs(t, err, rabbit.ErrNotConfirmed)
	assert.Contains(t, err.Error(), "NO_ROUTE")

	// The channel stays usable after a return.
	require.NoError(t, pub.Publish(context.Background(), orderCreated(t)))
	assert.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP ordersaga_messages_published_total Messages published and confirmed, by exchange ("" is the default exchange: retries and dead letters) and type.
# TYPE ordersaga_messages_published_total counter
ordersaga_messages_published_total{exchange="orders.events",type="order.created"} 1
`), "ordersaga_messages_published_total"), "only the confirmed, routed message is counted")
}

func TestPublishWhileDisconnectedFailsFast(t *testing.T) {
	t.Parallel()
	_, conn, pub := broker(t)
	require.NoError(t, conn.Close())
	start := time.Now()
	err := pub.Publish(context.Background(), orderCreated(t))
	require.ErrorIs(t, err, rabbit.ErrUnavailable)
	assert.Less(t, time.Since(start), 2*time.Second, "no waiting for a broker that is not there")
	assert.Error(t, conn.Check(context.Background()), "readiness reports the broker down")
}

// consume runs a consumer of the tests' queue with h, one delivery at a
// time, until the test ends.
func consume(t testing.TB, conn *rabbit.Conn, pub *rabbit.Publisher, maxAttempts int, h func(context.Context, rabbit.Delivery) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := rabbit.NewConsumer(conn, pub, rabbit.ConsumerConfig{
		Queue: queue, Prefetch: 4, MaxAttempts: maxAttempts,
	}, func(ctx context.Context, ds []rabbit.Delivery) []error {
		errs := make([]error, len(ds))
		for i, d := range ds {
			errs[i] = h(ctx, d)
		}
		return errs
	}, quiet, nil)
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestPoisonMessageGoesToDLQAndTheNextIsProcessed(t *testing.T) {
	t.Parallel()
	b, conn, pub := broker(t)
	handled := make(chan string, 10)
	consume(t, conn, pub, 5, func(ctx context.Context, d rabbit.Delivery) error {
		if _, err := events.Decode(d.Type, d.Body); err != nil {
			return err
		}
		handled <- d.MessageID
		return nil
	})

	// Straight to the exchange, as a foreign or broken publisher would.
	raw, err := amqp.Dial(b.AMQPURL)
	require.NoError(t, err)
	defer raw.Close()
	ch, err := raw.Channel()
	require.NoError(t, err)
	poisonID := uuid.NewString()
	require.NoError(t, ch.Publish(events.ExchangeOrderEvents, events.TypeOrderCreated, false, false, amqp.Publishing{
		MessageId: poisonID, Type: events.TypeOrderCreated, ContentType: "application/json", CorrelationId: "c-1",
		AppId: "mallory", Body: []byte("not json"), Headers: amqp.Table{rabbit.HeaderSchemaVersion: int8(1)},
	}))
	good := orderCreated(t)
	require.NoError(t, pub.Publish(context.Background(), good))

	select {
	case id := <-handled:
		assert.Equal(t, good.ID.String(), id, "the message behind the poison is processed")
	case <-time.After(20 * time.Second):
		t.Fatal("the good message was not processed")
	}
	d := get(t, b.AMQPURL, events.DeadLetterQueue(queue))
	assert.Equal(t, poisonID, d.MessageId, "message_id kept")
	assert.Equal(t, "mallory", d.AppId, "properties kept")
	assert.Equal(t, "c-1", d.CorrelationId)
	assert.Equal(t, []byte("not json"), d.Body, "body kept")
	assert.Equal(t, "permanent", d.Headers[rabbit.HeaderErrorKind])
	assert.Contains(t, d.Headers[rabbit.HeaderError], "invalid message")
	assert.EqualValues(t, 1, d.Headers[rabbit.HeaderAttempts])
}

func TestMissingMessageIDAndUnknownSchemaAreDeadLettered(t *testing.T) {
	t.Parallel()
	b, conn, pub := broker(t)
	var calls atomic.Int32
	consume(t, conn, pub, 5, func(ctx context.Context, d rabbit.Delivery) error {
		calls.Add(1)
		return nil
	})
	raw, err := amqp.Dial(b.AMQPURL)
	require.NoError(t, err)
	defer raw.Close()
	ch, err := raw.Channel()
	require.NoError(t, err)
	require.NoError(t, ch.Publish(events.ExchangeOrderEvents, events.TypeOrderCreated, false, false, amqp.Publishing{
		Type: events.TypeOrderCreated, Body: []byte("{}")}))
	require.NoError(t, ch.Publish(events.ExchangeOrderEvents, events.TypeOrderCreated, false, false, amqp.Publishing{
		MessageId: "v2", Type: events.TypeOrderCreated, Body: []byte("{}"), Headers: amqp.Table{rabbit.HeaderSchemaVersion: int64(2)}}))

	dlq := events.DeadLetterQueue(queue)
	reasons := map[string]bool{}
	for range 2 {
		d := get(t, b.AMQPURL, dlq)
		assert.Equal(t, "permanent", d.Headers[rabbit.HeaderErrorKind])
		reasons[d.Headers[rabbit.HeaderError].(string)] = true
	}
	assert.True(t, reasons["missing message_id"], "reasons: %v", reasons)
	assert.True(t, reasons["unsupported x-schema-version 2"], "reasons: %v", reasons)
	assert.Zero(t, calls.Load(), "the handler never saw them")
}

func TestTransientFailureIsRetriedThenDeadLettered(t *testing.T) {
	t.Parallel()
	b, conn, pub := broker(t)
	var attempts atomic.Int32
	seen := make(chan int, 10)
	consume(t, conn, pub, 2, func(ctx context.Context, d rabbit.Delivery) error {
		attempts.Add(1)
		seen <- d.Attempt
		return errors.New("database timeout")
	})
	m := orderCreated(t)
	start := time.Now()
	require.NoError(t, pub.Publish(context.Background(), m))

	d := get(t, b.AMQPURL, events.DeadLetterQueue(queue))
	assert.GreaterOrEqual(t, time.Since(start), rabbit.RetryDelays[0], "the retry waited in the first delay tier")
	assert.Equal(t, m.ID.String(), d.MessageId)
	assert.Equal(t, "transient", d.Headers[rabbit.HeaderErrorKind])
	assert.EqualValues(t, 2, d.Headers[rabbit.HeaderAttempts])
	assert.Equal(t, "database timeout", d.Headers[rabbit.HeaderError])
	assert.Equal(t, int32(2), attempts.Load())
	assert.Equal(t, 1, <-seen)
	assert.Equal(t, 2, <-seen)
}

func TestHandlerPanicIsATransientFailure(t *testing.T) {
	t.Parallel()
	b, conn, pub := broker(t)
	var calls atomic.Int32
	consume(t, conn, pub, 2, func(ctx context.Context, d rabbit.Delivery) error {
		if calls.Add(1) == 1 {
			panic("boom")
		}
		return nil
	})
	require.NoError(t, pub.Publish(context.Background(), orderCreated(t)))
	require.Eventually(t, func() bool { return calls.Load() == 2 }, 20*time.Second, 20*time.Millisecond,
		"the message came back after the panic")
	time.Sleep(100 * time.Millisecond) // let the ack land before counting
	assert.Zero(t, count(t, b.AMQPURL, events.DeadLetterQueue(queue)))
}

func TestFailuresWhileTheDatabaseIsDownSpendNoAttempt(t *testing.T) {
	t.Parallel()
	b, conn, pub := broker(t)
	var down atomic.Bool
	down.Store(true)
	var readyCalls atomic.Int32
	const n = 6
	// Queued before the consumer starts, so that they arrive as one batch.
	for range n {
		require.NoError(t, pub.Publish(context.Background(), orderCreated(t)))
	}
	var mu sync.Mutex
	attempts := map[string][]int{}
	succeeded := map[string]bool{}
	ctx, cancel := context.WithCancel(context.Background())
	c := rabbit.NewConsumer(conn, pub, rabbit.ConsumerConfig{
		Queue: queue, Prefetch: n, Workers: 1, MaxBatch: n, MaxAttempts: 2,
		Ready: func(context.Context) error {
			readyCalls.Add(1)
			if down.Load() {
				return errors.New("database down")
			}
			return nil
		},
	}, func(ctx context.Context, ds []rabbit.Delivery) []error {
		errs := make([]error, len(ds))
		mu.Lock()
		defer mu.Unlock()
		for i, d := range ds {
			attempts[d.MessageID] = append(attempts[d.MessageID], d.Attempt)
			if down.Load() {
				errs[i] = errors.New("connection refused")
			} else {
				succeeded[d.MessageID] = true
			}
		}
		return errs
	}, quiet, nil)
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	// Twice: the consumer found the database down and is waiting for it.
	require.Eventually(t, func() bool { return readyCalls.Load() >= 2 }, 20*time.Second, 5*time.Millisecond)
	down.Store(false)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(succeeded) == n
	}, 20*time.Second, 20*time.Millisecond, "every message was handled after the outage")
	mu.Lock()
	for id, as := range attempts {
		for _, a := range as {
			assert.Equal(t, 1, a, "message %s spent no attempt on the outage: %v", id, as)
		}
	}
	mu.Unlock()
	assert.Zero(t, count(t, b.AMQPURL, events.DeadLetterQueue(queue)))
	assert.Zero(t, count(t, b.AMQPURL, rabbit.RetryQueue(queue, 0)), "nothing waits in a retry tier")
}

// A broker that accepts the connection and then never answers must not
// hold Dial past its context: a service's start-up timeout is a promise
// (contract §1).
func TestDialGivesUpOnASilentBroker(t *testing.T) {
	t.Parallel()
	addr, _ := silentNode(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := rabbit.Dial(ctx, "amqp://guest:guest@"+addr+"/", t.Name(), topology, quiet)
		done <- err
	}()
	select {
	case err := <-done:
		require.Error(t, err, "nothing to connect to")
	case <-time.After(20 * time.Second):
		t.Fatal("Dial still waiting 19 s after its context ended")
	}
}

// silentNode is a node that accepts connections and never answers them,
// but closes the first dropped of them at once; it returns its address and
// how many connections it accepted so far.
func silentNode(t *testing.T, dropped int) (string, func() int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var (
		mu       sync.Mutex
		accepted []net.Conn
	)
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range accepted {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if accepted = append(accepted, c); len(accepted) <= dropped {
				c.Close()
			}
			mu.Unlock()
		}
	}()
	return l.Addr().String(), func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(accepted)
	}
}
