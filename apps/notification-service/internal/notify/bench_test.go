package notify

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/events"
)

// BenchmarkSendToMailpit measures e-mails per second from the log to a
// real SMTP server (Mailpit), the invoice's PDF attached: each e-mail is
// recorded by its consumer, then the sender's rounds deliver them all.
// Indicative only: Mailpit, PostgreSQL and the sender share the machine.
func BenchmarkSendToMailpit(b *testing.B) {
	mp := startMailpit(b)
	e := newEnv(b, mp.SMTP, func(c *SenderConfig) { c.Batch = 64; c.Lease = time.Minute })
	user, _ := e.customer(b)
	b.ResetTimer()
	b.StopTimer()
	for range b.N {
		inv := events.InvoiceIssued{InvoiceID: uuid.New(), Number: "INV-2026-000001", OrderID: uuid.New(), UserID: user, Total: 1234, Currency: "USD"}
		handle(b, e, e.invoiceIssued, &inv)
	}
	b.StartTimer()
	start := time.Now()
	for e.pending(b) > 0 {
		_, err := e.sender.Round(context.Background())
		require.NoError(b, err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "e-mails/s")
}
