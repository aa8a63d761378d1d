package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/db"
	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/postgres/pgtest"
	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/uow"
)

// harness is the inventory service over a fresh database; it runs each
// handler in a unit of work of its own, as a consumer does.
type harness struct {
	*Service
	runner *uow.Runner
	pool   *pgxpool.Pool
}

func newService(t testing.TB) *harness {
	t.Helper()
	pool := pgtest.Pool(t, 32, db.Messaging(), Schema())
	log := slog.New(slog.DiscardHandler)
	runner := uow.NewRunner(pool, nil, prometheus.NewRegistry())
	return &harness{Service: NewService(runner, log), runner: runner, pool: pool}
}

// handle runs the handler of p in a unit of work of its own.
func handle[T any, M interface {
	*T
	events.Payload
}](t testing.TB, h *harness, fn func(context.Context, *uow.Tx, M) error, p M) error {
	t.Helper()
	return h.runner.InTx(context.Background(), func(ctx context.Context, tx *uow.Tx) error { return fn(ctx, tx, p) })
}

func (h *harness) product(t testing.TB, sku string, price, onHand int64) {
	t.Helper()
	require.NoError(t, handle(t, h, h.createProduct, &events.ProductCreateRequested{SKU: sku, Name: "n " + sku, Price: price, Currency: "USD", OnHand: onHand}))
}

func (h *harness) stock(t testing.TB, sku string) Product {
	t.Helper()
	p, err := h.Get(context.Background(), sku)
	require.NoError(t, err)
	assert.Equal(t, p.OnHand-p.Reserved, p.Available)
	return p
}

func (h *harness) place(t testing.TB, lines ...events.Line) (uuid.UUID, error) {
	t.Helper()
	id := uuid.New()
	return id, handle(t, h, h.orderPlaced, &events.OrderItemsPlaced{OrderID: id, UserID: uuid.New(), Items: lines, Currency: "USD", PaymentMethod: "tok_visa"})
}

// emitted is what the inventory emitted for order id: type → body.
func (h *harness) emitted(t testing.TB, id uuid.UUID) map[string]string {
	t.Helper()
	rows, err := h.pool.Query(context.Background(), "SELECT message_type, body FROM outbox WHERE correlation_id = $1", id.String())
	require.NoError(t, err)
	out := map[string]string{}
	for rows.Next() {
		var typ string
		var body []byte
		require.NoError(t, rows.Scan(&typ, &body))
		out[typ] = string(body)
	}
	require.NoError(t, rows.Err())
	return out
}

func line(sku string, q int64) events.Line { return events.Line{SKU: sku, Quantity: q} }

// outcomes counts the orders ids that the inventory reserved, and those it
// rejected as out of stock.
func (h *harness) outcomes(t testing.TB, ids []uuid.UUID) [2]int {
	t.Helper()
	var n [2]int
	for _, id := range ids {
		e := h.emitted(t, id)
		if _, ok := e[events.TypeStockReserved]; ok {
			n[0]++
		}
		if b, ok := e[events.TypeStockRejected]; ok && strings.Contains(b, events.ReasonOutOfStock) {
			n[1]++
		}
	}
	return n
}

