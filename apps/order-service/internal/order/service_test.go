package order

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"

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
	"github.com/ordersaga/ordersaga/libs/uow/uowtest"
	"github.com/ordersaga/ordersaga/saga"
)

// harness is the order service over a fresh database, with its handlers
// routed as the participant routes them.
type harness struct {
	*Service
	router *uow.Router
}

func newService(t testing.TB, timeout time.Duration) (*harness, *pgxpool.Pool) {
	t.Helper()
	pool := pgtest.Pool(t, 16, db.Messaging(), db.Order())
	reg := prometheus.NewRegistry()
	runner := uow.NewRunner(pool, nil, reg)
	svc := NewService(runner, slog.New(slog.DiscardHandler), Timeouts{Payment: timeout, Stock: timeout}, reg)
	router, err := uow.NewRouter(runner, saga.TopologyOf(ServiceName), svc.Handlers()...)
	require.NoError(t, err, "the handlers match the subscriptions")
	return &harness{Service: svc, router: router}, pool
}

// handle handles d as the consumer of its queue does.
func (h *harness) handle(ctx context.Context, d rabbit.Delivery) error {
	return h.router.Handler(h.router.QueueOf(d.Type))(ctx, []rabbit.Delivery{d})[0]
}

func create(t testing.TB, s *harness) uuid.UUID {
	t.Helper()
	id := uuid.New()
	require.NoError(t, s.handle(context.Background(), uowtest.Delivery(t, id.String(),
		events.OrderCreateRequested{OrderPlaced: events.OrderPlaced{OrderID: id, UserID: uuid.New(), Total: 900, Currency: "USD", PaymentMethod: "tok_visa"}})))
	return id
}

func paymentEvent(t testing.TB, typ string, orderID uuid.UUID) rabbit.Delivery {
	p := events.PaymentOutcome{PaymentID: uuid.New(), OrderID: orderID, Amount: 900, Currency: "USD"}
	refusal := events.PaymentRefusal{PaymentOutcome: p, Reason: "X"}
	payload := map[string]events.Payload{
		events.TypePaymentApproved:  events.PaymentApproved{PaymentOutcome: p},
		events.TypePaymentRefunded:  events.PaymentRefunded{PaymentOutcome: p},
		events.TypePaymentCancelled: events.PaymentCancelled{PaymentOutcome: p},
		events.TypePaymentDeclined:  events.PaymentDeclined{PaymentRefusal: refusal},
		events.TypePaymentFailed:    events.PaymentFailed{PaymentRefusal: refusal},
	}[typ]
	return uowtest.Delivery(t, orderID.String(), payload)
}

func TestPaymentOutcomes(t *testing.T) {
	t.Parallel()
	s, pool := newService(t, time.Hour)
	ctx := context.Background()
	cases := []struct {
		name       string
		event      string
		wantStatus string
		wantReason string
		wantEmit   string
	}{
		{"approved", events.TypePaymentApproved, events.StatusPaid, "", events.TypeOrderPaid},
		{"declined", events.TypePaymentDeclined, events.StatusCancelled, events.ReasonPaymentDeclined, events.TypeOrderCancelled},
		{"failed", events.TypePaymentFailed, events.StatusFailed, "", events.TypeOrderFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := create(t, s)
			d := paymentEvent(t, tc.event, id)
			require.NoError(t, s.handle(ctx, d))
			require.NoError(t, s.handle(ctx, d), "redelivery")
			o, err := s.Get(ctx, id)
			require.NoError(t, err)
			assert.Equal(t, tc.wantStatus, o.Status)
			if tc.wantReason != "" && assert.NotNil(t, o.CancelReason) {
				assert.Equal(t, tc.wantReason, *o.CancelReason)
			}
			assert.Equal(t, []string{events.TypeOrderCreated, tc.wantEmit}, uowtest.Emitted(t, pool, id.String()))
		})
	}
}

