package uow_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/uow"
)

// consumer is a participant's part of a topology: one queue of its own,
// bound to order.created and order.cancelled, and one it only checks.
var consumer = events.Topology{Queues: []events.Queue{
	{Name: "c.order-events", Bindings: []events.Binding{
		{Exchange: events.ExchangeOrderEvents, Key: events.TypeOrderCreated},
		{Exchange: events.ExchangeOrderEvents, Key: events.TypeOrderCancelled},
	}},
	{Name: "other.commands", IfMissing: true, Bindings: []events.Binding{
		{Exchange: events.ExchangeOrderCommands, Key: events.TypeOrderCancelRequested},
	}},
}}

func created(context.Context, *uow.Tx, *events.OrderCreated) error     { return nil }
func cancelled(context.Context, *uow.Tx, *events.OrderCancelled) error { return nil }
func paidHandler(context.Context, *uow.Tx, *events.OrderPaid) error    { return nil }

func TestRouterRefusesHandlersThatDoNotMatchTheSubscriptions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		handlers []uow.Handler
		wantErr  []string
	}{
		{"exact", []uow.Handler{uow.On(created), uow.On(cancelled)}, nil},
		{"a bound type without a handler", []uow.Handler{uow.On(created)},
			[]string{"order.cancelled is bound to c.order-events but has no handler"}},
		{"a handler nothing feeds", []uow.Handler{uow.On(created), uow.On(cancelled), uow.On(paidHandler)},
			[]string{"a handler of order.paid, but no queue subscribes to it"}},
		{"two handlers of a type", []uow.Handler{uow.On(created), uow.On(created), uow.On(cancelled)},
			[]string{"two handlers of order.created"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := uow.NewRouter(nil, consumer, tc.handlers...)
			if tc.wantErr == nil {
				require.NoError(t, err)
				assert.Equal(t, []string{"c.order-events"}, r.Queues(), "only its own queues")
				assert.Equal(t, "c.order-events", r.QueueOf(events.TypeOrderCreated))
				return
			}
			for _, want := range tc.wantErr {
				assert.ErrorContains(t, err, want)
			}
		})
	}
}

func TestRouterDecodesAndIgnoresWhatItHasNoUseFor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, runner, _ := setup(t, "order_id uuid")
	var got []uuid.UUID
	r, err := uow.NewRouter(runner, consumer,
		uow.On(func(ctx context.Context, tx *uow.Tx, m *events.OrderCreated) error {
			got = append(got, m.OrderID)
			_, err := tx.Exec(ctx, "INSERT INTO effects VALUES ($1)", m.OrderID)
			return err
		}),
		uow.On(cancelled))
	require.NoError(t, err)
	order := uuid.New()
	valid, err := events.NewMessage(events.OrderCreated{OrderPlaced: events.OrderPlaced{
		OrderID: order, UserID: uuid.New(), Total: 1, Currency: "USD", PaymentMethod: "tok_visa"}}, order.String())
	require.NoError(t, err)
	d := func(typ string, body []byte) rabbit.Delivery {
		return rabbit.Delivery{MessageID: uuid.NewString(), Type: typ, CorrelationID: order.String(), Body: body}
	}
	errs := r.Handler("c.order-events")(ctx, []rabbit.Delivery{
		d(events.TypeOrderCreated, valid.Body),
		d(events.TypeOrderPaid, []byte(`{}`)),
		d("order.shipped", []byte(`{}`)),
		d(events.TypeOrderCreated, []byte(`{"orderId":1}`)),
	})
	require.Len(t, errs, 4)
	assert.NoError(t, errs[0])
	assert.NoError(t, errs[1], "a contract type the queue has no handler for is acknowledged")
	assert.True(t, rabbit.IsPermanent(errs[2]), "a type outside the contract is dead-lettered: %v", errs[2])
	assert.True(t, rabbit.IsPermanent(errs[3]), "an undecodable body is dead-lettered: %v", errs[3])
	assert.Equal(t, []uuid.UUID{order}, got, "the handler got the decoded payload, once")
	assert.Equal(t, 1, count(t, pool, "SELECT count(*) FROM inbox"), "only the handled message is recorded")
}
