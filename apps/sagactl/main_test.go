package main

import (
	"bytes"
	"context"
	"encoding/json"
	"runtime"
	"slices"
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
)

const (
	commandsQueue = saga.QueueOrderCommands
	commandsDLQ   = saga.QueueOrderCommands + ".dlq"
	paymentsDLQ   = saga.QueueOrderPaymentEvents + ".dlq"
)

// result is what one sagactl invocation did.
type result struct {
	code           int
	stdout, stderr string
}

// sagactl runs the CLI in-process with env as its whole environment.
func sagactl(t testing.TB, env map[string]string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, func(k string) string { return env[k] }, &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// vhost returns a fresh vhost, with the saga topology declared when
// declare is set, and the environment that points sagactl at it.
func vhost(t testing.TB, declare bool) (testinfra.Broker, map[string]string) {
	t.Helper()
	b := testinfra.VHost(t)
	if declare {
		withChannel(t, b.AMQPURL, func(ch *amqp.Channel) {
			require.NoError(t, rabbit.Declare(ch, saga.Topology(), rabbit.QuorumTiers), "declare the topology")
		})
	}
	return b, map[string]string{"AMQP_URL": b.AMQPURL, "RABBITMQ_MGMT_URL": b.ManagementURL, "SAGACTL_STATE_DIR": t.TempDir()}
}

func withChannel(t testing.TB, url string, f func(ch *amqp.Channel)) {
	t.Helper()
	conn, err := amqp.Dial(url)
	require.NoError(t, err, "dial the test vhost")
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err, "open a channel")
	defer ch.Close()
	f(ch)
}

// deadLetter is a message as the consumer of work queue leaves it in its
// dead-letter queue: the original properties plus the error headers.
func deadLetter(t testing.TB, queue, kind, reason string) amqp.Publishing {
	t.Helper()
	orderID := uuid.New()
	body, err := json.Marshal(map[string]any{"orderId": orderID, "userId": uuid.New(), "total": 1250,
		"currency": "USD", "paymentMethod": "tok_visa"})
	require.NoError(t, err)
	return amqp.Publishing{
		ContentType:   "application/json",
		DeliveryMode:  amqp.Persistent,
		MessageId:     uuid.NewString(),
		Type:          events.TypeOrderCreateRequested,
		CorrelationId: orderID.String(),
		Timestamp:     time.Now().UTC().Truncate(time.Second),
		AppId:         "gateway",
		Headers: amqp.Table{
			rabbit.HeaderSchemaVersion: int32(1),
			rabbit.HeaderCausationID:   "req-42",
			rabbit.HeaderError:         reason,
			rabbit.HeaderErrorKind:     kind,
			rabbit.HeaderAttempts:      int32(5),
			rabbit.HeaderLastError:     reason,
			rabbit.HeaderOriginalQueue: queue,
			rabbit.HeaderFailedAt:      time.Now().UTC().Format(time.RFC3339Nano),
		},
		Body: body,
	}
}

// seed publishes msgs straight to queue, confirmed.
func seed(t testing.TB, url, queue string, msgs ...amqp.Publishing) {
	t.Helper()
	withChannel(t, url, func(ch *amqp.Channel) {
		require.NoError(t, ch.Confirm(false))
		for _, m := range msgs {
			dc, err := ch.PublishWithDeferredConfirm("", queue, true, false, m)
			require.NoError(t, err, "publish to %s", queue)
			ok, err := dc.WaitContext(context.Background())
			require.NoError(t, err)
			require.True(t, ok, "broker confirmed the seed message")
		}
	})
}

// count reads the exact number of ready messages of queue.
func count(t testing.TB, url, queue string) int {
	t.Helper()
	var n int
	withChannel(t, url, func(ch *amqp.Channel) {
		q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		require.NoError(t, err, "inspect %s", queue)
		n = q.Messages
	})
	return n
}

// requireCount waits until queue holds want messages: messages returned by
// a closed channel are back in a moment, not at once.
func requireCount(t testing.TB, url, queue string, want int, msg string) {
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

// drain takes (and acks) every message of queue, waiting until there are want.
func drain(t testing.TB, url, queue string, want int) []amqp.Delivery {
	t.Helper()
	requireCount(t, url, queue, want, "before draining")
	var out []amqp.Delivery
	withChannel(t, url, func(ch *amqp.Channel) {
		for {
			d, ok, err := ch.Get(queue, true)
			require.NoError(t, err)
			if !ok {
				return
			}
			out = append(out, d)
		}
	})
	return out
}

func ids(ds []amqp.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.MessageId
	}
	return out
}

