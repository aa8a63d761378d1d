package console

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/events"

	"github.com/ordersaga/ordersaga/apps/sagactl/internal/ops"
)

func TestParseMetricsReadsTheOutboxGauges(t *testing.T) {
	t.Parallel()
	text := `# HELP ordersaga_outbox_backlog_messages Outbox rows not yet published.
# TYPE ordersaga_outbox_backlog_messages gauge
ordersaga_outbox_backlog_messages 7
ordersaga_outbox_oldest_age_seconds 2.5
ordersaga_messages_consumed_total{queue="a",result="ok"} 3
ordersaga_outbox_parked_messages{shard="1"} 1
ordersaga_outbox_parked_messages{shard="2"} 2
`
	m := parseMetrics(strings.NewReader(text), "ordersaga_outbox_backlog_messages", "ordersaga_outbox_oldest_age_seconds",
		"ordersaga_outbox_parked_messages")
	assert.Equal(t, map[string]float64{"ordersaga_outbox_backlog_messages": 7, "ordersaga_outbox_oldest_age_seconds": 2.5,
		"ordersaga_outbox_parked_messages": 3}, m)
}

func TestWaitsFor(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "payment-service", waitsFor(events.StatusPendingPayment).Service)
	assert.Contains(t, waitsFor(events.StatusPendingPayment).What, "no payment event yet")
	assert.Equal(t, "inventory-service", waitsFor(events.StatusPendingStock).Service)
	for _, s := range []string{events.StatusPaid, events.StatusCancelled, events.StatusFailed} {
		assert.Empty(t, waitsFor(s).Service, s)
	}
}

func TestHuman(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "12 s", human(12*time.Second))
	assert.Equal(t, "3 m 05 s", human(3*time.Minute+5*time.Second))
	assert.Equal(t, "2 h 10 m", human(2*time.Hour+10*time.Minute))
	assert.Equal(t, "3 d 4 h", human(76*time.Hour))
}

// TestMessagesFoldTheTimelines: one arrow per message, from its sender to
// the services that recorded it, a consumer that did not yet as pending.
func TestMessagesFoldTheTimelines(t *testing.T) {
	t.Parallel()
	c := testConsole(t)
	c.byName["payment-service"] = Service{Name: "payment-service", Timeline: "/x/{id}"}
	c.byName["inventory-service"] = Service{Name: "inventory-service", Timeline: "/y/{id}"}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	entries := []entry{
		{At: at, Service: "order-service", Type: events.TypeOrderCreateRequested, MessageID: "m1", Detail: "received"},
		{At: at.Add(time.Millisecond), Service: "order-service", Type: events.TypeOrderCreated, MessageID: "m2", Detail: "emitted"},
		{At: at.Add(2 * time.Millisecond), Service: "payment-service", Type: events.TypeOrderCreated, MessageID: "m2", Detail: "received"},
	}
	msgs := c.messages(entries, nil, map[string]bool{"m1": true})
	assert.Len(t, msgs, 2)
	assert.Equal(t, "gateway", msgs[0].From, "a command's sender is its exchange's publisher")
	assert.Equal(t, []string{"order-service"}, msgs[0].To)
	assert.True(t, msgs[0].Replayed)
	assert.Equal(t, "order-service", msgs[1].From)
	assert.Equal(t, []string{"payment-service"}, msgs[1].To)
	d := drawDiagram([]string{"gateway", "order-service", "payment-service"}, msgs)
	assert.Len(t, d.Rows, 2)
	assert.Equal(t, "replayed", d.Rows[0].Arrows[0].Class)
	assert.Equal(t, "sent", d.Rows[1].Arrows[0].Class)
}

// TestDeadLettersAreArrowsOfTheirOwn: a dead letter of the order is an
// arrow from its type's publisher to its queue's consumer, marked.
func TestDeadLettersAreArrowsOfTheirOwn(t *testing.T) {
	t.Parallel()
	c := testConsole(t)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	dead := map[string][]ops.Message{"order-service.commands.dlq": {{
		MessageID: "m9", Type: events.TypeOrderCancelRequested, Attempts: int32(1), Timestamp: at,
		Error: "cancel order x: order not found"}}}
	msgs := c.messages(nil, dead, nil)
	assert.Len(t, msgs, 1)
	assert.Equal(t, "gateway", msgs[0].From)
	assert.Equal(t, []string{"order-service"}, msgs[0].To)
	assert.Equal(t, "✕ order.cancel.requested (dead letter after 1 attempt(s))", msgs[0].Label())
	d := drawDiagram([]string{"gateway", "order-service"}, msgs)
	assert.Equal(t, "dead", d.Rows[0].Arrows[0].Class)
}

// TestRetriesMarkTheReceiversArrow: a message handled only after retries
// marks its receiver's arrow with their number; one handled at once does
// not, and its sender's outbox copy is the one the details show.
func TestRetriesMarkTheReceiversArrow(t *testing.T) {
	t.Parallel()
	c := testConsole(t)
	c.byName["payment-service"] = Service{Name: "payment-service", Timeline: "/x/{id}"}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sent := &kept{Exchange: events.ExchangeOrderEvents, CorrelationID: "o", Body: []byte(`{"orderId":"o"}`)}
	entries := []entry{
		{At: at, Service: "order-service", Type: events.TypeOrderCreated, MessageID: "m1", Detail: "emitted", Kept: sent},
		{At: at.Add(time.Second), Service: "payment-service", Type: events.TypeOrderCreated, MessageID: "m1", Detail: "received",
			Attempt: 3, LastError: "database timeout"},
		{At: at.Add(2 * time.Second), Service: "order-service", Type: events.TypeOrderPaid, MessageID: "m2", Detail: "emitted"},
		{At: at.Add(3 * time.Second), Service: "payment-service", Type: events.TypeOrderPaid, MessageID: "m2", Detail: "received"},
	}
	msgs := c.messages(entries, nil, nil)
	require.Len(t, msgs, 2)
	assert.Same(t, sent, msgs[0].Kept, "the sender's copy")
	require.Len(t, msgs[0].Retried(), 1)
	assert.Equal(t, "payment-service", msgs[0].Retried()[0].Service, "the receiver that retried")
	assert.Empty(t, msgs[1].Retried())
	d := drawDiagram([]string{"order-service", "payment-service"}, msgs)
	assert.Equal(t, "↻ 2 retries", d.Rows[0].Arrows[0].RetryMark())
	assert.Empty(t, d.Rows[1].Arrows[0].RetryMark(), "handled at once: no mark")
	assert.Equal(t, "↻ 1 retry", arrow{Retries: 1}.RetryMark())
	assert.Contains(t, msgs[0].Headers(), header{"exchange", events.ExchangeOrderEvents})
	assert.Equal(t, []header{{"message_id", "m2"}, {"type", events.TypeOrderPaid}}, msgs[1].Headers(),
		"what no timeline keeps is not made up")
}
