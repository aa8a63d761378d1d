// Package opstest is the one test suite of the dead-letter operations
// that sagactl's dlq commands and the console's Dead letters page both
// pass: the same scenarios on a real broker, through each front end.
package opstest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/testinfra"
	"github.com/ordersaga/ordersaga/saga"

	"github.com/ordersaga/ordersaga/apps/sagactl/internal/ops"
)

// FrontEnd is sagactl or the console, operating one vhost with one state
// directory.
type FrontEnd interface {
	// Groups returns the count of each group, by "TYPE/FINGERPRINT".
	Groups(t *testing.T) map[string]int
	// Replay replays sel from queue (a dry run when dryRun) and returns
	// what the front end says of it.
	Replay(t *testing.T, queue string, sel ops.Selection, dryRun bool) string
	// Purge purges queue, confirmed, and returns what it says.
	Purge(t *testing.T, queue string) string
	// Via is how the audit log names it.
	Via() string
}

// Env is where a front end works: a fresh vhost with the saga's topology,
// and a fresh state directory.
type Env struct {
	Broker   testinfra.Broker
	StateDir string
}

// Setup returns the front end for env.
type Setup func(t *testing.T, env Env) FrontEnd

const (
	dlq  = saga.QueueOrderCommands + ".dlq"
	work = saga.QueueOrderCommands
)

// Run runs every scenario through the front end setup returns.
func Run(t *testing.T, setup Setup) {
	t.Run("GroupDryRunAndReplay", func(t *testing.T) { t.Parallel(); groupDryRunAndReplay(t, setup) })
	t.Run("Purge", func(t *testing.T) { t.Parallel(); purge(t, setup) })
}

func newEnv(t *testing.T) Env {
	t.Helper()
	b := testinfra.VHost(t)
	withChannel(t, b.AMQPURL, func(ch *amqp.Channel) {
		require.NoError(t, rabbit.Declare(ch, saga.Topology(), rabbit.QuorumTiers), "declare the topology")
	})
	return Env{Broker: b, StateDir: t.TempDir()}
}

// groupDryRunAndReplay: two cancels of unknown orders (one reason, two
// ids) and a malformed create make two groups; a dry run of the first
// changes nothing; its replay moves exactly its two messages; the audit
// log has both.
func groupDryRunAndReplay(t *testing.T, setup Setup) {
	env := newEnv(t)
	fe := setup(t, env)
	a, b := deadLetter(t, events.TypeOrderCancelRequested, "order %s not found"), deadLetter(t, events.TypeOrderCancelRequested, "order %s not found")
	c := deadLetter(t, events.TypeOrderCreateRequested, "invalid message: total must be a positive integer")
	seed(t, env.Broker.AMQPURL, dlq, a, b, c)
	cancels := events.TypeOrderCancelRequested + "/" + ops.Fingerprint(a.Headers[rabbit.HeaderError].(string))
	creates := events.TypeOrderCreateRequested + "/" + ops.Fingerprint(c.Headers[rabbit.HeaderError].(string))
	assert.Equal(t, map[string]int{cancels: 2, creates: 1}, fe.Groups(t), "two groups")

	sel := ops.Selection{Type: events.TypeOrderCancelRequested, Fingerprint: ops.Fingerprint(a.Headers[rabbit.HeaderError].(string))}
	out := fe.Replay(t, dlq, sel, true)
	assert.Contains(t, out, "dry run: would replay 2 messages")
	requireCount(t, env.Broker.AMQPURL, dlq, 3, "a dry run changes nothing")
	assert.Equal(t, 0, count(t, env.Broker.AMQPURL, work))

	out = fe.Replay(t, dlq, sel, false)
	assert.Contains(t, out, "replayed 2 messages from "+dlq+" to "+work)
	requireCount(t, env.Broker.AMQPURL, dlq, 1, "the other group stays")
	requireCount(t, env.Broker.AMQPURL, work, 2, "the group is back in its work queue")
	assert.Equal(t, map[string]int{creates: 1}, fe.Groups(t))

	entries := audit(t, env)
	require.Len(t, entries, 2)
	assert.Equal(t, "replay", entries[0].Action)
	assert.Equal(t, 2, entries[0].Count)
	assert.ElementsMatch(t, []string{a.MessageId, b.MessageId}, entries[0].MessageIDs)
	assert.Equal(t, "replay-dry-run", entries[1].Action)
	for _, e := range entries {
		assert.Equal(t, fe.Via(), e.Via)
		assert.True(t, e.OK)
		assert.Equal(t, dlq, e.Queue)
	}
}

