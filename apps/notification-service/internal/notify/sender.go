package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordersaga/ordersaga/db/notification/notificationdb"
)

// SenderConfig tunes the sender loop.
type SenderConfig struct {
	From string
	// Timeout bounds each SMTP command and each PDF fetch.
	Timeout time.Duration
	// MaxAttempts is how many deferred tries an e-mail gets before FAILED.
	MaxAttempts int
	// RetryDelay is the first retry's delay, doubling up to MaxRetryDelay.
	RetryDelay, MaxRetryDelay time.Duration
	// Lease is how long a sender holds the e-mails it claimed: after a
	// crash they are claimed again once it ran out.
	Lease time.Duration
	// Batch is how many due e-mails one round claims.
	Batch int
	// Poll is how often due retries are looked for without a wake-up;
	// MaxPause the longest pause while the server is unreachable.
	Poll, MaxPause time.Duration
}

// Fetcher fetches an e-mail's attachment by reference (Documents).
type Fetcher interface {
	Fetch(ctx context.Context, which string, invoiceID uuid.UUID) ([]byte, error)
}

// errUnreachable is a round that could not reach the mail server.
var errUnreachable = errors.New("SMTP server unreachable")

// Sender delivers the PENDING e-mails of the log: it leases due ones, sends
// each over SMTP outside any database transaction, then records the
// outcome (contract §8).
type Sender struct {
	cfg    SenderConfig
	pool   *pgxpool.Pool
	log    *slog.Logger
	docs   Fetcher
	mailer Mailer
	wake   chan struct{}

	mu          sync.Mutex
	unreachable error // the last dial's failure, nil once one succeeded

	outcomes  *prometheus.CounterVec
	reachable prometheus.Gauge
}

// NewSender returns the sender of the log in pool, through mailer, with
// attachments from docs; it registers its metrics on reg.
func NewSender(cfg SenderConfig, pool *pgxpool.Pool, log *slog.Logger, docs Fetcher, mailer Mailer, reg prometheus.Registerer) *Sender {
	s := &Sender{
		cfg: cfg, pool: pool, log: log, docs: docs, mailer: mailer, wake: make(chan struct{}, 1),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordersaga_notifications_total",
			Help: "Send attempts of e-mails by outcome: sent, failed (5xx or attempts spent), retried (4xx, timeout, connection, attachment).",
		}, []string{"outcome"}),
		reachable: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ordersaga_smtp_reachable",
			Help: "1 while the SMTP server answered the last connection, 0 while sending is paused because it did not.",
		}),
	}
	s.reachable.Set(1)
	reg.MustRegister(s.outcomes, s.reachable)
	return s
}

// Wake tells the sender that e-mails were recorded.
func (s *Sender) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Check reports whether the mail server answered the last connection: an
// informational readiness check (sending pauses, nothing else does).
func (s *Sender) Check(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unreachable
}

func (s *Sender) setUnreachable(err error) {
	s.mu.Lock()
	was := s.unreachable
	s.unreachable = err
	s.mu.Unlock()
	switch {
	case err != nil && was == nil:
		s.reachable.Set(0)
		s.log.Warn("SMTP server unreachable: sending paused", "error", err)
	case err == nil && was != nil:
		s.reachable.Set(1)
		s.log.Info("SMTP server reachable again: sending resumed")
	}
}

