package ops_test

import (
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/saga"

	"github.com/ordersaga/ordersaga/apps/sagactl/internal/ops"
)

func TestResolve(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		in       string
		wantDLQ  string
		wantWork string
		wantErr  bool
	}{
		{"dead-letter queue", "order-service.commands.dlq", "order-service.commands.dlq", "order-service.commands", false},
		{"work queue name", "payment-service.order-events", "payment-service.order-events.dlq", "payment-service.order-events", false},
		{"unknown", "billing.dlq", "", "", true},
		{"retry queue", "order-service.commands.retry.1s", "", "", true},
		{"empty", "", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dlq, work, err := ops.Resolve(saga.Topology(), tt.in)
			if tt.wantErr {
				require.ErrorIs(t, err, ops.ErrInvalid)
				assert.Contains(t, err.Error(), "order-service.commands.dlq", "the error lists the known queues")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantDLQ, dlq)
			assert.Equal(t, tt.wantWork, work)
		})
	}
}

func TestReplayedKeepsPropertiesAndDropsTheFailureRecord(t *testing.T) {
	t.Parallel()
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := time.Date(2026, 2, 3, 4, 5, 6, 7, time.FixedZone("x", 3600))
	d := amqp.Delivery{
		ContentType: "application/json", ContentEncoding: "identity", DeliveryMode: amqp.Transient, Priority: 3,
		CorrelationId: "order-1", ReplyTo: "r", Expiration: "60000", MessageId: "m-1", Timestamp: ts,
		Type: "order.created", UserId: "someone", AppId: "order-service", Body: []byte(`{"a":1}`),
		Headers: amqp.Table{
			rabbit.HeaderSchemaVersion: int32(1), rabbit.HeaderCausationID: "c-1", rabbit.HeaderOriginalQueue: "q",
			rabbit.HeaderError: "e", rabbit.HeaderErrorKind: "transient", rabbit.HeaderAttempts: int32(5), rabbit.HeaderLastError: "e",
			rabbit.HeaderFailedAt: "t", rabbit.HeaderDeath: []any{}, rabbit.HeaderDeliveryCount: int64(2),
		},
	}
	p := ops.Replayed(d, at)
	assert.Equal(t, amqp.Publishing{
		ContentType: "application/json", ContentEncoding: "identity", DeliveryMode: amqp.Persistent, Priority: 3,
		CorrelationId: "order-1", ReplyTo: "r", MessageId: "m-1", Timestamp: ts, Type: "order.created",
		AppId: "order-service", Body: []byte(`{"a":1}`),
		Headers: amqp.Table{
			rabbit.HeaderSchemaVersion: int32(1), rabbit.HeaderCausationID: "c-1", rabbit.HeaderOriginalQueue: "q",
			rabbit.HeaderReplayedAt: "2026-02-03T03:05:06.000000007Z",
		},
	}, p)
	assert.Contains(t, d.Headers, rabbit.HeaderError, "the delivery is not modified")
}
