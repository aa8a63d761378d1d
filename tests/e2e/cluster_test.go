package e2e

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/rabbit/mgmt"
	"github.com/ordersaga/ordersaga/libs/testinfra"
	"github.com/ordersaga/ordersaga/saga"
)

// TestChaosClusterNodeLoss runs the saga on a three-node RabbitMQ cluster
// of its own, every service given all three nodes (AMQP_URL's list). Under
// load, the node leading the work queues stops, comes back, and then
// another node stops and comes back: the quorum queues elect new leaders,
// the services fail over to a node that is up, and every invariant of §3
// and §9 holds — nothing lost, no 202 without a confirm (the load counts
// every 202, and report checks each reaches its final state). The services
// run with the quorum retry tiers, as a cluster should (README: clusters),
// so a message waiting out a retry delay is replicated too and goes back
// to its work queue at least once.
func TestChaosClusterNodeLoss(t *testing.T) {
	t.Parallel()
	nodes := testinfra.StartRabbitCluster(t, 3)
	s := start(t, testinfra.ClusterBroker(nodes), map[string]string{"RABBITMQ_QUORUM_RETRY_TIERS": "true"})
	api, err := mgmt.New(s.Broker.ManagementURL)
	require.NoError(t, err)
	requireQuorumTiers(t, api, saga.QueueOrderCommands)

	// The services connect to the first node of their list that accepts,
	// so the queues they declared lead there; the management API is the
	// last node's, which this test never stops.
	leader := leaderOf(t, api, saga.QueueOrderCommands)
	require.NotEqual(t, nodes[2].Name, leader, "the work queues do not lead on the node whose management API the test reads")
	var first, second *testinfra.RabbitNode
	for _, n := range nodes[:2] {
		if n.Name == leader {
			first = n
		} else {
			second = n
		}
	}
	require.NotNil(t, first, "leader %s is a node of the cluster", leader)

	n := chaosOrders()
	c := s.newCatalogue(t, n)
	var faults sync.WaitGroup
	var newLeader string
	r := s.load(t, c, n, 20, func() {
		faults.Go(func() {
			outage(t, first, 3*time.Second)
			newLeader = leaderOf(t, api, saga.QueueOrderCommands)
			awaitMembersOnline(t, api, saga.QueueOrderCommands, 3)
			outage(t, second, 3*time.Second)
		})
	})
	faults.Wait()
	s.report(t, "cluster: leader node stopped, then another", c, r)
	assert.NotEqual(t, leader, newLeader, "the work queue's leadership moved off the stopped node")
	t.Logf("cluster: leader %s stopped, leadership moved to %s, then %s stopped", leader, newLeader, second.Name)
}

// outage stops the RabbitMQ application of node n (its queues' members
// there become unavailable, its connections close), keeps it down for d,
// and starts it again.
func outage(t testing.TB, n *testinfra.RabbitNode, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := n.Ctl(ctx, "stop_app")
	assert.NoError(t, err)
	time.Sleep(d) // the outage's length, not a wait for a condition
	_, err = n.Ctl(ctx, "start_app")
	assert.NoError(t, err)
	_, err = n.Ctl(ctx, "await_startup", "--timeout", "60")
	assert.NoError(t, err)
}

// leaderOf is the node leading quorum queue q, waiting for it to have one.
func leaderOf(t testing.TB, api *mgmt.Client, q string) string {
	var leader string
	assert.Eventually(t, func() bool {
		var info struct {
			Leader string `json:"leader"`
		}
		err := api.Do(context.Background(), http.MethodGet, "/api/queues/%2F/"+q, nil, &info)
		leader = info.Leader
		return err == nil && leader != ""
	}, 60*time.Second, 200*time.Millisecond, "queue %s has a leader", q)
	return leader
}

// awaitMembersOnline waits until quorum queue q has want members online:
// a node back from an outage has caught up before the next one stops.
func awaitMembersOnline(t testing.TB, api *mgmt.Client, q string, want int) {
	assert.Eventually(t, func() bool {
		var info struct {
			Online []string `json:"online"`
		}
		err := api.Do(context.Background(), http.MethodGet, "/api/queues/%2F/"+q, nil, &info)
		return err == nil && len(info.Online) >= want
	}, 90*time.Second, 200*time.Millisecond, "queue %s has %d members online", q, want)
}

// requireQuorumTiers checks that work queue q's retry tiers are the
// quorum ones, dead-lettering at least once, and that no classic tier was
// declared beside them.
func requireQuorumTiers(t testing.TB, api *mgmt.Client, q string) {
	t.Helper()
	for i := range rabbit.RetryDelays {
		var info struct {
			Type      string         `json:"type"`
			Arguments map[string]any `json:"arguments"`
		}
		name := rabbit.QuorumRetryQueue(q, i)
		require.NoError(t, api.Do(context.Background(), http.MethodGet, "/api/queues/%2F/"+name, nil, &info), "retry tier %s exists", name)
		assert.Equal(t, "quorum", info.Type, name)
		assert.Equal(t, "at-least-once", info.Arguments["x-dead-letter-strategy"], name)
		err := api.Do(context.Background(), http.MethodGet, "/api/queues/%2F/"+rabbit.ClassicRetryQueue(q, i), nil, nil)
		assert.ErrorIs(t, err, mgmt.ErrNotFound, "no classic tier %s", rabbit.ClassicRetryQueue(q, i))
	}
}