func TestStaleEventsNeverMoveAnOrderBackwards(t *testing.T) {
	t.Parallel()
	s, pool := newService(t, time.Hour)
	ctx := context.Background()
	id := create(t, s)
	require.NoError(t, s.handle(ctx, uowtest.Delivery(t, id.String(),
		events.OrderCancelRequested{OrderID: id, Reason: events.ReasonUserRequested})))
	// The payment was approved meanwhile; the payment service refunds it
	// on its own when it sees order.cancelled.
	for _, typ := range []string{events.TypePaymentApproved, events.TypePaymentFailed, events.TypePaymentDeclined, events.TypePaymentRefunded} {
		require.NoError(t, s.handle(ctx, paymentEvent(t, typ, id)), typ)
	}
	o, err := s.Get(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, events.StatusCancelled, o.Status)
	assert.Equal(t, events.ReasonUserRequested, *o.CancelReason)
	assert.Equal(t, []string{events.TypeOrderCreated, events.TypeOrderCancelled}, uowtest.Emitted(t, pool, id.String()))

	// Cancelling a cancelled order again changes nothing.
	require.NoError(t, s.handle(ctx, uowtest.Delivery(t, id.String(),
		events.OrderCancelRequested{OrderID: id, Reason: events.ReasonUserRequested})))
	assert.Len(t, uowtest.Emitted(t, pool, id.String()), 2)
}

func TestCancelAfterPaidEmitsPreviousStatus(t *testing.T) {
	t.Parallel()
	s, pool := newService(t, time.Hour)
	ctx := context.Background()
	id := create(t, s)
	require.NoError(t, s.handle(ctx, paymentEvent(t, events.TypePaymentApproved, id)))
	require.NoError(t, s.handle(ctx, uowtest.Delivery(t, id.String(),
		events.OrderCancelRequested{OrderID: id, Reason: events.ReasonUserRequested})))
	o, err := s.Get(ctx, id)
	require.NoError(t, err)
	assert.JSONEq(t, `{"orderId":"`+id.String()+`","reason":"USER_REQUESTED","previousStatus":"PAID","userId":"`+o.UserID.String()+`"}`,
		body(t, pool, id, events.TypeOrderCancelled), "order.cancelled carries its order's user (contract §4)")
}

func TestOutcomesCarryTheOrdersUser(t *testing.T) {
	t.Parallel()
	s, pool := newService(t, time.Hour)
	ctx := context.Background()
	for _, tc := range []struct{ event, emit, extra string }{
		// order.paid carries what the invoice needs (contract §6).
		{events.TypePaymentApproved, events.TypeOrderPaid, `,"total":900,"currency":"USD"`},
		{events.TypePaymentFailed, events.TypeOrderFailed, ""},
	} {
		t.Run(tc.emit, func(t *testing.T) {
			id := create(t, s)
			d := paymentEvent(t, tc.event, id)
			require.NoError(t, s.handle(ctx, d))
			o, err := s.Get(ctx, id)
			require.NoError(t, err)
			var p struct{ PaymentID string }
			require.NoError(t, json.Unmarshal(d.Body, &p))
			assert.JSONEq(t, `{"orderId":"`+id.String()+`","paymentId":"`+p.PaymentID+`","userId":"`+o.UserID.String()+`"`+tc.extra+`}`,
				body(t, pool, id, tc.emit))
		})
	}
}

// body is the body of the message of type typ that order id emitted.
func body(t testing.TB, pool *pgxpool.Pool, id uuid.UUID, typ string) string {
	t.Helper()
	var b []byte
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT body FROM outbox WHERE correlation_id = $1 AND message_type = $2",
		id.String(), typ).Scan(&b))
	return string(b)
}

func TestUnknownOrdersArePermanentFailures(t *testing.T) {
	t.Parallel()
	s, _ := newService(t, time.Hour)
	ctx := context.Background()
	id := uuid.New()
	err := s.handle(ctx, uowtest.Delivery(t, id.String(), events.OrderCancelRequested{OrderID: id, Reason: "USER_REQUESTED"}))
	assert.True(t, rabbit.IsPermanent(err), "cancel of an unknown order: %v", err)
	err = s.handle(ctx, paymentEvent(t, events.TypePaymentApproved, id))
	assert.True(t, rabbit.IsPermanent(err), "payment of an unknown order: %v", err)
}

