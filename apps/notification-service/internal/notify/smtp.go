package notify

import (
	"context"
	"errors"
	"time"

	"github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// Mailer opens sessions with the mail server.
type Mailer interface {
	Dial(ctx context.Context) (Session, error)
}

// Session is one SMTP connection: messages go through it one at a time.
type Session interface {
	Send(m *mail.Msg) error
	Close()
}

// SMTPMailer is the Mailer of SMTP_URL, on go-mail.
type SMTPMailer struct{ client *mail.Client }

// NewSMTPMailer returns the mailer of o, every SMTP command bounded by
// timeout.
func NewSMTPMailer(o SMTPOptions, timeout time.Duration) (*SMTPMailer, error) {
	c, err := mail.NewClient(o.Host, o.clientOptions(timeout)...)
	if err != nil {
		return nil, err
	}
	return &SMTPMailer{client: c}, nil
}

// Dial connects, greets, negotiates TLS and authenticates.
func (m *SMTPMailer) Dial(ctx context.Context) (Session, error) {
	c, err := m.client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return nil, err
	}
	return &smtpSession{m.client, c}, nil
}

type smtpSession struct {
	client *mail.Client
	conn   *smtp.Client
}

func (s *smtpSession) Send(m *mail.Msg) error { return s.client.SendWithSMTPClient(s.conn, m) }
func (s *smtpSession) Close()                 { _ = s.client.CloseWithSMTPClient(s.conn) }

// outcome is what a send attempt means for its e-mail.
type outcome int

const (
	delivered outcome = iota // the server took it (250)
	rejected                 // a 5xx reply: it never will
	deferred                 // a 4xx reply, a timeout or a broken connection: try again later
)

// classify reads the result of sending m. A message the server accepted is
// delivered even when what followed (RSET) failed.
func classify(m *mail.Msg, err error) outcome {
	if err == nil || m.IsDelivered() {
		return delivered
	}
	var se *mail.SendError
	if errors.As(err, &se) && se.ErrorCode() >= 500 && se.ErrorCode() < 600 {
		return rejected
	}
	return deferred
}
