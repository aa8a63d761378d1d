package testinfra

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRabbitNodeIsPrivateAndRemoved starts a node in a subtest, checks that
// it is a node of its own that rabbitmqctl reaches, and that nothing of it
// is left once the subtest's clean-up ran.
func TestRabbitNodeIsPrivateAndRemoved(t *testing.T) {
	t.Parallel()
	var node *RabbitNode
	t.Run("node", func(t *testing.T) {
		node = StartRabbitNode(t)
		assert.True(t, strings.HasPrefix(node.Name, "ordersaga-test-"), "a node name of its own: %s", node.Name)
		assert.NotContains(t, node.AMQPURL, ":5672/", "not the machine's AMQP port")

		out := node.MustCtl(t, "status")
		assert.Contains(t, out, node.Name, "rabbitmqctl reaches the node with its cookie")

		node.SetMemoryAlarm(t)
		assert.Contains(t, node.MustCtl(t, "status"), "Memory alarm on node "+node.Name, "the alarm is raised")
		node.ClearMemoryAlarm(t)
		assert.NotContains(t, node.MustCtl(t, "status"), "Memory alarm", "the alarm is cleared")
	})
	if node == nil {
		return // skipped: no RabbitMQ scripts here
	}
	_, err := os.Stat(node.dir)
	assert.True(t, os.IsNotExist(err), "the node's directory is removed: %v", err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	assert.Error(t, amqpAnswers(ctx, node.amqpAddr), "the node no longer answers")
	select {
	case <-node.exited:
	default:
		require.Fail(t, "the node's process still runs")
	}
}