func TestMessagesWithoutAHandler(t *testing.T) {
	t.Parallel()
	s, pool := newService(t, time.Hour)
	commands := s.router.Handler(saga.QueueOrderCommands)
	errs := commands(context.Background(), []rabbit.Delivery{
		{MessageID: "m1", Type: events.TypeOrderCreated, Body: []byte(`{}`)},
		{MessageID: "m2", Type: "order.shipped", Body: []byte(`{}`)},
	})
	assert.NoError(t, errs[0], "a contract type the queue has no use for is acknowledged and ignored")
	assert.True(t, rabbit.IsPermanent(errs[1]), "a type outside the contract is dead-lettered: %v", errs[1])
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT count(*) FROM outbox").Scan(&n))
	assert.Zero(t, n, "neither had an effect")
}

func TestTimeoutSweepCancelsOverdueOrdersOnce(t *testing.T) {
	t.Parallel()
	s, pool := newService(t, time.Minute)
	ctx := context.Background()
	var overdue []uuid.UUID
	for range 30 {
		overdue = append(overdue, create(t, s))
	}
	paid := create(t, s)
	require.NoError(t, s.handle(ctx, paymentEvent(t, events.TypePaymentApproved, paid)))
	// Age the 30 (and the paid one) past the timeout instead of waiting.
	_, err := pool.Exec(ctx, "UPDATE orders SET created_at = created_at - interval '2 minutes', updated_at = updated_at - interval '2 minutes'")
	require.NoError(t, err)
	fresh := create(t, s)

	// Two instances sweep at once.
	var wg sync.WaitGroup
	var counts [2]int
	for i := range 2 {
		wg.Go(func() {
			n, err := s.SweepTimeouts(ctx)
			assert.NoError(t, err)
			counts[i] = n
		})
	}
	wg.Wait()
	assert.Equal(t, len(overdue), counts[0]+counts[1], "each overdue order swept by exactly one instance")
	for _, id := range overdue {
		o, err := s.Get(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, events.StatusCancelled, o.Status)
		assert.Equal(t, events.ReasonPaymentTimeout, *o.CancelReason)
		assert.Equal(t, []string{events.TypeOrderCreated, events.TypeOrderCancelled}, uowtest.Emitted(t, pool, id.String()))
	}
	o, err := s.Get(ctx, paid)
	require.NoError(t, err)
	assert.Equal(t, events.StatusPaid, o.Status, "a paid order is no longer waiting")
	o, err = s.Get(ctx, fresh)
	require.NoError(t, err)
	assert.Equal(t, events.StatusPendingPayment, o.Status, "an order within its timeout waits on")
}

func createWithItems(t testing.TB, s *harness, lines ...events.Line) uuid.UUID {
	t.Helper()
	id := uuid.New()
	require.NoError(t, s.handle(context.Background(), uowtest.Delivery(t, id.String(), events.OrderCreateRequested{
		OrderPlaced: events.OrderPlaced{OrderID: id, UserID: uuid.New(), Currency: "USD", PaymentMethod: "tok_visa"},
		Items:       lines,
	})))
	return id
}

func reserved(t testing.TB, id uuid.UUID) rabbit.Delivery {
	t.Helper()
	return uowtest.Delivery(t, id.String(), events.StockReserved{OrderID: id, Currency: "USD", Total: 700, Items: []events.PricedLine{
		{SKU: "B", Quantity: 1, UnitPrice: 100}, {SKU: "A", Quantity: 2, UnitPrice: 300},
	}})
}

