package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/apps/sagactl/internal/ops"
	"github.com/ordersaga/ordersaga/apps/sagactl/internal/ops/opstest"
)

// cli is sagactl's dlq commands as an opstest.FrontEnd.
type cli struct{ env map[string]string }

func (c cli) Via() string { return "sagactl" }

func (c cli) Groups(t *testing.T) map[string]int {
	r := sagactl(t, c.env, "dlq", "groups", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var s ops.Scan
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &s))
	out := map[string]int{}
	for _, g := range s.Groups {
		out[g.Type+"/"+g.Fingerprint] += g.Count
	}
	return out
}

func (c cli) Replay(t *testing.T, queue string, sel ops.Selection, dryRun bool) string {
	args := []string{"dlq", "replay", queue}
	switch {
	case sel.All:
		args = append(args, "--all")
	case sel.ID != "":
		args = append(args, "--id", sel.ID)
	default:
		args = append(args, "--group", sel.Type+"/"+sel.Fingerprint)
	}
	if dryRun {
		args = append(args, "--dry-run")
	}
	r := sagactl(t, c.env, args...)
	require.Equal(t, exitOK, r.code, r.stderr)
	return r.stdout
}

func (c cli) Purge(t *testing.T, queue string) string {
	r := sagactl(t, c.env, "dlq", "purge", queue, "--yes")
	require.Equal(t, exitOK, r.code, r.stderr)
	return r.stdout
}

// TestDLQOperations runs the dead-letter suite the console passes too.
func TestDLQOperations(t *testing.T) {
	t.Parallel()
	opstest.Run(t, func(t *testing.T, env opstest.Env) opstest.FrontEnd {
		return cli{env: map[string]string{"AMQP_URL": env.Broker.AMQPURL, "RABBITMQ_MGMT_URL": env.Broker.ManagementURL,
			"SAGACTL_STATE_DIR": env.StateDir, "USER": "tester"}}
	})
}

func TestDLQAudit(t *testing.T) {
	t.Parallel()
	env := map[string]string{"SAGACTL_STATE_DIR": t.TempDir()}
	r := sagactl(t, env, "dlq", "audit")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "the audit log is empty")
	a, err := ops.OpenAudit(env["SAGACTL_STATE_DIR"])
	require.NoError(t, err)
	require.NoError(t, a.Record(ops.AuditEntry{Via: "console", Actor: "x", Action: "purge", Queue: "q.dlq", Count: 3, OK: true, Result: "purged 3 messages from q.dlq"}))
	r = sagactl(t, env, "dlq", "audit")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "purged 3 messages from q.dlq")
}
