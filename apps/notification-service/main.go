// Command notification-service e-mails customers the outcomes of their
// orders (contract §8): it keeps an address directory from user.registered,
// records one e-mail per order and kind as the saga's outcomes arrive, and
// sends them over SMTP from a loop outside any transaction, with the
// invoice or credit note attached.
package main

import (
	"context"
	"io"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ordersaga/ordersaga/libs/participant"
	"github.com/ordersaga/ordersaga/saga"

	"github.com/ordersaga/ordersaga/apps/notification-service/internal/notify"
)

func main() { participant.Main(service()) }

func service() participant.Service[config] {
	return participant.Service[config]{
		Intro:    intro,
		Config:   defaults(),
		Schema:   notify.Schema(),
		Topology: saga.TopologyOf("notification-service"),
		Wire:     wire,
	}
}

// run runs the service until ctx ends (participant.Run).
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	return participant.Run(ctx, service(), args, getenv, stdout)
}

// wire adds the handlers, the sender loop, the log's query and the
// timeline.
func wire(p *participant.Participant, cfg *config, engine *gin.Engine) error {
	mailer, err := notify.NewSMTPMailer(cfg.smtp, cfg.SMTPTimeout)
	if err != nil {
		return err
	}
	sender := notify.NewSender(notify.SenderConfig{
		From: cfg.MailFrom, Timeout: cfg.SMTPTimeout, MaxAttempts: cfg.EmailAttempts,
		RetryDelay: cfg.RetryDelay, MaxRetryDelay: cfg.MaxRetryDelay, Lease: cfg.Lease,
		Batch: cfg.Batch, Poll: time.Second, MaxPause: cfg.MaxPause,
	}, p.Pool, p.Log, notify.NewDocuments(cfg.InvoiceURL, cfg.SMTPTimeout), mailer, p.Registry)
	svc := notify.NewService(p.Runner, p.Log, sender.Wake)
	p.Handle(svc.Handlers()...)
	p.Go("sender", sender.Run)
	// A mail server away pauses sending only: reported, never a 503.
	p.Report("smtp", sender.Check)
	notify.Routes(engine, svc)
	// Its timeline of an order, at saga.conf's path: the console draws its
	// lane from it (the gateway's merged timeline leaves it out).
	if me, ok := saga.Lookup(notify.ServiceName); ok && me.HasTimeline() {
		return p.ServeTimeline(engine, me.Timeline)
	}
	return nil
}