func TestOrdersWithItems(t *testing.T) {
	t.Parallel()
	s, pool := newService(t, time.Hour)
	ctx := context.Background()
	lines := []events.Line{{SKU: "A", Quantity: 2}, {SKU: "B", Quantity: 1}}

	t.Run("reserved, then on to payment", func(t *testing.T) {
		id := createWithItems(t, s, lines...)
		o, err := s.Get(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, events.StatusPendingStock, o.Status)
		assert.Nil(t, o.Total, "no total until reserved")
		assert.Equal(t, []Item{{SKU: "A", Quantity: 2}, {SKU: "B", Quantity: 1}}, o.Items)
		assert.JSONEq(t, `{"orderId":"`+id.String()+`","userId":"`+o.UserID.String()+`","items":[{"sku":"A","quantity":2},{"sku":"B","quantity":1}],"currency":"USD","paymentMethod":"tok_visa"}`,
			body(t, pool, id, events.TypeOrderPlaced))

		d := reserved(t, id)
		require.NoError(t, s.handle(ctx, d))
		require.NoError(t, s.handle(ctx, d), "redelivery")
		o, err = s.Get(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, events.StatusPendingPayment, o.Status)
		require.NotNil(t, o.Total)
		assert.Equal(t, int64(700), *o.Total)
		b, err := json.Marshal(o.Items)
		require.NoError(t, err)
		assert.JSONEq(t, `[{"sku":"A","quantity":2,"unitPrice":300,"lineTotal":600},{"sku":"B","quantity":1,"unitPrice":100,"lineTotal":100}]`, string(b))
		assert.Equal(t, []string{events.TypeOrderPlaced, events.TypeOrderCreated}, uowtest.Emitted(t, pool, id.String()))
		assert.JSONEq(t, `{"orderId":"`+id.String()+`","userId":"`+o.UserID.String()+`","total":700,"currency":"USD","paymentMethod":"tok_visa"}`,
			body(t, pool, id, events.TypeOrderCreated))

		require.NoError(t, s.handle(ctx, paymentEvent(t, events.TypePaymentApproved, id)))
		o, err = s.Get(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, events.StatusPaid, o.Status, "from there the payment flow is unchanged")
	})

	for _, reason := range []string{events.ReasonOutOfStock, events.ReasonUnknownProduct, events.ReasonCurrencyMismatch} {
		t.Run("rejected "+reason, func(t *testing.T) {
			id := createWithItems(t, s, lines...)
			require.NoError(t, s.handle(ctx, uowtest.Delivery(t, id.String(), events.StockRejected{OrderID: id, Reason: reason,
				Items: []events.RejectedLine{{SKU: "A", Requested: 2, Available: 0}}})))
			o, err := s.Get(ctx, id)
			require.NoError(t, err)
			assert.Equal(t, events.StatusCancelled, o.Status)
			assert.Equal(t, reason, *o.CancelReason)
			assert.Nil(t, o.Total)
			assert.JSONEq(t, `{"orderId":"`+id.String()+`","reason":"`+reason+`","previousStatus":"PENDING_STOCK","userId":"`+o.UserID.String()+`"}`,
				body(t, pool, id, events.TypeOrderCancelled))
		})
	}

	t.Run("cancelled while waiting for stock, reserved late", func(t *testing.T) {
		id := createWithItems(t, s, lines...)
		require.NoError(t, s.handle(ctx, uowtest.Delivery(t, id.String(), events.OrderCancelRequested{OrderID: id, Reason: events.ReasonUserRequested})))
		require.NoError(t, s.handle(ctx, reserved(t, id)))
		o, err := s.Get(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, events.StatusCancelled, o.Status, "the inventory releases the late reservation on its own")
		assert.Equal(t, []string{events.TypeOrderPlaced, events.TypeOrderCancelled}, uowtest.Emitted(t, pool, id.String()))
		assert.Contains(t, body(t, pool, id, events.TypeOrderCancelled), `"previousStatus":"PENDING_STOCK"`)
	})

	t.Run("stock movements are recorded only", func(t *testing.T) {
		id := createWithItems(t, s, lines...)
		for _, p := range []events.Payload{
			events.StockCommitted{StockMovement: events.StockMovement{OrderID: id, Items: lines}},
			events.StockReleased{StockMovement: events.StockMovement{OrderID: id, Items: lines}},
			events.StockReturned{StockMovement: events.StockMovement{OrderID: id, Items: lines}},
		} {
			require.NoError(t, s.handle(ctx, uowtest.Delivery(t, id.String(), p)), p.MessageType())
		}
		o, err := s.Get(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, events.StatusPendingStock, o.Status)
		entries, err := s.Timeline(ctx, id)
		require.NoError(t, err)
		assert.Len(t, entries, 5, "the create, order.placed and three stock movements")
	})
}

