package rabbit_test

import (
	"context"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/testinfra"
)

// node is a stand-in for one node of a cluster: a TCP relay to the real
// broker that can be stopped, which closes its connections and refuses new
// ones, as a stopped node does.
type node struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func relay(t *testing.T, target string) *node {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	n := &node{l: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			n.mu.Lock()
			n.conns = append(n.conns, c, up)
			n.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(n.stop)
	return n
}

func (n *node) stop() {
	n.l.Close()
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range n.conns {
		c.Close()
	}
}

// TestFailoverToTheNextNode: with AMQP_URL naming several nodes, a
// connection is made to the first that accepts, and a lost connection fails
// over to the next node, publishing confirmed again.
func TestFailoverToTheNextNode(t *testing.T) {
	t.Parallel()
	b := testinfra.VHost(t)
	u, err := url.Parse(b.AMQPURL)
	require.NoError(t, err)
	first := relay(t, u.Host)

	deadAddr := testinfra.RefusedAddr(t) // a node that is down: connections refused

	// The short form: credentials from the first element, the vhost from
	// the last.
	list := strings.Replace(b.AMQPURL, u.Host+"/", deadAddr+","+first.l.Addr().String()+","+u.Host+"/", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := rabbit.Dial(ctx, list, t.Name(), topology, quiet)
	require.NoError(t, err, "a down first node is skipped")
	defer conn.Close()
	pub := rabbit.NewPublisher(conn, "test", 5*time.Second)
	defer pub.Close()
	require.NoError(t, pub.Publish(ctx, orderCreated(t)))
	get(t, b.AMQPURL, queue)

	first.stop() // the node the connections are on goes away
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := pub.Publish(ctx, orderCreated(t))
		if err == nil {
			break
		}
		require.True(t, time.Now().Before(deadline), "no failover to the third node within 20 s: %v", err)
		time.Sleep(100 * time.Millisecond)
	}
	get(t, b.AMQPURL, queue)
	require.NoError(t, conn.Check(ctx), "ready on the next node")
}

// TestDialReportsTheBrokersLastAnswer: a start-up that gives up says what
// the broker last answered, even when its last attempt was cut short by the
// deadline. Here the first connection is closed at once, and every later
// one waits on a node that never answers.
func TestDialReportsTheBrokersLastAnswer(t *testing.T) {
	t.Parallel()
	addr, accepted := silentNode(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := rabbit.Dial(ctx, "amqp://guest:guest@"+addr+"/", t.Name(), topology, quiet)
	require.Error(t, err)
	require.Greater(t, accepted(), 1, "a later attempt was made, and cut short by the deadline")
	assert.NotErrorIs(t, err, context.DeadlineExceeded, "the first attempt's answer, not the deadline: %v", err)
}
