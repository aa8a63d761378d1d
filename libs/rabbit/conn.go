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
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ordersaga/ordersaga/libs/events"
)

// ErrUnavailable is returned while the broker connection is down.
var ErrUnavailable = errors.New("broker unavailable")

// ErrBlocked is returned while the broker blocks publishing: under a memory
// or disk alarm it stops reading from every connection that publishes, so a
// publish would only wait for its confirm until it timed out, and then take
// effect once the alarm clears.
var ErrBlocked = errors.New("blocked")

// probeEvery is how often the publishing connection sends the broker an
// empty, unroutable message while it is not blocked. The broker tells a
// connection that it is blocked only when that connection publishes, so
// without the probe the first command of an alarm would be the one to find
// out, waiting for its confirm until the alarm clears.
const probeEvery = time.Second

// probeKey routes the probe nowhere: no queue has this name, so the default
// exchange drops it (it is not mandatory, so nothing comes back).
const probeKey = "ordersaga.probe.unroutable"

// Conn supervises the AMQP connections of one process: one for consuming and
// declaring, one for publishing. They are separate because the broker blocks
// a connection that publishes during a resource alarm, and a blocked
// connection is not read at all: acks on it would wait for the alarm too, and
// consumers would stop. Each connection declares the topology on every
// (re)connect, so a broker that lost its definitions gets them back.
type Conn struct {
	urls     []string // the nodes, tried in order (ParseURLs)
	topology events.Topology
	log      *slog.Logger

	consume *link
	publish *link

	// quorumRetries is whether the broker's retry tiers are quorum queues:
	// QuorumRetries of the version it announced at the latest connect, the
	// one whose tiers Ensure declared.
	quorumRetries atomic.Bool
	// quorumCapable is whether the broker could have quorum tiers (3.10+).
	quorumCapable atomic.Bool

	mu     sync.Mutex
	closed bool
	done   chan struct{}
	wg     sync.WaitGroup
}

// link is one supervised AMQP connection and what is known of its state.
type link struct {
	c     *Conn
	name  string
	probe bool

	mu      sync.Mutex
	conn    *amqp.Connection
	up      chan struct{} // closed while conn is usable
	lastErr error
	// blocked is the broker's reason while it blocks the connection;
	// blockedCh is closed while it does, unblockedCh while it does not.
	blocked     string
	blockedCh   chan struct{}
	unblockedCh chan struct{}
}

func newLink(c *Conn, name string, probe bool) *link {
	unblocked := make(chan struct{})
	close(unblocked)
	return &link{c: c, name: name, probe: probe, up: make(chan struct{}), blockedCh: make(chan struct{}), unblockedCh: unblocked}
}

// Dial connects to url, retrying until ctx ends, declares the topology, and
// keeps the connections up until Close: a lost connection is redialled with
// backoff and jitter. url may name several nodes of a cluster, separated by
// commas (ParseURLs): each (re)connect tries them in order, so a connection
// fails over to the next node and returns to the first once it is back at
// the next reconnect. name shows in the management UI (the publishing
// connection as "<name> publisher").
func Dial(ctx context.Context, url, name string, topology events.Topology, log *slog.Logger) (*Conn, error) {
	urls, err := ParseURLs(url)
	if err != nil {
		return nil, err
	}
	c := &Conn{urls: urls, topology: topology, log: log, done: make(chan struct{})}
	c.consume = newLink(c, name, false)
	c.publish = newLink(c, name+" publisher", true)
	for _, l := range []*link{c.consume, c.publish} {
		if err := l.dial(ctx); err != nil {
			_ = c.Close()
			return nil, err
		}
	}
	return c, nil
}

// QuorumCapable reports whether the broker has at-least-once dead-lettering
// (3.10 or later), whatever QuorumTiers says.
func (c *Conn) QuorumCapable() bool { return c.quorumCapable.Load() }

// RetryQueue is the name of tier i of work queue q on this broker: the
// quorum tier (with QuorumTiers), or the classic one (without, or on a
// broker older than 3.10).
func (c *Conn) RetryQueue(q string, i int) string {
	return retryQueueOn(c.quorumRetries.Load(), q, i)
}

