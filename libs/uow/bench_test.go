package uow_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/db"
	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/postgres/pgtest"
	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/uow"
)

// BenchmarkConsumerBatch is a consumer's hot path: route and decode 32
// deliveries, and in one unit of work insert a row and emit one event for
// each, with an after-commit function each (as the services' metrics).
func BenchmarkConsumerBatch(b *testing.B) {
	ctx := context.Background()
	pool := pgtest.Pool(b, 4, db.Messaging())
	_, err := pool.Exec(ctx, "CREATE TABLE effects (order_id uuid)")
	require.NoError(b, err)
	runner := uow.NewRunner(pool, func([]events.Message) {}, prometheus.NewRegistry())
	topology := events.Topology{Queues: []events.Queue{{Name: "c", Bindings: []events.Binding{
		{Exchange: events.ExchangeOrderEvents, Key: events.TypeOrderCreated}}}}}
	router, err := uow.NewRouter(runner, topology, uow.On(func(ctx context.Context, tx *uow.Tx, e *events.OrderCreated) error {
		if _, err := tx.Exec(ctx, "INSERT INTO effects VALUES ($1)", e.OrderID); err != nil {
			return err
		}
		n := 0
		tx.AfterCommit(func() { n++ })
		return tx.Emit(events.OrderCreated{OrderPlaced: e.OrderPlaced}, e.OrderID.String())
	}))
	require.NoError(b, err)
	handle := router.Handler("c")
	const size = 32
	for b.Loop() {
		b.StopTimer()
		ds := make([]rabbit.Delivery, size)
		for i := range ds {
			id := uuid.New()
			m, err := events.NewMessage(events.OrderCreated{OrderPlaced: events.OrderPlaced{
				OrderID: id, UserID: uuid.New(), Total: 100, Currency: "USD", PaymentMethod: "tok_visa"}}, id.String())
			require.NoError(b, err)
			ds[i] = rabbit.Delivery{MessageID: m.ID.String(), Type: m.Type, CorrelationID: m.CorrelationID, Body: m.Body, Attempt: 1}
		}
		b.StartTimer()
		for _, err := range handle(ctx, ds) {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}
