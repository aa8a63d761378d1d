// Package rabbit is the RabbitMQ plumbing of ordersaga: a supervised
// connection that survives broker restarts, a publisher that only reports
// success once the broker confirmed, a consumer that acks after the handler
// succeeded and routes failures to retry tiers or dead-letter queues, and the
// declaration of the topology.
package rabbit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ordersaga/ordersaga/libs/events"
)

// ErrUnavailable is returned while the broker connection is down.
var ErrUnavailable = errors.New("broker unavailable")

// Conn supervises one AMQP connection. It declares the topology on every
// (re)connect, so a broker that lost its definitions gets them back.
type Conn struct {
	url      string
	name     string
	topology events.Topology
	log      *slog.Logger

	mu      sync.Mutex
	conn    *amqp.Connection
	up      chan struct{} // closed while conn is usable
	lastErr error
	closed  bool
	done    chan struct{}
	wg      sync.WaitGroup
}

// Dial connects to url, retrying until ctx ends, declares the topology, and
// keeps the connection up until Close: a lost connection is redialled with
// backoff and jitter. name shows in the management UI.
func Dial(ctx context.Context, url, name string, topology events.Topology, log *slog.Logger) (*Conn, error) {
	c := &Conn{url: url, name: name, topology: topology, log: log, up: make(chan struct{}), done: make(chan struct{})}
	var lastErr error
	for attempt := 0; ; attempt++ {
		conn, err := c.connect()
		if err == nil {
			c.setUp(conn)
			c.wg.Add(1)
			go c.supervise(conn)
			return c, nil
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to broker: %w", lastErr)
		case <-time.After(backoff(attempt)):
		}
	}
}

func (c *Conn) connect() (*amqp.Connection, error) {
	cfg := amqp.Config{
		Heartbeat:  10 * time.Second,
		Properties: amqp.NewConnectionProperties(),
	}
	cfg.Properties.SetClientConnectionName(c.name)
	conn, err := amqp.DialConfig(c.url, cfg)
	if err != nil {
		return nil, err
	}
	if err := Ensure(conn, c.topology); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

func (c *Conn) setUp(conn *amqp.Connection) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn = conn
	c.lastErr = nil
	close(c.up)
}

// supervise waits for conn to close and redials until it succeeds or Close.
func (c *Conn) supervise(conn *amqp.Connection) {
	defer c.wg.Done()
	for {
		closeErr := <-conn.NotifyClose(make(chan *amqp.Error, 1))
		c.mu.Lock()
		c.conn = nil
		c.up = make(chan struct{})
		if closeErr != nil {
			c.lastErr = closeErr
		} else {
			c.lastErr = ErrUnavailable
		}
		closed := c.closed
		c.mu.Unlock()
		if closed {
			return
		}
		c.log.Warn("broker connection lost; reconnecting", "error", closeErr)
		for attempt := 0; ; attempt++ {
			select {
			case <-c.done:
				return
			case <-time.After(backoff(attempt)):
			}
			next, err := c.connect()
			if err != nil {
				c.mu.Lock()
				c.lastErr = err
				c.mu.Unlock()
				continue
			}
			c.mu.Lock()
			if c.closed {
				c.mu.Unlock()
				next.Close()
				return
			}
			c.mu.Unlock()
			c.setUp(next)
			c.log.Info("broker connection restored", "attempts", attempt+1)
			conn = next
			break
		}
	}
}

// backoff grows from 100 ms to 2 s, with jitter so that many processes do
// not reconnect in lockstep.
func backoff(attempt int) time.Duration {
	d := 100 * time.Millisecond << min(attempt, 6)
	d = min(d, 2*time.Second)
	return d/2 + rand.N(d/2+1)
}

// Channel opens a channel, waiting for the connection until ctx ends.
func (c *Conn) Channel(ctx context.Context) (*amqp.Channel, error) {
	for {
		c.mu.Lock()
		conn, up, closed := c.conn, c.up, c.closed
		c.mu.Unlock()
		if closed {
			return nil, amqp.ErrClosed
		}
		if conn != nil {
			ch, err := conn.Channel()
			if err == nil {
				return ch, nil
			}
			if !errors.Is(err, amqp.ErrClosed) {
				return nil, err
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
		case <-up:
		}
	}
}

// current returns the connection if it is up, without waiting.
func (c *Conn) current() (*amqp.Connection, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil || c.conn.IsClosed() {
		if c.lastErr != nil {
			return nil, fmt.Errorf("%w: %v", ErrUnavailable, c.lastErr)
		}
		return nil, ErrUnavailable
	}
	return c.conn, nil
}

// Check reports whether the connection is up, for readiness probes.
func (c *Conn) Check(context.Context) error {
	_, err := c.current()
	return err
}

// Close closes the connection and stops reconnecting.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.done)
	conn := c.conn
	c.mu.Unlock()
	var err error
	if conn != nil {
		err = conn.Close()
	}
	c.wg.Wait()
	return err
}
