package main

import (
	"errors"
	"time"

	"github.com/ordersaga/ordersaga/libs/participant"

	"github.com/ordersaga/ordersaga/apps/notification-service/internal/notify"
)

// config is the notification service's configuration (contract §1, §8):
// every participant's, the mail server, and invoice-service for the PDFs.
type config struct {
	participant.Config
	SMTPURL       string        `env:"SMTP_URL" envDefault:"smtp://127.0.0.1:1025" help:"the mail server: smtp://[user:pass@]host[:port][?starttls=opportunistic|required|none][&auth=plain|login|cram-md5|scram-sha-256…][&helo=name][&tls_insecure=true], or smtps:// (TLS from the first byte)"`
	MailFrom      string        `env:"MAIL_FROM" envDefault:"ordersaga <no-reply@ordersaga.local>" help:"the From of every e-mail"`
	InvoiceURL    string        `env:"INVOICE_SERVICE_URL" envDefault:"http://127.0.0.1:3004" help:"invoice-service, whose PDFs are attached"`
	SMTPTimeout   time.Duration `env:"SMTP_TIMEOUT" envDefault:"15s" valid:"positive" help:"bound of each SMTP command and each PDF fetch"`
	EmailAttempts int           `env:"NOTIFY_MAX_ATTEMPTS" envDefault:"12" valid:"1.." help:"tries of an e-mail deferred by 4xx replies, timeouts or broken connections before FAILED"`
	RetryDelay    time.Duration `env:"NOTIFY_RETRY_DELAY" envDefault:"2s" valid:"positive" help:"first retry's delay, doubling each time"`
	MaxRetryDelay time.Duration `env:"NOTIFY_MAX_RETRY_DELAY" envDefault:"10m" valid:"positive" help:"longest retry delay"`
	Lease         time.Duration `env:"NOTIFY_LEASE" envDefault:"2m" valid:"positive" help:"how long a sender holds the e-mails it is sending: after a crash, when they are sent again"`
	Batch         int           `env:"NOTIFY_BATCH" envDefault:"32" valid:"1.." help:"e-mails claimed per sending round"`
	MaxPause      time.Duration `env:"NOTIFY_MAX_PAUSE" envDefault:"30s" valid:"positive" help:"longest pause between connection attempts while the SMTP server is unreachable"`
	smtp          notify.SMTPOptions
}

const intro = `notification-service e-mails customers the saga's outcomes (contract §8): an
order confirmed with its invoice attached, cancelled (with its credit note when
it was paid), a payment failed. Addresses come from user.registered.

Usage: notification-service [-h | --help | --version]
`

// defaults is the configuration before the environment is read.
func defaults() config {
	return config{Config: participant.Defaults(notify.ServiceName, ":3006",
		"postgres://postgres@127.0.0.1:5432/notifications?sslmode=disable")}
}

// Check reports what the tags cannot say: an SMTP_URL go-mail cannot use,
// a MAIL_FROM that is not an address, a lease too short for one e-mail.
func (c *config) Check() error {
	errs := []error{c.Config.Check()}
	o, err := notify.ParseSMTPURL(c.SMTPURL)
	errs = append(errs, err)
	c.smtp = o
	if _, err := notify.Build(c.MailFrom, notify.Email{To: "a@example.org", Kind: notify.KindPaymentFailed}); err != nil {
		errs = append(errs, err)
	}
	if c.Lease < 6*c.SMTPTimeout {
		errs = append(errs, errLease)
	}
	return errors.Join(errs...)
}

var errLease = errors.New("NOTIFY_LEASE: want at least 6 × SMTP_TIMEOUT (one e-mail's fetch and SMTP commands fit in it)")
