package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"
)

// FloorQueue is the durable quorum queue the publish floor fills; the tool
// creates and deletes it.
const FloorQueue = "bench.floor"

// Floor is what the machine's broker and Postgres do at a concurrency,
// measured with the same tool in the same run: the ceiling no saga system
// on this machine can beat, whatever its code.
type Floor struct {
	Concurrency int `json:"concurrency"`
	// PublishPerSec: persistent ~200-byte messages to a durable quorum
	// queue, each waited for its publisher confirm, one confirm-mode
	// channel per goroutine.
	PublishPerSec  float64 `json:"publish_confirm_per_sec"`
	PublishLatency Latency `json:"publish_confirm_latency"`
	// TxPerSec: BEGIN; 3 × INSERT of a small row; COMMIT, one connection
	// per goroutine.
	TxPerSec  float64 `json:"tx3_per_sec"`
	TxLatency Latency `json:"tx3_latency"`
	// SagasPerSec is the naive per-saga floor: a saga needs at least 3
	// confirmed publishes and 3 committed transactions, so
	// 1 / (3/PublishPerSec + 3/TxPerSec).
	SagasPerSec float64 `json:"naive_sagas_per_sec"`
}

// SagaFloor is the naive per-saga rate the raw rates allow.
func SagaFloor(publishPerSec, txPerSec float64) float64 {
	if publishPerSec <= 0 || txPerSec <= 0 {
		return 0
	}
	return 1 / (3/publishPerSec + 3/txPerSec)
}

// timedLoop runs op on n goroutines for warmup+d and counts the operations
// that complete inside the window after warmup. setup gives each goroutine
// its own op (its own channel or connection).
func timedLoop(ctx context.Context, n int, warmup, d time.Duration, setup func(ctx context.Context) (op func(context.Context) error, closeFn func(), err error)) (perSec float64, lat Latency, err error) {
	ops := make([]func(context.Context) error, n)
	for i := range n {
		op, closeFn, err := setup(ctx)
		if err != nil {
			return 0, Latency{}, err
		}
		defer closeFn()
		ops[i] = op
	}
	start := time.Now()
	ws, we := start.Add(warmup), start.Add(warmup+d)
	var mu sync.Mutex
	hist := hdrhistogram.New(1, histogramMaxUS, histogramDigits)
	count := 0
	var firstErr error
	var wg sync.WaitGroup
	for _, op := range ops {
		wg.Go(func() {
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(we) {
					return
				}
				if err := op(ctx); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				t1 := time.Now()
				if !t0.Before(ws) && t1.Before(we) {
					mu.Lock()
					count++
					record(hist, t1.Sub(t0))
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return 0, Latency{}, firstErr
	}
	if err := ctx.Err(); err != nil {
		return 0, Latency{}, err
	}
	return float64(count) / d.Seconds(), Summarize(hist), nil
}

// PublishFloor measures publish-with-confirm on the vhost of amqpURL at
// concurrency n. The queue is purged afterwards; DeleteFloorQueue removes it.
func PublishFloor(ctx context.Context, amqpURL string, n int, warmup, d time.Duration) (float64, Latency, error) {
	conn, err := amqp.DialConfig(amqpURL, amqp.Config{Properties: amqp.Table{"connection_name": "loadgen floor"}})
	if err != nil {
		return 0, Latency{}, fmt.Errorf("publish floor: %w", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return 0, Latency{}, fmt.Errorf("publish floor: %w", err)
	}
	defer ch.Close()
	if _, err := ch.QueueDeclare(FloorQueue, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		return 0, Latency{}, fmt.Errorf("publish floor: declare %s: %w", FloorQueue, err)
	}
	// About the size of an order.create.requested with its properties.
	body := []byte(`{"orderId":"00000000-0000-4000-8000-000000000000","userId":"00000000-0000-4000-8000-000000000001","total":4200,"currency":"USD","paymentMethod":"tok_visa","pad":"` + strings.Repeat("x", 40) + `"}`)
	rate, lat, err := timedLoop(ctx, n, warmup, d, func(context.Context) (func(context.Context) error, func(), error) {
		pch, err := conn.Channel()
		if err != nil {
			return nil, nil, err
		}
		if err := pch.Confirm(false); err != nil {
			pch.Close()
			return nil, nil, err
		}
		op := func(ctx context.Context) error {
			dc, err := pch.PublishWithDeferredConfirmWithContext(ctx, "", FloorQueue, true, false, amqp.Publishing{
				ContentType: "application/json", DeliveryMode: amqp.Persistent, Body: body,
				MessageId: "floor", Type: "bench.floor", Timestamp: time.Now(),
			})
			if err != nil {
				return err
			}
			ok, err := dc.WaitContext(ctx)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("broker nacked a publish to %s", FloorQueue)
			}
			return nil
		}
		return op, func() { pch.Close() }, nil
	})
	if err != nil {
		return 0, Latency{}, fmt.Errorf("publish floor at %d: %w", n, err)
	}
	if _, err := ch.QueuePurge(FloorQueue, false); err != nil {
		return 0, Latency{}, fmt.Errorf("publish floor: purge: %w", err)
	}
	return rate, lat, nil
}

// DeleteFloorQueue removes the floor's queue.
func DeleteFloorQueue(amqpURL string) error {
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	_, err = ch.QueueDelete(FloorQueue, false, false, false)
	return err
}

// TxFloor measures 3-insert transactions on database dbURL (a scratch
// database, created empty) at concurrency n.
func TxFloor(ctx context.Context, dbURL string, n int, warmup, d time.Duration) (float64, Latency, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, Latency{}, fmt.Errorf("tx floor: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// Like a saga's rows: a uuid key, a few columns, a timestamp.
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS floor_rows (
		id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		key uuid NOT NULL DEFAULT gen_random_uuid(),
		kind text NOT NULL,
		amount bigint NOT NULL,
		at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return 0, Latency{}, fmt.Errorf("tx floor: create table: %w", err)
	}
	rate, lat, err := timedLoop(ctx, n, warmup, d, func(ctx context.Context) (func(context.Context) error, func(), error) {
		c, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			return nil, nil, err
		}
		op := func(ctx context.Context) error {
			tx, err := c.Begin(ctx)
			if err != nil {
				return err
			}
			for _, kind := range []string{"order", "inbox", "outbox"} {
				if _, err := tx.Exec(ctx, `INSERT INTO floor_rows (kind, amount) VALUES ($1, $2)`, kind, 4200); err != nil {
					_ = tx.Rollback(ctx)
					return err
				}
			}
			return tx.Commit(ctx)
		}
		return op, func() { c.Close(context.WithoutCancel(ctx)) }, nil
	})
	if err != nil {
		return 0, Latency{}, fmt.Errorf("tx floor at %d: %w", n, err)
	}
	if _, err := conn.Exec(ctx, `TRUNCATE floor_rows`); err != nil {
		return 0, Latency{}, fmt.Errorf("tx floor: truncate: %w", err)
	}
	return rate, lat, nil
}
