package rabbit_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/testinfra"
)

// TestBlockedBroker raises a real memory alarm on a private node: publishing
// is refused at once and never takes effect later, readiness says blocked,
// consumers keep acking, and a message whose retry cannot be published
// waits, unacked, for the alarm to clear.
func TestBlockedBroker(t *testing.T) {
	t.Parallel()
	node := testinfra.StartRabbitNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := rabbit.Dial(ctx, node.AMQPURL, t.Name(), topology, quiet)
	require.NoError(t, err, "dial the private node")
	// A confirm timeout longer than the test: a publish that waited for
	// its confirm would end in the deadline, not in ErrBlocked.
	const publishTimeout = 5 * time.Minute
	pub := rabbit.NewPublisher(conn, "test", publishTimeout)
	t.Cleanup(func() {
		pub.Close()
		conn.Close()
	})
	require.NoError(t, conn.Check(ctx), "ready before the alarm")

	// The failing message first, then two that succeed: with a prefetch of
	// two, the held one keeps one slot and the others pass through the
	// other, which needs their acks to be taken while the broker blocks.
	failing, okA, okB := orderCreated(t), orderCreated(t), orderCreated(t)
	require.NoError(t, pub.Publish(ctx, failing, okA, okB), "publish before the alarm")

	node.SetMemoryAlarm(t)
	alarmOn := true
	t.Cleanup(func() {
		if alarmOn {
			node.ClearMemoryAlarm(t)
		}
	})
	// Nothing is published here: the connection finds out by itself.
	require.Eventually(t, func() bool { return errors.Is(conn.Check(ctx), rabbit.ErrBlocked) }, 30*time.Second,
		20*time.Millisecond, "readiness reports the alarm")
	assert.EqualError(t, conn.Check(ctx), "blocked: low on memory", "readiness says why")

	refused := orderCreated(t)
	err = pub.Publish(ctx, refused)
	require.ErrorIs(t, err, rabbit.ErrBlocked, "publishing is refused while blocked")
	assert.NotErrorIs(t, err, context.DeadlineExceeded, "refused without waiting for a confirm")

	var mu sync.Mutex
	handled := map[string][]int{} // message id → attempts seen
	seen := func(id string) []int {
		mu.Lock()
		defer mu.Unlock()
		return handled[id]
	}
	consumer := rabbit.NewConsumer(conn, pub, rabbit.ConsumerConfig{
		Queue: queue, Prefetch: 2, Workers: 1, MaxAttempts: 3,
	}, func(_ context.Context, ds []rabbit.Delivery) []error {
		errs := make([]error, len(ds))
		mu.Lock()
		defer mu.Unlock()
		for i, d := range ds {
			handled[d.MessageID] = append(handled[d.MessageID], d.Attempt)
			if d.MessageID == failing.ID.String() && d.Attempt == 1 {
				errs[i] = errors.New("database timeout")
			}
		}
		return errs
	}, quiet, nil)
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = consumer.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })

	require.Eventually(t, func() bool { return len(seen(okA.ID.String())) == 1 && len(seen(okB.ID.String())) == 1 },
		30*time.Second, 20*time.Millisecond, "the consumer keeps consuming while the broker is blocked")
	require.ErrorIs(t, conn.Check(ctx), rabbit.ErrBlocked, "still blocked while the consumer ran")
	assert.Equal(t, []int{1}, seen(failing.ID.String()), "the failing message waits for the alarm, not redelivered")

	node.ClearMemoryAlarm(t)
	alarmOn = false
	require.Eventually(t, func() bool { return conn.Check(ctx) == nil }, 30*time.Second, 20*time.Millisecond,
		"ready again once the alarm clears")
	marker := orderCreated(t)
	require.NoError(t, pub.Publish(ctx, marker), "publishing works again")
	require.Eventually(t, func() bool { return len(seen(marker.ID.String())) == 1 }, 30*time.Second, 20*time.Millisecond,
		"the marker published after the alarm is consumed")
	require.Eventually(t, func() bool { return len(seen(failing.ID.String())) == 2 }, 30*time.Second, 20*time.Millisecond,
		"the held message was retried once the alarm cleared")
	assert.Equal(t, []int{1, 2}, seen(failing.ID.String()), "retried through the delay tier, attempt 2")
	// The refused message would have been queued before the marker, by the
	// same connection: it never took effect.
	assert.Empty(t, seen(refused.ID.String()), "a publish refused during the alarm never takes effect")
}

// TestBlockedConsumerStopsWithoutLosingHeldMessages stops a consumer that
// holds a message whose retry the blocked broker refused: the message goes
// back to its queue, neither lost nor half-retried.
func TestBlockedConsumerStopsWithoutLosingHeldMessages(t *testing.T) {
	t.Parallel()
	node := testinfra.StartRabbitNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := rabbit.Dial(ctx, node.AMQPURL, t.Name(), topology, quiet)
	require.NoError(t, err, "dial the private node")
	pub := rabbit.NewPublisher(conn, "test", 5*time.Minute)
	t.Cleanup(func() {
		pub.Close()
		conn.Close()
	})
	m := orderCreated(t)
	require.NoError(t, pub.Publish(ctx, m), "publish before the alarm")
	node.SetMemoryAlarm(t)
	require.Eventually(t, func() bool { return errors.Is(conn.Check(ctx), rabbit.ErrBlocked) }, 30*time.Second,
		20*time.Millisecond, "readiness reports the alarm")

	failed := make(chan struct{}, 10)
	consumer := rabbit.NewConsumer(conn, pub, rabbit.ConsumerConfig{Queue: queue},
		func(_ context.Context, ds []rabbit.Delivery) []error {
			errs := make([]error, len(ds))
			for i := range ds {
				errs[i] = errors.New("database timeout")
				failed <- struct{}{}
			}
			return errs
		}, quiet, nil)
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = consumer.Run(runCtx) }()
	select {
	case <-failed:
	case <-time.After(30 * time.Second):
		require.Fail(t, "the message was not consumed during the alarm")
	}
	stop()
	<-done

	require.ErrorIs(t, conn.Check(ctx), rabbit.ErrBlocked, "still blocked when the consumer stopped")
	work := count(t, node.AMQPURL, queue)
	retries := count(t, node.AMQPURL, rabbit.RetryQueue(queue, 0))
	assert.Equal(t, 1, work, "the held message is back in its queue")
	assert.Zero(t, retries, "and not in the delay tier")
	node.ClearMemoryAlarm(t)
}