// dial connects l, retrying until ctx ends, and starts its supervisor.
// Given up, it returns the broker's last answer: the attempt that ctx cut
// short says only that ctx ended, while the one before may say why no
// attempt succeeds (ACCESS_REFUSED, a missing vhost).
func (l *link) dial(ctx context.Context) error {
	var answer error // the last attempt's error that ctx did not cut short
	for attempt := 0; ; attempt++ {
		conn, err := l.connectWithin(ctx)
		if err == nil {
			if !l.setUp(conn) {
				return amqp.ErrClosed
			}
			l.c.wg.Add(1)
			go l.supervise(conn)
			return nil
		}
		if answer == nil || ctx.Err() == nil || !errors.Is(err, ctx.Err()) {
			answer = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("connect to broker: %w", answer)
		case <-time.After(backoff(attempt)):
		}
	}
}

// connectWithin is connect, given up when ctx ends: a broker that accepts
// the connection but is too busy to answer the declarations must not hold
// a start-up past its timeout. A connection made after that is closed.
func (l *link) connectWithin(ctx context.Context) (*amqp.Connection, error) {
	type result struct {
		conn *amqp.Connection
		err  error
	}
	done := make(chan result, 1)
	go func() {
		conn, err := l.connect()
		done <- result{conn, err}
	}()
	select {
	case r := <-done:
		return r.conn, r.err
	case <-ctx.Done():
		go func() {
			if r := <-done; r.conn != nil {
				r.conn.Close()
			}
		}()
		return nil, fmt.Errorf("no answer from the broker: %w", ctx.Err())
	}
}

// nodeTimeout bounds the TCP connect and the AMQP handshake with one node,
// so that a node that does not answer costs a failover this long, not the
// client library's 30 s.
const nodeTimeout = 10 * time.Second

// connect connects to the first node of the list that accepts, and declares
// the topology on it.
func (l *link) connect() (*amqp.Connection, error) {
	cfg := amqp.Config{
		Heartbeat:  10 * time.Second,
		Properties: amqp.NewConnectionProperties(),
		Dial:       amqp.DefaultDial(nodeTimeout),
	}
	cfg.Properties.SetClientConnectionName(l.name)
	var (
		conn *amqp.Connection
		errs []error
	)
	for i, url := range l.c.urls {
		var err error
		if conn, err = amqp.DialConfig(url, cfg); err == nil {
			if i > 0 {
				l.c.log.Info("broker connection on a later node", "connection", l.name, "node", i+1, "of", len(l.c.urls))
			}
			break
		}
		errs = append(errs, err)
	}
	if conn == nil {
		return nil, errors.Join(errs...)
	}
	if err := Ensure(conn, l.c.topology); err != nil {
		conn.Close()
		return nil, err
	}
	l.c.quorumCapable.Store(QuorumRetries(serverVersion(conn)))
	if QuorumTiers && !l.c.quorumCapable.Load() {
		l.c.log.Warn("the broker is older than 3.10 (no at-least-once dead-lettering from quorum queues): classic retry tiers declared, whose dead-lettering is at most once",
			"connection", l.name, "version", serverVersion(conn))
	}
	l.c.quorumRetries.Store(QuorumTiers && l.c.quorumCapable.Load())
	return conn, nil
}