func TestStockTimeoutSweep(t *testing.T) {
	t.Parallel()
	s, pool := newService(t, time.Minute)
	ctx := context.Background()
	waiting := createWithItems(t, s, events.Line{SKU: "A", Quantity: 1})
	priced := createWithItems(t, s, events.Line{SKU: "A", Quantity: 1})
	require.NoError(t, s.handle(ctx, uowtest.Delivery(t, priced.String(), events.StockReserved{OrderID: priced, Currency: "USD", Total: 5,
		Items: []events.PricedLine{{SKU: "A", Quantity: 1, UnitPrice: 5}}})))
	_, err := pool.Exec(ctx, "UPDATE orders SET created_at = created_at - interval '90 seconds', updated_at = updated_at - interval '90 seconds'")
	require.NoError(t, err)
	fresh := createWithItems(t, s, events.Line{SKU: "A", Quantity: 1})

	n, err := s.SweepStockTimeouts(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	for id, want := range map[uuid.UUID]string{waiting: events.StatusCancelled, priced: events.StatusPendingPayment, fresh: events.StatusPendingStock} {
		o, err := s.Get(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, want, o.Status)
	}
	o, err := s.Get(ctx, waiting)
	require.NoError(t, err)
	assert.Equal(t, events.ReasonStockTimeout, *o.CancelReason)
	assert.Contains(t, body(t, pool, waiting, events.TypeOrderCancelled), `"previousStatus":"PENDING_STOCK"`)

	// An order that waited long for its stock has its whole payment
	// timeout from the moment it was priced.
	late := createWithItems(t, s, events.Line{SKU: "A", Quantity: 1})
	_, err = pool.Exec(ctx, "UPDATE orders SET created_at = created_at - interval '90 seconds', updated_at = updated_at - interval '90 seconds' WHERE id = $1", late)
	require.NoError(t, err)
	require.NoError(t, s.handle(ctx, uowtest.Delivery(t, late.String(), events.StockReserved{OrderID: late, Currency: "USD", Total: 5,
		Items: []events.PricedLine{{SKU: "A", Quantity: 1, UnitPrice: 5}}})))
	_, err = s.SweepTimeouts(ctx)
	require.NoError(t, err)
	o, err = s.Get(ctx, late)
	require.NoError(t, err)
	assert.Equal(t, events.StatusPendingPayment, o.Status, "not overdue for payment")
	o, err = s.Get(ctx, priced)
	require.NoError(t, err)
	assert.Equal(t, events.StatusCancelled, o.Status, "priced 90 seconds ago: overdue")
}

// TestOrderPaidCarriesTheLines: an order with items is paid with its lines
// as reserved, named as the inventory named them (contract §6's
// extension of order.paid).
func TestOrderPaidCarriesTheLines(t *testing.T) {
	t.Parallel()
	s, pool := newService(t, time.Hour)
	ctx := context.Background()
	id := createWithItems(t, s, events.Line{SKU: "A", Quantity: 2}, events.Line{SKU: "B", Quantity: 1})
	require.NoError(t, s.handle(ctx, uowtest.Delivery(t, id.String(), events.StockReserved{OrderID: id, Currency: "USD", Total: 700, Items: []events.PricedLine{
		{SKU: "B", Name: "Bee", Quantity: 1, UnitPrice: 100}, {SKU: "A", Quantity: 2, UnitPrice: 300},
	}})))
	approved := events.PaymentApproved{PaymentOutcome: events.PaymentOutcome{PaymentID: uuid.New(), OrderID: id, Amount: 700, Currency: "USD"}}
	require.NoError(t, s.handle(ctx, uowtest.Delivery(t, id.String(), approved)))
	var paid events.OrderPaid
	require.NoError(t, json.Unmarshal([]byte(body(t, pool, id, events.TypeOrderPaid)), &paid))
	assert.Equal(t, int64(700), paid.Total, "the approved amount")
	assert.Equal(t, "USD", paid.Currency)
	assert.Equal(t, []events.PaidLine{
		{SKU: "A", Quantity: 2, UnitPrice: 300}, // no name from the inventory: none
		{SKU: "B", Name: "Bee", Quantity: 1, UnitPrice: 100},
	}, paid.Items, "the order's lines in its own order, with their names")
}
