package ops_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/ordersaga/ordersaga/libs/rabbit"

	"github.com/ordersaga/ordersaga/apps/sagactl/internal/ops"
)

func TestNormalizeLeavesTheReason(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "order <id> not found", ops.Normalize("order 5f0c1a7e-1111-4222-8333-444455556666 not found"))
	assert.Equal(t, `invalid message: total must be a positive integer, got <n>`, ops.Normalize("invalid message: total must be a positive integer, got -5"))
	assert.Equal(t, `unknown message type "…"`, ops.Normalize(`unknown message type "order.teleport.requested"`))
	assert.Equal(t, "checksum <hex> bad", ops.Normalize("checksum deadbeef0123 bad"))
	assert.Equal(t, ops.Fingerprint("order 5f0c1a7e-1111-4222-8333-444455556666 not found"),
		ops.Fingerprint("order  9a0c1a7e-1111-4222-8333-444455556666 not found"), "one group")
	assert.NotEqual(t, ops.Fingerprint("order x not found"), ops.Fingerprint("order x cancelled"))
	assert.Len(t, ops.Fingerprint(""), 12)
}

func TestGroupMessages(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	msg := func(id, typ, reason, order string, at time.Time) ops.Message {
		return ops.Message{MessageID: id, Type: typ, Error: reason, CorrelationID: order, ErrorKind: "permanent",
			Headers: map[string]any{rabbit.HeaderFailedAt: at.Format(time.RFC3339Nano)}}
	}
	gs := ops.GroupMessages("q.dlq", []ops.Message{
		msg("a", "t1", "order 5f0c1a7e-1111-4222-8333-444455556666 not found", "o1", t0.Add(time.Minute)),
		msg("b", "t2", "boom", "o2", t0),
		msg("c", "t1", "order 9a0c1a7e-1111-4222-8333-444455556666 not found", "o3", t0),
		msg("d", "t2", "order 9a0c1a7e-1111-4222-8333-444455556666 not found", "o3", t0),
	})
	assert.Len(t, gs, 3, "by type and fingerprint")
	g := gs[0]
	assert.Equal(t, "t1", g.Type)
	assert.Equal(t, 2, g.Count)
	assert.Equal(t, []string{"a", "c"}, g.MessageIDs)
	assert.Equal(t, []string{"o1", "o3"}, g.Orders)
	assert.Equal(t, t0, g.FirstSeen)
	assert.Equal(t, t0.Add(time.Minute), g.LastSeen)
	assert.Equal(t, "order <id> not found", g.Reason)
}