// setUp makes conn l's connection, unless the Conn was closed meanwhile: it
// then closes conn and returns false. Holding c.mu, it cannot interleave
// with Close, which would miss conn.
func (l *link) setUp(conn *amqp.Connection) bool {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	if l.c.closed {
		conn.Close()
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.conn = conn
	l.lastErr = nil
	close(l.up)
	return true
}

// setBlocked records a connection.blocked (reason set) or
// connection.unblocked (reason empty) of the broker.
func (l *link) setBlocked(reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	was := l.blocked != ""
	l.blocked = reason
	switch {
	case reason != "" && !was:
		close(l.blockedCh)
		l.unblockedCh = make(chan struct{})
	case reason == "" && was:
		close(l.unblockedCh)
		l.blockedCh = make(chan struct{})
	}
}

// supervise follows conn's blocked state, waits for it to close, and
// redials until it succeeds or Close.
func (l *link) supervise(conn *amqp.Connection) {
	defer l.c.wg.Done()
	for {
		closeErr := l.watch(conn)
		// A new connection starts unblocked: the broker tells it when it
		// publishes.
		l.setBlocked("")
		l.mu.Lock()
		l.conn = nil
		l.up = make(chan struct{})
		if closeErr != nil {
			l.lastErr = closeErr
		} else {
			l.lastErr = ErrUnavailable
		}
		l.mu.Unlock()
		if l.c.isClosed() {
			return
		}
		l.c.log.Warn("broker connection lost; reconnecting", "connection", l.name, "error", closeErr)
		for attempt := 0; ; attempt++ {
			select {
			case <-l.c.done:
				return
			case <-time.After(backoff(attempt)):
			}
			next, err := l.connect()
			if err != nil {
				l.mu.Lock()
				l.lastErr = err
				l.mu.Unlock()
				continue
			}
			if !l.setUp(next) {
				return
			}
			l.c.log.Info("broker connection restored", "connection", l.name, "attempts", attempt+1)
			conn = next
			break
		}
	}
}

// watch drains conn's blocked notifications, probes the broker if l
// publishes, and returns once conn is closed.
func (l *link) watch(conn *amqp.Connection) *amqp.Error {
	closes := conn.NotifyClose(make(chan *amqp.Error, 1))
	blockings := conn.NotifyBlocked(make(chan amqp.Blocking, 4))
	var tick <-chan time.Time
	if l.probe {
		t := time.NewTicker(probeEvery)
		defer t.Stop()
		tick = t.C
	}
	var probeCh *amqp.Channel
	defer func() {
		if probeCh != nil {
			probeCh.Close()
		}
	}()
	for {
		select {
		case err := <-closes:
			return err
		case b, ok := <-blockings:
			if !ok {
				blockings = nil
				continue
			}
			if b.Active {
				l.c.log.Warn("broker blocks publishing", "connection", l.name, "reason", b.Reason)
				l.setBlocked(b.Reason)
			} else {
				l.c.log.Info("broker unblocked publishing", "connection", l.name)
				l.setBlocked("")
			}
		case <-tick:
			if l.isBlocked() {
				continue
			}
			if probeCh == nil || probeCh.IsClosed() {
				ch, err := conn.Channel()
				if err != nil {
					continue
				}
				probeCh = ch
			}
			_ = probeCh.Publish("", probeKey, false, false, amqp.Publishing{})
		}
	}
}

func (l *link) isBlocked() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.blocked != ""
}

func (c *Conn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// backoff grows from 100 ms to 2 s, with jitter so that many processes do
// not reconnect in lockstep.
func backoff(attempt int) time.Duration {
	d := 100 * time.Millisecond << min(attempt, 6)
	d = min(d, 2*time.Second)
	return d/2 + rand.N(d/2+1)
}

// Channel opens a channel on the consuming connection, waiting for it until
// ctx ends. Consume and declare on it; publish through a Publisher.
func (c *Conn) Channel(ctx context.Context) (*amqp.Channel, error) {
	l := c.consume
	for {
		l.mu.Lock()
		conn, up := l.conn, l.up
		l.mu.Unlock()
		if c.isClosed() {
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
func (l *link) current() (*amqp.Connection, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil || l.conn.IsClosed() {
		if l.lastErr != nil {
			return nil, fmt.Errorf("%w: %v", ErrUnavailable, l.lastErr)
		}
		return nil, ErrUnavailable
	}
	return l.conn, nil
}

// blockedErr is ErrBlocked with the broker's reason while the broker blocks
// the connection, and nil otherwise.
func (l *link) blockedErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.blocked == "" {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrBlocked, l.blocked)
}

// blockedSignal is closed when the broker blocks the connection (at once if
// it does now).
func (l *link) blockedSignal() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.blockedCh
}

// WaitUnblocked returns nil once the broker does not block publishing, or
// ctx's error if ctx ends first.
func (c *Conn) WaitUnblocked(ctx context.Context) error {
	c.publish.mu.Lock()
	unblocked := c.publish.unblockedCh
	c.publish.mu.Unlock()
	select {
	case <-unblocked:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Check reports whether both connections are up and publishing is not
// blocked, for readiness probes: a blocked broker takes no command, so it
// is as good as down ("blocked: low on memory").
func (c *Conn) Check(context.Context) error {
	for _, l := range []*link{c.consume, c.publish} {
		if _, err := l.current(); err != nil {
			return err
		}
	}
	return c.publish.blockedErr()
}

// Close closes the connections and stops reconnecting.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.done)
	c.mu.Unlock()
	var errs []error
	for _, l := range []*link{c.consume, c.publish} {
		l.mu.Lock()
		conn := l.conn
		l.mu.Unlock()
		if conn != nil {
			if err := conn.Close(); err != nil && !errors.Is(err, amqp.ErrClosed) {
				errs = append(errs, err)
			}
		}
	}
	c.wg.Wait()
	return errors.Join(errs...)
}