func TestReservationLifecycle(t *testing.T) {
	t.Parallel()
	h := newService(t)
	h.product(t, "A", 250, 10)
	h.product(t, "B", 100, 4)
	h.product(t, "A", 999, 99) // a second create changes nothing
	outcome := func(id uuid.UUID) events.OrderOutcome { return events.OrderOutcome{OrderID: id, PaymentID: uuid.New()} }

	paid, err := h.place(t, line("B", 1), line("A", 3))
	require.NoError(t, err)
	assert.JSONEq(t, `{"orderId":"`+paid.String()+`","items":[{"sku":"B","name":"n B","quantity":1,"unitPrice":100},{"sku":"A","name":"n A","quantity":3,"unitPrice":250}],"total":850,"currency":"USD"}`,
		h.emitted(t, paid)[events.TypeStockReserved])
	assert.Equal(t, int64(3), h.stock(t, "A").Reserved)
	assert.Equal(t, int64(10), h.stock(t, "A").OnHand)

	require.NoError(t, handle(t, h, h.orderPaid, &events.OrderPaid{OrderOutcome: outcome(paid)}))
	require.NoError(t, handle(t, h, h.orderPaid, &events.OrderPaid{OrderOutcome: outcome(paid)}), "a second order.paid changes nothing")
	a := h.stock(t, "A")
	assert.Equal(t, [2]int64{7, 0}, [2]int64{a.OnHand, a.Reserved}, "sold")
	assert.JSONEq(t, `{"orderId":"`+paid.String()+`","items":[{"sku":"A","quantity":3},{"sku":"B","quantity":1}]}`,
		h.emitted(t, paid)[events.TypeStockCommitted])

	require.NoError(t, handle(t, h, h.orderCancelled, &events.OrderCancelled{OrderID: paid, Reason: events.ReasonUserRequested, PreviousStatus: events.StatusPaid}))
	a = h.stock(t, "A")
	assert.Equal(t, [2]int64{10, 0}, [2]int64{a.OnHand, a.Reserved}, "a cancelled paid order's units are back on hand")
	assert.Contains(t, h.emitted(t, paid), events.TypeStockReturned)

	for _, tc := range []struct {
		name   string
		settle func(id uuid.UUID) error
	}{
		{"cancelled", func(id uuid.UUID) error {
			return handle(t, h, h.orderCancelled, &events.OrderCancelled{OrderID: id, Reason: events.ReasonPaymentDeclined, PreviousStatus: events.StatusPendingPayment})
		}},
		{"failed", func(id uuid.UUID) error {
			return handle(t, h, h.orderFailed, &events.OrderFailed{OrderOutcome: outcome(id)})
		}},
	} {
		t.Run(tc.name+" releases", func(t *testing.T) {
			id, err := h.place(t, line("A", 2), line("B", 4))
			require.NoError(t, err)
			assert.Equal(t, int64(4), h.stock(t, "B").Reserved)
			require.NoError(t, tc.settle(id))
			require.NoError(t, tc.settle(id), "twice changes nothing")
			a, b := h.stock(t, "A"), h.stock(t, "B")
			assert.Equal(t, [4]int64{10, 0, 4, 0}, [4]int64{a.OnHand, a.Reserved, b.OnHand, b.Reserved})
			assert.Contains(t, h.emitted(t, id), events.TypeStockReleased)
			require.NoError(t, handle(t, h, h.orderPaid, &events.OrderPaid{OrderOutcome: outcome(id)}))
			assert.Equal(t, int64(4), h.stock(t, "B").OnHand, "a released reservation is never committed")
		})
	}
}

