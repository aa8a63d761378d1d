package main

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/saga"
)

// TestEveryCommandTakesJSON: each command line of the main usage offers
// --json, and its own usage describes it, so a new command without it
// fails here. console is a server: it prints no result.
func TestEveryCommandTakesJSON(t *testing.T) {
	t.Parallel()
	commands := 0
	for _, line := range strings.Split(usageMain, "\n") {
		if !strings.HasPrefix(line, "  sagactl ") || line == "  sagactl --help" || strings.HasPrefix(line, "  sagactl console") {
			continue
		}
		commands++
		assert.Contains(t, line, "[--json]", "usage line %q", line)
	}
	assert.GreaterOrEqual(t, commands, 6, "the usage's command lines")
	for name, usage := range map[string]string{
		"list": usageList, "show": usageShow, "replay": usageReplay, "purge": usagePurge, "topology": usageTopology,
		"groups": usageGroups, "audit": usageAudit,
	} {
		assert.Contains(t, usage, "--json ", "the usage of %s describes --json", name)
	}
}

func TestVersionJSON(t *testing.T) {
	t.Parallel()
	env := map[string]string{"AMQP_URL": "amqp://guest:guest@127.0.0.1:1/"}
	r := sagactl(t, env, "--version", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var v map[string]string
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &v), r.stdout)
	assert.Equal(t, map[string]string{"version": "dev", "commit": "unknown", "go": runtime.Version()}, v)

	r = sagactl(t, env, "--version", "--yaml")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, `--version: unexpected argument "--yaml"`)
}

func TestDLQReplayJSON(t *testing.T) {
	t.Parallel()
	b, env := vhost(t, true)
	seed(t, b.AMQPURL, commandsDLQ, deadLetter(t, commandsQueue, "transient", "timeout"),
		deadLetter(t, commandsQueue, "transient", "timeout"))
	r := sagactl(t, env, "dlq", "replay", commandsDLQ, "--all", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.JSONEq(t, `{"queue": "order-service.commands.dlq", "workQueue": "order-service.commands", "replayed": 2, "dryRun": false}`, r.stdout)
	assert.Empty(t, r.stderr)
	requireCount(t, b.AMQPURL, commandsDLQ, 0, "the DLQ is empty")
	assert.Len(t, drain(t, b.AMQPURL, commandsQueue, 2), 2, "both in the work queue")

	r = sagactl(t, env, "dlq", "replay", commandsDLQ, "--id", "no-such-id", "--json")
	assert.Equal(t, exitFailure, r.code)
	assert.Empty(t, r.stdout, "nothing replayed: no JSON")
	assert.Contains(t, r.stderr, "no message with message_id")
}

func TestDLQPurgeJSON(t *testing.T) {
	t.Parallel()
	b, env := vhost(t, true)
	seed(t, b.AMQPURL, paymentsDLQ, deadLetter(t, saga.QueueOrderPaymentEvents, "permanent", "bad"))
	r := sagactl(t, env, "dlq", "purge", "--json", paymentsDLQ, "--yes")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.JSONEq(t, `{"queue": "order-service.payment-events.dlq", "purged": 1}`, r.stdout)
	assert.Equal(t, 0, count(t, b.AMQPURL, paymentsDLQ), "queue empty")
}