func TestUsageErrorsExitTwo(t *testing.T) {
	t.Parallel()
	// Nothing answers here: a usage error must not need the broker.
	env := map[string]string{"AMQP_URL": "amqp://guest:guest@127.0.0.1:1/", "RABBITMQ_MGMT_URL": "http://127.0.0.1:1"}
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"no command", nil, "missing command"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"dlq without command", []string{"dlq"}, "missing dlq command"},
		{"unknown dlq command", []string{"dlq", "drop"}, `unknown dlq command "drop"`},
		{"list with an argument", []string{"dlq", "list", "extra"}, `unexpected argument "extra"`},
		{"list with an unknown flag", []string{"dlq", "list", "--csv"}, "flag provided but not defined: -csv"},
		{"show without queue", []string{"dlq", "show"}, "missing QUEUE"},
		{"show with two queues", []string{"dlq", "show", "a", "b"}, `unexpected argument "b"`},
		{"show -n zero", []string{"dlq", "show", commandsDLQ, "-n", "0"}, "-n 0: want at least 1"},
		{"show -n not a number", []string{"dlq", "show", commandsDLQ, "-n", "many"}, "invalid value"},
		{"replay without selection", []string{"dlq", "replay", commandsDLQ}, "exactly one of --id MESSAGE_ID, --group TYPE/FINGERPRINT and --all"},
		{"replay with both selections", []string{"dlq", "replay", commandsDLQ, "--all", "--id", "x"}, "exactly one of"},
		{"replay with an empty id", []string{"dlq", "replay", commandsDLQ, "--id", ""}, "empty message id"},
		{"replay without queue", []string{"dlq", "replay", "--all"}, "missing QUEUE"},
		{"purge without queue", []string{"dlq", "purge", "--yes"}, "missing QUEUE"},
		{"topology with an argument", []string{"topology", "now"}, `unexpected argument "now"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := sagactl(t, env, tt.args...)
			assert.Equal(t, exitUsage, r.code, "exit code; stderr: %s", r.stderr)
			assert.Contains(t, r.stderr, tt.want, "the reason")
			assert.Contains(t, r.stderr, "Usage", "the usage text")
			assert.Empty(t, r.stdout, "nothing on stdout")
		})
	}
}

func TestHelpGoesToStdoutAndExitsZero(t *testing.T) {
	t.Parallel()
	// Nothing answers here: help must not need the broker.
	env := map[string]string{"AMQP_URL": "amqp://guest:guest@127.0.0.1:1/", "RABBITMQ_MGMT_URL": "http://127.0.0.1:1"}
	tests := []struct {
		name string
		args []string
		want []string // in stdout
	}{
		{"-h", []string{"-h"}, []string{"Usage:", "sagactl dlq replay", "AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/",
			"RABBITMQ_MGMT_URL", "http://guest:guest@127.0.0.1:15672"}},
		{"--help", []string{"--help"}, []string{"Usage:", "Environment:", "AMQP_URL"}},
		{"help command", []string{"help"}, []string{"Usage:"}},
		{"dlq help", []string{"dlq", "--help"}, []string{"sagactl dlq purge QUEUE --yes"}},
		{"show help", []string{"dlq", "show", "-h"}, []string{"WITHOUT removing them"}},
		{"topology help", []string{"topology", "--help"}, []string{"Usage: sagactl topology"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			r := sagactl(t, env, tt.args...)
			assert.Equal(t, exitOK, r.code, "exit code; stderr: %s", r.stderr)
			for _, want := range tt.want {
				assert.Contains(t, r.stdout, want)
			}
			assert.Empty(t, r.stderr, "nothing on stderr")
			assert.Less(t, time.Since(start), 5*time.Second, "no broker was tried")
		})
	}
}

func TestVersionGoesToStdoutAndExitsZero(t *testing.T) {
	t.Parallel()
	// Nothing answers here: the version must not need the broker.
	env := map[string]string{"AMQP_URL": "amqp://guest:guest@127.0.0.1:1/", "RABBITMQ_MGMT_URL": "http://127.0.0.1:1"}
	for _, arg := range []string{"-version", "--version"} {
		t.Run(arg, func(t *testing.T) {
			t.Parallel()
			r := sagactl(t, env, arg)
			assert.Equal(t, exitOK, r.code, "exit code; stderr: %s", r.stderr)
			assert.Equal(t, "ordersaga dev (commit unknown, "+runtime.Version()+")\n", r.stdout, "the version line and nothing else")
			assert.Empty(t, r.stderr, "nothing on stderr")
		})
	}
}

func TestTopologyPrintsEveryQueueOfTheContract(t *testing.T) {
	t.Parallel()
	r := sagactl(t, nil, "topology")
	require.Equal(t, exitOK, r.code, r.stderr)
	names := []string{"orders.commands", "orders.events", "payments.events", "inventory.commands", "inventory.events"}
	for _, s := range saga.Subscriptions() {
		q := s.Queue
		names = append(names, q, q+".dlq")
		for i := range rabbit.RetryDelays {
			names = append(names, rabbit.RetryQueue(q, i))
		}
	}
	for _, n := range names {
		assert.Regexp(t, `(?m)^`+strings.ReplaceAll(n, ".", `\.`)+` `, r.stdout, "a line for %s", n)
	}
	assert.Contains(t, r.stdout, "order.create.requested", "bindings shown")
	assert.NotContains(t, r.stdout, "declared", "nothing declared without --declare")

	r = sagactl(t, nil, "topology", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var layout struct {
		Exchanges []struct{ Name, Type string }
		Queues    []struct {
			Name            string
			DeadLetterQueue string
			RetryQueues     []struct{ Name, Delay string }
		}
		Declared bool
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &layout), "valid JSON")
	assert.Len(t, layout.Exchanges, len(events.Exchanges()), "every exchange of the contract")
	require.Len(t, layout.Queues, len(saga.Subscriptions()), "a queue per subscription of saga/saga.conf")
	assert.Equal(t, commandsQueue, layout.Queues[0].Name)
	assert.Equal(t, commandsDLQ, layout.Queues[0].DeadLetterQueue)
	assert.Len(t, layout.Queues[0].RetryQueues, len(rabbit.RetryDelays))
	assert.False(t, layout.Declared)
}

func TestTopologyDeclare(t *testing.T) {
	t.Parallel()
	b, env := vhost(t, false)
	r := sagactl(t, env, "topology", "--declare")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, `declared on the broker, vhost "`+b.VHost+`"`)
	for _, q := range []string{commandsQueue, commandsDLQ, rabbit.RetryQueue(commandsQueue, 0), paymentsDLQ,
		saga.QueuePaymentOrderEvents + ".dlq"} {
		assert.Equal(t, 0, count(t, b.AMQPURL, q), "%s exists and is empty", q)
	}
}

func TestDLQList(t *testing.T) {
	t.Parallel()
	b, env := vhost(t, true)
	seed(t, b.AMQPURL, commandsDLQ, deadLetter(t, commandsQueue, "permanent", "invalid message"),
		deadLetter(t, commandsQueue, "permanent", "invalid message"))
	seed(t, b.AMQPURL, paymentsDLQ, deadLetter(t, saga.QueueOrderPaymentEvents, "transient", "db down"))
	// A work queue's messages are not dead letters.
	seed(t, b.AMQPURL, commandsQueue, deadLetter(t, commandsQueue, "permanent", "x"))

	r := sagactl(t, env, "dlq", "list")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Regexp(t, `(?m)^QUEUE +MESSAGES$`, r.stdout, "a header")
	assert.Regexp(t, `(?m)^order-service\.commands\.dlq +2$`, r.stdout)
	assert.Regexp(t, `(?m)^order-service\.payment-events\.dlq +1$`, r.stdout)
	assert.Regexp(t, `(?m)^payment-service\.order-events\.dlq +0$`, r.stdout)
	assert.NotRegexp(t, `(?m)^order-service\.commands +`, r.stdout, "work queues are not listed")
	assert.NotContains(t, r.stdout, ".retry.", "retry queues are not listed")

	r = sagactl(t, env, "dlq", "list", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var got []struct {
		Queue    string
		Messages int
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), "valid JSON")
	// Every work queue of the saga has its dead-letter queue listed, by
	// name, with its depth.
	var want []struct {
		Queue    string
		Messages int
	}
	for _, q := range saga.Topology().Queues {
		dlq := events.DeadLetterQueue(q.Name)
		want = append(want, struct {
			Queue    string
			Messages int
		}{dlq, map[string]int{commandsDLQ: 2, paymentsDLQ: 1}[dlq]})
	}
	slices.SortFunc(want, func(a, b struct {
		Queue    string
		Messages int
	}) int {
		return strings.Compare(a.Queue, b.Queue)
	})
	assert.Equal(t, want, got, "every dead-letter queue of the saga, by name")
}

func TestDLQListEmptyVHost(t *testing.T) {
	t.Parallel()
	_, env := vhost(t, false)
	r := sagactl(t, env, "dlq", "list")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "no dead-letter queues")
	r = sagactl(t, env, "dlq", "list", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.JSONEq(t, "[]", r.stdout)
}

func TestDLQShowLeavesMessagesInPlace(t *testing.T) {
	t.Parallel()
	b, env := vhost(t, true)
	first := deadLetter(t, commandsQueue, "permanent", "invalid message: total must be positive")
	second := deadLetter(t, commandsQueue, "transient", "orders database: connection refused")
	third := deadLetter(t, commandsQueue, "permanent", "unknown type")
	binary := deadLetter(t, commandsQueue, "permanent", "not JSON")
	binary.Body = []byte{0xff, 0xfe, 0x00, 0x01}
	seed(t, b.AMQPURL, commandsDLQ, first, second, third, binary)

	r := sagactl(t, env, "dlq", "show", commandsDLQ, "-n", "2")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "4 messages, the first 2 shown")
	for _, want := range []string{
		first.MessageId, first.CorrelationId, "order.create.requested", "gateway",
		"invalid message: total must be positive", "permanent",
		second.MessageId, "orders database: connection refused", "transient",
		first.Timestamp.Format(time.RFC3339), string(first.Body),
	} {
		assert.Contains(t, r.stdout, want)
	}
	for _, line := range []string{
		`x-attempts: +5`, `x-original-queue: +order-service\.commands`,
		`header x-schema-version: +1`, `header x-causation-id: +req-42`,
	} {
		assert.Regexp(t, `(?m)^`+line+`$`, r.stdout)
	}
	assert.NotContains(t, r.stdout, third.MessageId, "only -n messages")
	requireCount(t, b.AMQPURL, commandsDLQ, 4, "show removes nothing")

	// Without the suffix, as JSON, past the end of the queue.
	r = sagactl(t, env, "dlq", "show", commandsQueue, "--json", "-n", "10")
	require.Equal(t, exitOK, r.code, r.stderr)
	var got struct {
		Queue    string
		Total    int
		Messages []struct {
			MessageID, Type, CorrelationID, AppID, ErrorKind, Error, OriginalQueue string
			Attempts                                                               int
			Headers                                                                map[string]any
			Body, BodyEncoding                                                     string
		}
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), "valid JSON")
	assert.Equal(t, commandsDLQ, got.Queue)
	assert.Equal(t, 4, got.Total)
	require.Len(t, got.Messages, 4)
	byID := map[string]int{}
	for i, m := range got.Messages {
		byID[m.MessageID] = i
	}
	m := got.Messages[byID[second.MessageId]]
	assert.Equal(t, "transient", m.ErrorKind)
	assert.Equal(t, "orders database: connection refused", m.Error)
	assert.Equal(t, 5, m.Attempts)
	assert.Equal(t, commandsQueue, m.OriginalQueue)
	assert.Equal(t, second.CorrelationId, m.CorrelationID)
	assert.EqualValues(t, 1, m.Headers[rabbit.HeaderSchemaVersion])
	assert.NotContains(t, m.Headers, rabbit.HeaderError, "error headers have their own fields")
	assert.Equal(t, "text", m.BodyEncoding)
	assert.JSONEq(t, string(second.Body), m.Body)
	bin := got.Messages[byID[binary.MessageId]]
	assert.Equal(t, "base64", bin.BodyEncoding)
	assert.Equal(t, "//4AAQ==", bin.Body)
	requireCount(t, b.AMQPURL, commandsDLQ, 4, "show --json removes nothing")
}

func TestDLQShowEmptyQueue(t *testing.T) {
	t.Parallel()
	_, env := vhost(t, true)
	r := sagactl(t, env, "dlq", "show", paymentsDLQ)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, paymentsDLQ+" is empty\n", r.stdout)
}

func TestDLQReplayByID(t *testing.T) {
	t.Parallel()
	b, env := vhost(t, true)
	msgs := []amqp.Publishing{
		deadLetter(t, commandsQueue, "permanent", "bad"),
		deadLetter(t, commandsQueue, "transient", "db down"),
		deadLetter(t, commandsQueue, "permanent", "worse"),
	}
	seed(t, b.AMQPURL, commandsDLQ, msgs...)
	picked := msgs[1]

	r := sagactl(t, env, "dlq", "replay", commandsDLQ, "--id", picked.MessageId)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "replayed 1 message from order-service.commands.dlq to order-service.commands\n", r.stdout)

	replayed := drain(t, b.AMQPURL, commandsQueue, 1)
	require.Len(t, replayed, 1, "exactly one message in the work queue")
	d := replayed[0]
	assert.Equal(t, picked.MessageId, d.MessageId)
	assert.Equal(t, picked.Type, d.Type)
	assert.Equal(t, picked.CorrelationId, d.CorrelationId)
	assert.Equal(t, picked.AppId, d.AppId)
	assert.Equal(t, picked.ContentType, d.ContentType)
	assert.Equal(t, amqp.Persistent, d.DeliveryMode)
	assert.True(t, picked.Timestamp.Equal(d.Timestamp), "timestamp kept")
	assert.Equal(t, picked.Body, d.Body)
	assert.EqualValues(t, 1, d.Headers[rabbit.HeaderSchemaVersion], "other headers kept")
	assert.Equal(t, "req-42", d.Headers[rabbit.HeaderCausationID])
	assert.Equal(t, commandsQueue, d.Headers[rabbit.HeaderOriginalQueue])
	for _, h := range []string{rabbit.HeaderError, rabbit.HeaderErrorKind, rabbit.HeaderAttempts, rabbit.HeaderLastError, rabbit.HeaderFailedAt} {
		assert.NotContains(t, d.Headers, h, "failure record removed")
	}
	require.IsType(t, "", d.Headers[rabbit.HeaderReplayedAt])
	at, err := time.Parse(time.RFC3339Nano, d.Headers[rabbit.HeaderReplayedAt].(string))
	require.NoError(t, err, "x-replayed-at is a time")
	assert.WithinDuration(t, time.Now(), at, time.Minute)

	left := drain(t, b.AMQPURL, commandsDLQ, 2)
	assert.ElementsMatch(t, []string{msgs[0].MessageId, msgs[2].MessageId}, ids(left), "the others stay in the DLQ")
	for _, d := range left {
		assert.NotEmpty(t, d.Headers[rabbit.HeaderError], "untouched")
	}
}

func TestDLQReplayAll(t *testing.T) {
	t.Parallel()
	b, env := vhost(t, true)
	var want []string
	for range 5 {
		m := deadLetter(t, commandsQueue, "transient", "timeout")
		want = append(want, m.MessageId)
		seed(t, b.AMQPURL, commandsDLQ, m)
	}
	r := sagactl(t, env, "dlq", "replay", "--all", commandsQueue) // without the suffix
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "replayed 5 messages")
	requireCount(t, b.AMQPURL, commandsDLQ, 0, "the DLQ is empty")
	got := drain(t, b.AMQPURL, commandsQueue, 5)
	assert.ElementsMatch(t, want, ids(got), "every message in the work queue")

	r = sagactl(t, env, "dlq", "replay", commandsDLQ, "--all")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "replayed 0 messages", "nothing left to replay")
}

func TestDLQReplayUnknownID(t *testing.T) {
	t.Parallel()
	b, env := vhost(t, true)
	seed(t, b.AMQPURL, commandsDLQ, deadLetter(t, commandsQueue, "permanent", "bad"),
		deadLetter(t, commandsQueue, "permanent", "bad"))
	r := sagactl(t, env, "dlq", "replay", commandsDLQ, "--id", "no-such-id")
	assert.Equal(t, exitFailure, r.code)
	assert.Equal(t, `sagactl: no message with message_id "no-such-id" in order-service.commands.dlq`+"\n", r.stderr)
	assert.Empty(t, r.stdout)
	requireCount(t, b.AMQPURL, commandsDLQ, 2, "the messages looked at are back")
	assert.Equal(t, 0, count(t, b.AMQPURL, commandsQueue), "nothing replayed")
}

func TestDLQPurge(t *testing.T) {
	t.Parallel()
	b, env := vhost(t, true)
	seed(t, b.AMQPURL, paymentsDLQ, deadLetter(t, saga.QueueOrderPaymentEvents, "permanent", "bad"),
		deadLetter(t, saga.QueueOrderPaymentEvents, "permanent", "bad"))

	r := sagactl(t, env, "dlq", "purge", paymentsDLQ)
	assert.Equal(t, exitFailure, r.code, "refused without --yes")
	assert.Contains(t, r.stderr, "refusing to purge order-service.payment-events.dlq (2 messages) without --yes")
	assert.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line")
	assert.Equal(t, 2, count(t, b.AMQPURL, paymentsDLQ), "messages kept")

	r = sagactl(t, env, "dlq", "purge", paymentsDLQ, "--yes")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "purged 2 messages from order-service.payment-events.dlq\n", r.stdout)
	assert.Equal(t, 0, count(t, b.AMQPURL, paymentsDLQ), "queue empty")
}

func TestUnknownQueues(t *testing.T) {
	t.Parallel()
	_, declared := vhost(t, true)
	_, bare := vhost(t, false)
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"show a queue outside the topology", declared, []string{"dlq", "show", "nosuch.dlq"},
			`"nosuch.dlq" is not a dead-letter queue of the saga topology`},
		{"show a work queue", declared, []string{"dlq", "show", "order-service.commands.retry.1s"},
			"is not a dead-letter queue of the saga topology"},
		{"replay a queue outside the topology", declared, []string{"dlq", "replay", "nosuch", "--all"},
			`"nosuch" is not a dead-letter queue`},
		{"purge a queue outside the topology", declared, []string{"dlq", "purge", "nosuch", "--yes"},
			`"nosuch" is not a dead-letter queue`},
		{"show a queue not declared", bare, []string{"dlq", "show", commandsDLQ},
			"queue order-service.commands.dlq does not exist"},
		{"replay into a vhost without the topology", bare, []string{"dlq", "replay", commandsDLQ, "--all"},
			"does not exist"},
		{"purge a queue not declared", bare, []string{"dlq", "purge", commandsDLQ, "--yes"},
			"does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := sagactl(t, tt.env, tt.args...)
			assert.Equal(t, exitFailure, r.code, "exit code")
			assert.Contains(t, r.stderr, tt.want)
			assert.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line: %q", r.stderr)
			assert.Empty(t, r.stdout)
		})
	}
}

func TestUnreachableBroker(t *testing.T) {
	t.Parallel()
	env := map[string]string{"AMQP_URL": "amqp://guest:guest@127.0.0.1:1/", "RABBITMQ_MGMT_URL": "http://127.0.0.1:1"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"dlq", "show", commandsDLQ}, func(k string) string { return env[k] }, &stdout, &stderr)
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, stderr.String(), "connect to broker")
	assert.NotContains(t, stderr.String(), "guest:guest", "no credentials in the error")
	assert.Equal(t, 1, strings.Count(stderr.String(), "\n"), "one line: %q", stderr.String())
}

func TestBadConfiguration(t *testing.T) {
	t.Parallel()
	r := sagactl(t, map[string]string{"AMQP_URL": "http://nope", "RABBITMQ_MGMT_URL": "ftp://x"}, "dlq", "list")
	assert.Equal(t, exitFailure, r.code)
	assert.Contains(t, r.stderr, "AMQP_URL")
	assert.Contains(t, r.stderr, "RABBITMQ_MGMT_URL")
	assert.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line: %q", r.stderr)
}

func TestDLQReplayByIDTakesEveryCopy(t *testing.T) {
	t.Parallel()
	b, env := vhost(t, true)
	dup := deadLetter(t, commandsQueue, "permanent", "bad")
	other := deadLetter(t, commandsQueue, "permanent", "bad")
	seed(t, b.AMQPURL, commandsDLQ, dup, other, dup)

	r := sagactl(t, env, "dlq", "replay", commandsDLQ, "--id", dup.MessageId)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "replayed 2 messages")
	assert.Equal(t, []string{dup.MessageId, dup.MessageId}, ids(drain(t, b.AMQPURL, commandsQueue, 2)))
	assert.Equal(t, []string{other.MessageId}, ids(drain(t, b.AMQPURL, commandsDLQ, 1)))
}

func TestDLQReplayWithoutItsWorkQueueKeepsTheMessages(t *testing.T) {
	t.Parallel()
	b, env := vhost(t, false)
	withChannel(t, b.AMQPURL, func(ch *amqp.Channel) {
		_, err := ch.QueueDeclare(commandsDLQ, true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
		require.NoError(t, err, "declare the dead-letter queue alone")
	})
	seed(t, b.AMQPURL, commandsDLQ, deadLetter(t, commandsQueue, "permanent", "bad"))

	r := sagactl(t, env, "dlq", "replay", commandsDLQ, "--all")
	assert.Equal(t, exitFailure, r.code)
	assert.Contains(t, r.stderr, "queue order-service.commands does not exist")
	requireCount(t, b.AMQPURL, commandsDLQ, 1, "the message stays in the DLQ")
}

// TestTopologyMigrateMovesClassicRetryTiers: a broker with the classic
// retry tiers of an earlier version (and messages waiting in one) gets the
// quorum tiers; the waiting messages move across, every classic tier is
// deleted, and a second run finds nothing to do.
func TestTopologyMigrateMovesClassicRetryTiers(t *testing.T) {
	t.Parallel()
	b, env := vhost(t, false)
	withChannel(t, b.AMQPURL, func(ch *amqp.Channel) {
		require.NoError(t, rabbit.Declare(ch, saga.Topology(), false), "the classic tiers of an earlier version")
		// The quorum tiers too, as a participant of the new version
		// starting first would: sagactl's own declaration is then quick on
		// a busy broker, and the messages below, which wait 15 s, are still
		// waiting when it moves them.
		require.NoError(t, rabbit.Declare(ch, saga.Topology(), true), "the quorum tiers")
	})
	longest := len(rabbit.RetryDelays) - 1 // 15 s: the messages are still there when sagactl runs
	classic, quorum := rabbit.ClassicRetryQueue(commandsQueue, longest), rabbit.QuorumRetryQueue(commandsQueue, longest)
	seed(t, b.AMQPURL, classic, deadLetter(t, commandsQueue, "transient", "a"), deadLetter(t, commandsQueue, "transient", "b"))

	r := sagactl(t, env, "topology", "--migrate", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var out struct {
		Declared bool
		Migrated []struct {
			From, To string
			Moved    int
			Deleted  bool
		}
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), r.stdout)
	assert.True(t, out.Declared)
	require.Len(t, out.Migrated, len(saga.Topology().Queues)*len(rabbit.RetryDelays), "every classic tier")
	moved := 0
	for _, m := range out.Migrated {
		assert.True(t, m.Deleted, "%s deleted", m.From)
		moved += m.Moved
		if m.From == classic {
			assert.Equal(t, quorum, m.To)
			assert.Equal(t, 2, m.Moved, "the waiting messages moved across")
		}
	}
	assert.Equal(t, 2, moved, "nothing else moved")
	withChannel(t, b.AMQPURL, func(ch *amqp.Channel) {
		_, err := ch.QueueDeclarePassive(classic, true, false, false, false, nil)
		require.Error(t, err, "the classic tier is gone")
	})
	// The moved messages wait out the quorum tier's delay, then go back to
	// their work queue: nothing was lost on the way.
	deadline := time.Now().Add(2 * rabbit.RetryDelays[longest])
	for count(t, b.AMQPURL, commandsQueue) < 2 {
		require.True(t, time.Now().Before(deadline), "the moved messages reach %s", commandsQueue)
		time.Sleep(200 * time.Millisecond)
	}

	r = sagactl(t, env, "topology", "--migrate")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.NotContains(t, r.stdout, "migrated ", "a second run has nothing to move")
	assert.Contains(t, r.stdout, "no classic retry tiers")
}