func TestRejections(t *testing.T) {
	t.Parallel()
	h := newService(t)
	h.product(t, "A", 250, 2)
	require.NoError(t, handle(t, h, h.createProduct, &events.ProductCreateRequested{SKU: "E", Name: "e", Price: 1, Currency: "EUR", OnHand: 5}))
	cases := []struct {
		name  string
		lines []events.Line
		want  string
	}{
		{"out of stock", []events.Line{line("A", 3)},
			`{"reason":"OUT_OF_STOCK","items":[{"sku":"A","requested":3,"available":2}]}`},
		{"unknown sku", []events.Line{line("A", 1), line("NOPE", 1)},
			`{"reason":"UNKNOWN_PRODUCT","items":[{"sku":"A","requested":1,"available":2},{"sku":"NOPE","requested":1,"available":0}]}`},
		{"currency", []events.Line{line("A", 3), line("E", 1)},
			`{"reason":"CURRENCY_MISMATCH","items":[{"sku":"A","requested":3,"available":2},{"sku":"E","requested":1,"available":5}]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, err := h.place(t, tc.lines...)
			require.NoError(t, err)
			var got map[string]any
			require.NoError(t, json.Unmarshal([]byte(h.emitted(t, id)[events.TypeStockRejected]), &got))
			assert.Equal(t, id.String(), got["orderId"])
			delete(got, "orderId")
			b, _ := json.Marshal(got)
			assert.JSONEq(t, tc.want, string(b))
			assert.Zero(t, h.stock(t, "A").Reserved, "nothing held")
		})
	}
}

func TestEarlyCancellationIsRemembered(t *testing.T) {
	t.Parallel()
	h := newService(t)
	h.product(t, "A", 250, 5)
	id := uuid.New()
	require.NoError(t, handle(t, h, h.orderCancelled, &events.OrderCancelled{OrderID: id, Reason: events.ReasonUserRequested, PreviousStatus: events.StatusPendingStock}))
	require.NoError(t, handle(t, h, h.orderPlaced, &events.OrderItemsPlaced{OrderID: id, UserID: uuid.New(), Items: []events.Line{line("A", 1)}, Currency: "USD", PaymentMethod: "tok_visa"}))
	assert.Zero(t, h.stock(t, "A").Reserved, "never reserved")
	assert.Empty(t, h.emitted(t, id))
}

func TestCancelRacingTheReservationNeverLeavesUnitsHeld(t *testing.T) {
	t.Parallel()
	h := newService(t)
	h.product(t, "A", 250, 1000)
	var wg sync.WaitGroup
	for range 40 {
		id := uuid.New()
		wg.Go(func() {
			assert.NoError(t, handle(t, h, h.orderPlaced, &events.OrderItemsPlaced{OrderID: id, UserID: uuid.New(), Items: []events.Line{line("A", 1)}, Currency: "USD", PaymentMethod: "tok_visa"}))
		})
		wg.Go(func() {
			assert.NoError(t, handle(t, h, h.orderCancelled, &events.OrderCancelled{OrderID: id, Reason: events.ReasonUserRequested, PreviousStatus: events.StatusPendingStock}))
		})
	}
	wg.Wait()
	assert.Zero(t, h.stock(t, "A").Reserved, "whichever came first, nothing stays held")
}

func TestAdjustments(t *testing.T) {
	t.Parallel()
	h := newService(t)
	h.product(t, "A", 250, 5)
	_, err := h.place(t, line("A", 3))
	require.NoError(t, err)
	adjust := func(delta int64) uuid.UUID {
		id := uuid.New()
		require.NoError(t, handle(t, h, h.adjustStock, &events.StockAdjustRequested{AdjustmentID: id, SKU: "A", Delta: delta}))
		return id
	}
	adjust(4)
	refused := adjust(-7)
	adjust(-6)
	p := h.stock(t, "A")
	assert.Equal(t, [2]int64{3, 3}, [2]int64{p.OnHand, p.Reserved})
	list, total, err := h.Adjustments(context.Background(), "A", 10, 0)
	require.NoError(t, err)
	assert.Equal(t, int64(3), total)
	var statuses []string
	for _, a := range list {
		statuses = append(statuses, a.Status)
		if a.AdjustmentID == refused.String() && assert.NotNil(t, a.Reason) {
			assert.Equal(t, ReasonBelowReserved, *a.Reason)
		}
	}
	assert.Equal(t, []string{Applied, Refused, Applied}, statuses, "newest first")

	err = handle(t, h, h.adjustStock, &events.StockAdjustRequested{AdjustmentID: uuid.New(), SKU: "LATER", Delta: 1})
	require.ErrorIs(t, err, ErrNotFound)
	assert.False(t, rabbit.IsPermanent(err), "an unknown sku is retried: its create may come later")
}

// TestTheRace is contract §9 under concurrency: more orders than units,
// each reserving in its own transaction, some over several products in
// different line orders. Exactly the units on hand are reserved, never
// more, and no transaction deadlocks.
func TestTheRace(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		skus  []string
		lines func(i int, skus []string) []events.Line
	}{
		{"one product", []string{"R"}, func(int, []string) []events.Line { return []events.Line{line("R", 1)} }},
		{"three products in different line orders", []string{"X", "Y", "Z"}, func(i int, s []string) []events.Line {
			orders := [][3]int{{0, 1, 2}, {2, 1, 0}, {1, 2, 0}, {2, 0, 1}}
			o := orders[i%len(orders)]
			return []events.Line{line(s[o[0]], 1), line(s[o[1]], 1), line(s[o[2]], 1)}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newService(t)
			for _, sku := range tc.skus {
				h.product(t, sku, 100, 10)
			}
			var wg sync.WaitGroup
			ids := make([]uuid.UUID, 64)
			for i := range ids {
				wg.Go(func() {
					id, err := h.place(t, tc.lines(i, tc.skus)...)
					assert.NoError(t, err, "no deadlock, no constraint violation")
					ids[i] = id
				})
			}
			wg.Wait()
			assert.Equal(t, [2]int{10, 54}, h.outcomes(t, ids), "reserved, rejected for stock")
			for _, sku := range tc.skus {
				p := h.stock(t, sku)
				assert.Equal(t, [3]int64{10, 10, 0}, [3]int64{p.OnHand, p.Reserved, p.Available}, fmt.Sprint(sku))
			}
		})
	}
}