// Run sends until ctx ends: a round whenever e-mails were recorded or
// retries fall due, pausing with growing delays while the server is
// unreachable (no attempt is spent then).
func (s *Sender) Run(ctx context.Context) error {
	var pause time.Duration
	for {
		n, err := s.Round(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait, wake := s.cfg.Poll, s.wake
		switch {
		case errors.Is(err, errUnreachable):
			pause = min(max(2*pause, 500*time.Millisecond), s.cfg.MaxPause)
			wait, wake = pause, nil // recorded e-mails wait for the server too
		case err != nil:
			s.log.Warn("sending round failed", "error", err)
		case n == s.cfg.Batch:
			pause = 0
			continue
		default:
			pause = 0
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-time.After(wait):
		}
	}
}

// Round claims up to Batch due e-mails and tries each once; it returns how
// many it claimed.
func (s *Sender) Round(ctx context.Context) (int, error) {
	deadline := time.Now().Add(s.cfg.Lease)
	q := notificationdb.New(s.pool)
	rows, err := q.ClaimDue(ctx, notificationdb.ClaimDueParams{LeaseSeconds: s.cfg.Lease.Seconds(), Lim: int32(s.cfg.Batch)})
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	var sess Session
	defer func() {
		if sess != nil {
			sess.Close()
		}
	}()
	// One e-mail takes at most a fetch and a few SMTP commands: none is
	// begun that could outlive the lease (another sender could then claim
	// it while it is being sent).
	budget := 5 * s.cfg.Timeout
	for i, r := range rows {
		if ctx.Err() != nil || time.Until(deadline) < budget {
			return len(rows), s.release(context.WithoutCancel(ctx), rows[i:])
		}
		if sess == nil {
			if sess, err = s.mailer.Dial(ctx); err != nil {
				sess = nil
				s.setUnreachable(err)
				return len(rows), errors.Join(errUnreachable, s.release(context.WithoutCancel(ctx), rows[i:]))
			}
			s.setUnreachable(nil)
		}
		if !s.send(ctx, deadline, sess, r) {
			sess.Close() // after any failure, a fresh connection for the next
			sess = nil
		}
	}
	return len(rows), nil
}

// send tries one e-mail and records the outcome; false when the session
// should not be used again.
func (s *Sender) send(ctx context.Context, deadline time.Time, sess Session, r notificationdb.Notification) bool {
	rec := context.WithoutCancel(ctx) // an outcome is recorded even on the way out
	e, err := s.prepare(ctx, r)
	if err != nil {
		s.retry(rec, deadline, r, err)
		return true
	}
	msg, err := Build(s.cfg.From, e)
	if err != nil {
		s.record(rec, deadline, r, Failed, err)
		return true
	}
	err = sess.Send(msg)
	switch classify(msg, err) {
	case delivered:
		s.record(rec, deadline, r, Sent, nil)
		return true
	case rejected:
		s.record(rec, deadline, r, Failed, err)
	default:
		s.retry(rec, deadline, r, err)
	}
	return false
}

// prepare is the e-mail of r with its attachment fetched.
func (s *Sender) prepare(ctx context.Context, r notificationdb.Notification) (Email, error) {
	e := Email{To: r.Recipient, Name: r.RecipientName, Kind: r.Kind, OrderID: r.OrderID.String(), Subject: r.Subject}
	if err := json.Unmarshal(r.Facts, &e.Facts); err != nil {
		return e, fmt.Errorf("facts: %w", err)
	}
	if r.Attachment == nil || r.InvoiceID == nil {
		return e, nil
	}
	pdf, err := s.docs.Fetch(ctx, *r.Attachment, *r.InvoiceID)
	if err != nil {
		return e, err
	}
	e.Attachment, e.AttachmentName = pdf, e.Facts.Number+".pdf"
	if *r.Attachment == AttachCreditNote {
		e.AttachmentName = e.Facts.CreditNoteNumber + ".pdf"
	}
	return e, nil
}

// retry spends an attempt of r, failing it when they are all spent.
func (s *Sender) retry(ctx context.Context, deadline time.Time, r notificationdb.Notification, cause error) {
	if int(r.Attempts)+1 >= s.cfg.MaxAttempts {
		s.record(ctx, deadline, r, Failed, fmt.Errorf("gave up after %d attempts: %w", r.Attempts+1, cause))
		return
	}
	delay := s.cfg.RetryDelay << min(r.Attempts, 30)
	if delay <= 0 || delay > s.cfg.MaxRetryDelay {
		delay = s.cfg.MaxRetryDelay
	}
	msg := cause.Error()
	s.outcomes.WithLabelValues("retried").Inc()
	s.log.Info("e-mail deferred", "order_id", r.OrderID, "kind", r.Kind, "attempt", r.Attempts+1, "retry_in", delay, "error", cause)
	s.persist(ctx, deadline, r, func(q *notificationdb.Queries) error {
		_, err := q.MarkRetry(ctx, notificationdb.MarkRetryParams{ID: r.ID, Error: &msg, DelaySeconds: delay.Seconds()})
		return err
	})
}

// record ends r SENT or FAILED.
func (s *Sender) record(ctx context.Context, deadline time.Time, r notificationdb.Notification, status string, cause error) {
	if status == Sent {
		s.outcomes.WithLabelValues("sent").Inc()
		s.persist(ctx, deadline, r, func(q *notificationdb.Queries) error {
			_, err := q.MarkSent(ctx, r.ID)
			return err
		})
		return
	}
	msg := cause.Error()
	s.outcomes.WithLabelValues("failed").Inc()
	s.log.Warn("e-mail failed", "order_id", r.OrderID, "kind", r.Kind, "error", cause)
	s.persist(ctx, deadline, r, func(q *notificationdb.Queries) error {
		_, err := q.MarkFailed(ctx, notificationdb.MarkFailedParams{ID: r.ID, Error: &msg})
		return err
	})
}

// persist writes an outcome, trying again while the database is away and
// the lease lasts: an outcome lost is an e-mail sent again.
func (s *Sender) persist(ctx context.Context, deadline time.Time, r notificationdb.Notification, write func(*notificationdb.Queries) error) {
	q := notificationdb.New(s.pool)
	for {
		err := write(q)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.log.Error("e-mail outcome not recorded: it will be tried again", "order_id", r.OrderID, "kind", r.Kind, "error", err)
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// release gives back claimed e-mails without spending an attempt.
func (s *Sender) release(ctx context.Context, rows []notificationdb.Notification) error {
	ids := make([]uuid.UUID, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	return notificationdb.New(s.pool).Release(ctx, ids)
}