// purge empties a queue and the audit log says so.
func purge(t *testing.T, setup Setup) {
	env := newEnv(t)
	fe := setup(t, env)
	seed(t, env.Broker.AMQPURL, dlq, deadLetter(t, events.TypeOrderCancelRequested, "order %s not found"),
		deadLetter(t, events.TypeOrderCancelRequested, "order %s not found"))
	requireCount(t, env.Broker.AMQPURL, dlq, 2, "seeded")
	out := fe.Purge(t, dlq)
	assert.Contains(t, out, "purged 2 message")
	requireCount(t, env.Broker.AMQPURL, dlq, 0, "purged")
	entries := audit(t, env)
	require.Len(t, entries, 1)
	assert.Equal(t, "purge", entries[0].Action)
	assert.Equal(t, 2, entries[0].Count)
	assert.Equal(t, fe.Via(), entries[0].Via)
}

func audit(t *testing.T, env Env) []ops.AuditEntry {
	t.Helper()
	a, err := ops.OpenAudit(env.StateDir)
	require.NoError(t, err)
	entries, err := a.Recent(10)
	require.NoError(t, err)
	return entries
}

// deadLetter is a message of type typ as order-service dead-letters it,
// with reason (a %s in it becomes the order id).
func deadLetter(t *testing.T, typ, reason string) amqp.Publishing {
	t.Helper()
	orderID := uuid.NewString()
	body, err := json.Marshal(map[string]any{"orderId": orderID, "reason": "USER_REQUESTED"})
	require.NoError(t, err)
	if strings.Contains(reason, "%s") {
		reason = fmt.Sprintf(reason, orderID)
	}
	now := time.Now().UTC()
	return amqp.Publishing{
		ContentType: "application/json", DeliveryMode: amqp.Persistent, MessageId: uuid.NewString(), Type: typ,
		CorrelationId: orderID, Timestamp: now.Truncate(time.Second), AppId: "gateway", Body: body,
		Headers: amqp.Table{
			rabbit.HeaderSchemaVersion: int32(1), rabbit.HeaderError: reason, rabbit.HeaderErrorKind: "permanent",
			rabbit.HeaderAttempts: int32(1), rabbit.HeaderOriginalQueue: work, rabbit.HeaderFailedAt: now.Format(time.RFC3339Nano),
		},
	}
}

func withChannel(t *testing.T, url string, f func(ch *amqp.Channel)) {
	t.Helper()
	conn, err := amqp.Dial(url)
	require.NoError(t, err, "dial the test vhost")
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	defer ch.Close()
	f(ch)
}

func seed(t *testing.T, url, queue string, msgs ...amqp.Publishing) {
	t.Helper()
	withChannel(t, url, func(ch *amqp.Channel) {
		require.NoError(t, ch.Confirm(false))
		for _, m := range msgs {
			dc, err := ch.PublishWithDeferredConfirm("", queue, true, false, m)
			require.NoError(t, err)
			ok, err := dc.WaitContext(context.Background())
			require.NoError(t, err)
			require.True(t, ok)
		}
	})
}

func count(t *testing.T, url, queue string) int {
	t.Helper()
	var n int
	withChannel(t, url, func(ch *amqp.Channel) {
		q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		require.NoError(t, err)
		n = q.Messages
	})
	return n
}

// requireCount waits until queue holds want messages (messages returned by
// a closed channel are back in a moment, not at once).
func requireCount(t *testing.T, url, queue string, want int, msg string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := count(t, url, queue)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s holds %d messages, want %d", msg, queue, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// VHost is a fresh vhost with the saga's topology declared.
func VHost(t *testing.T) testinfra.Broker { return newEnv(t).Broker }
