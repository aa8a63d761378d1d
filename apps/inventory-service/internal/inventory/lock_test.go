package inventory

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/uow"
	"github.com/ordersaga/ordersaga/libs/uow/uowtest"
	"github.com/ordersaga/ordersaga/saga"
)

// consumerHarness is the inventory's order-events queue as its consumer
// runs it: batches of deliveries through the router, each batch in one
// transaction, with LockStock first.
type consumerHarness struct {
	*harness
	handle rabbit.BatchHandler
	reg    *prometheus.Registry
}

func newConsumer(t testing.TB) *consumerHarness {
	t.Helper()
	h := newService(t)
	reg := prometheus.NewRegistry()
	runner := uow.NewRunner(h.pool, nil, reg)
	svc := NewService(runner, h.log)
	router, err := uow.NewRouter(runner, saga.TopologyOf(ServiceName), svc.Handlers()...)
	require.NoError(t, err)
	router.LockFirst(svc.LockStock)
	return &consumerHarness{harness: h, handle: router.Handler(router.QueueOf(events.TypeOrderPlaced)), reg: reg}
}

// fallbacks is how many batches failed as one transaction (a deadlock
// among them) and were handled again message by message.
func (c *consumerHarness) fallbacks(t testing.TB) float64 {
	t.Helper()
	mfs, err := c.reg.Gather()
	require.NoError(t, err)
	n := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "ordersaga_batch_fallbacks_total" {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

// runBatches handles the batches at once, each as one consumer worker
// would, and requires every delivery acknowledged: no retry. The batches
// lock the same products, so they run one after the other: their deadline
// (half of ctx's, as a consumer's) is generous, so that only a deadlock,
// never a slow machine, makes one fail.
func (c *consumerHarness) runBatches(t *testing.T, batches [][]rabbit.Delivery) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, b := range batches {
		wg.Go(func() {
			<-start
			for i, err := range c.handle(ctx, b) {
				assert.NoError(t, err, "delivery %d of a batch: handled at once, not retried", i)
			}
		})
	}
	close(start)
	wg.Wait()
}

// TestConcurrentBatchesDoNotDeadlock is the lock order across messages: a
// consumer's workers each handle a batch of orders in one transaction,
// the orders' lines over the same products in every order. Without
// LockStock two batches lock one product each for their first orders and
// then wait for each other's; with it every transaction locks its products
// first, in sku order, and no batch fails (a failed batch is one that
// deadlocked: its messages are handled again alone).
func TestConcurrentBatchesDoNotDeadlock(t *testing.T) {
	t.Parallel()
	c := newConsumer(t)
	skus := []string{"K1", "K2", "K3", "K4", "K5"}
	for _, k := range skus {
		c.product(t, k, 100, 100000)
	}
	rng := rand.New(rand.NewPCG(10, 10))
	const workers, perBatch, rounds = 6, 16, 3
	var placed []uuid.UUID
	for range rounds {
		var placing, releasing [][]rabbit.Delivery
		for range workers {
			var b []rabbit.Delivery
			for range perBatch {
				id, user := uuid.New(), uuid.New()
				var lines []events.Line
				for _, j := range rng.Perm(len(skus))[:1+rng.IntN(3)] {
					lines = append(lines, line(skus[j], 1))
				}
				b = append(b, uowtest.Delivery(t, id.String(), &events.OrderItemsPlaced{OrderID: id, UserID: user, Items: lines, Currency: "USD", PaymentMethod: "tok_visa"}))
				placed = append(placed, id)
			}
			placing = append(placing, b)
		}
		c.runBatches(t, placing)
		// Release them, in other batches: the products a cancellation
		// moves are read from its reservations.
		ids := placed[len(placed)-workers*perBatch:]
		for range workers {
			var b []rabbit.Delivery
			for _, i := range rng.Perm(len(ids))[:perBatch] {
				b = append(b, uowtest.Delivery(t, ids[i].String(), &events.OrderCancelled{OrderID: ids[i], Reason: events.ReasonUserRequested,
					PreviousStatus: events.StatusPendingPayment, UserID: uuid.New()}))
			}
			releasing = append(releasing, b)
		}
		c.runBatches(t, releasing)
	}
	assert.Zero(t, c.fallbacks(t), "no batch failed: none deadlocked")
	for _, id := range placed {
		assert.Contains(t, c.emitted(t, id), events.TypeStockReserved, "order %s reserved", id)
	}
}

// TestABatchDecidesOnWhatItsEarlierMessagesMoved is the products a
// transaction locked and keeps in memory: each reservation of a batch sees
// the units its earlier messages took and gave back, as it would reading
// them again. Order a takes the one unit and is cancelled, then b takes it;
// c finds none left. Order ids are sorted: a batch handles orders in
// their order.
func TestABatchDecidesOnWhatItsEarlierMessagesMoved(t *testing.T) {
	t.Parallel()
	c := newConsumer(t)
	c.product(t, "ONE", 100, 1)
	ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	slices.SortFunc(ids, func(x, y uuid.UUID) int { return strings.Compare(x.String(), y.String()) })
	a, b, cc := ids[0], ids[1], ids[2]
	placed := func(id uuid.UUID) rabbit.Delivery {
		return uowtest.Delivery(t, id.String(), &events.OrderItemsPlaced{OrderID: id, UserID: uuid.New(), Items: []events.Line{line("ONE", 1)}, Currency: "USD", PaymentMethod: "tok_visa"})
	}
	cancelled := uowtest.Delivery(t, a.String(), &events.OrderCancelled{OrderID: a, Reason: events.ReasonUserRequested,
		PreviousStatus: events.StatusPendingPayment, UserID: uuid.New()})
	c.runBatches(t, [][]rabbit.Delivery{{placed(cc), placed(a), placed(b), cancelled}})
	assert.Zero(t, c.fallbacks(t), "handled as one transaction")
	assert.Contains(t, c.emitted(t, a), events.TypeStockReleased)
	assert.Contains(t, c.emitted(t, b), events.TypeStockReserved, "b took the unit a gave back")
	assert.Contains(t, c.emitted(t, cc), events.TypeStockRejected, "none was left for c")
	p := c.stock(t, "ONE")
	assert.Equal(t, [2]int64{1, 1}, [2]int64{p.OnHand, p.Reserved})
}

// TestTheRaceInBatches is the race of 64 orders for 10 units as the
// consumer runs it: four workers' batches of 16 at once, each batch in one
// transaction deciding on the products it locked.
func TestTheRaceInBatches(t *testing.T) {
	t.Parallel()
	c := newConsumer(t)
	c.product(t, "R", 100, 10)
	var batches [][]rabbit.Delivery
	var ids []uuid.UUID
	for range 4 {
		var b []rabbit.Delivery
		for range 16 {
			id := uuid.New()
			ids = append(ids, id)
			b = append(b, uowtest.Delivery(t, id.String(), &events.OrderItemsPlaced{OrderID: id, UserID: uuid.New(), Items: []events.Line{line("R", 1)}, Currency: "USD", PaymentMethod: "tok_visa"}))
		}
		batches = append(batches, b)
	}
	c.runBatches(t, batches)
	assert.Zero(t, c.fallbacks(t))
	assert.Equal(t, [2]int{10, 54}, c.outcomes(t, ids), "reserved, rejected for stock")
	p := c.stock(t, "R")
	assert.Equal(t, [3]int64{10, 10, 0}, [3]int64{p.OnHand, p.Reserved, p.Available})
}
