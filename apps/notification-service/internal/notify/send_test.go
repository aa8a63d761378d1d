package notify

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/events"
)

// The confirmation reaches a real SMTP server (Mailpit) with its parts and
// the invoice's PDF attached, byte for byte as invoice-service serves it.
func TestConfirmationCarriesTheInvoice(t *testing.T) {
	t.Parallel()
	mp := startMailpit(t)
	e := newEnv(t, mp.SMTP)
	user, addr := e.customer(t)
	inv := e.issued(t, user)
	e.drain(t, 20*time.Second)

	rec := e.record(t, inv.OrderID, KindOrderConfirmed)
	assert.Equal(t, Sent, rec.Status)
	assert.EqualValues(t, 1, rec.Attempts)
	assert.Equal(t, addr, rec.To)
	assert.NotNil(t, rec.SentAt)
	assert.Contains(t, rec.Subject, inv.Number)

	got := mp.byMessageID(t, MessageID(inv.OrderID.String(), KindOrderConfirmed), 1)
	require.Len(t, got, 1)
	h, parts := parseMIME(t, mp.raw(t, got[0].ID))
	assert.Equal(t, "<"+MessageID(inv.OrderID.String(), KindOrderConfirmed)+">", h.Get("Message-Id"))
	assert.Contains(t, h.Get("To"), addr)
	assertParts(t, parts, "12.34 USD", inv.Number+".pdf", testPDF(AttachInvoice, inv.InvoiceID.String()))
}

// assertParts checks an e-mail's plain-text and HTML parts say text, and
// that its one attachment is the PDF named name with exactly these bytes
// (none when name is "").
func assertParts(t *testing.T, parts []part, text, name string, pdf []byte) {
	t.Helper()
	var plain, html bool
	var attached []part
	for _, p := range parts {
		switch {
		case p.Filename != "":
			attached = append(attached, p)
		case p.ContentType == "text/plain":
			plain = true
			assert.Contains(t, string(p.Body), text)
		case p.ContentType == "text/html":
			html = true
			assert.Contains(t, string(p.Body), text)
		}
	}
	assert.True(t, plain && html, "a plain-text and an HTML part: %+v", parts)
	if name == "" {
		assert.Empty(t, attached)
		return
	}
	require.Len(t, attached, 1)
	assert.Equal(t, "application/pdf", attached[0].ContentType)
	assert.Equal(t, name, attached[0].Filename)
	assert.Equal(t, pdf, attached[0].Body)
}

// A paid order's cancellation is one e-mail, on invoice.credited, with the
// credit note; order.cancelled of a paid order adds none. An unpaid
// order's cancellation is on order.cancelled, with nothing attached.
func TestCancellationCarriesTheCreditNote(t *testing.T) {
	t.Parallel()
	mp := startMailpit(t)
	e := newEnv(t, mp.SMTP)
	user, _ := e.customer(t)
	inv := e.issued(t, user)
	handle(t, e, e.orderCancelled, &events.OrderCancelled{OrderID: inv.OrderID, Reason: events.ReasonUserRequested, PreviousStatus: events.StatusPaid, UserID: user})
	cn := events.InvoiceCredited{InvoiceIssued: inv, CreditNoteNumber: "CN-2026-000042"}
	handle(t, e, e.invoiceCredited, &cn)
	handle(t, e, e.invoiceCredited, &cn) // a replay under another message id
	unpaid := uuid.New()
	handle(t, e, e.orderCancelled, &events.OrderCancelled{OrderID: unpaid, Reason: events.ReasonUserRequested, PreviousStatus: "PENDING_PAYMENT", UserID: user})
	e.drain(t, 20*time.Second)

	assert.Equal(t, Sent, e.record(t, inv.OrderID, KindOrderCancelled).Status)
	got := mp.byMessageID(t, MessageID(inv.OrderID.String(), KindOrderCancelled), 1)
	require.Len(t, got, 1)
	_, parts := parseMIME(t, mp.raw(t, got[0].ID))
	assertParts(t, parts, "CN-2026-000042", "CN-2026-000042.pdf", testPDF(AttachCreditNote, inv.InvoiceID.String()))

	assert.Equal(t, Sent, e.record(t, unpaid, KindOrderCancelled).Status)
	got = mp.byMessageID(t, MessageID(unpaid.String(), KindOrderCancelled), 1)
	require.Len(t, got, 1)
	_, parts = parseMIME(t, mp.raw(t, got[0].ID))
	assertParts(t, parts, events.ReasonUserRequested, "", nil)
}

func TestPaymentFailedIsSent(t *testing.T) {
	t.Parallel()
	mp := startMailpit(t)
	e := newEnv(t, mp.SMTP)
	user, addr := e.customer(t)
	order := uuid.New()
	handle(t, e, e.orderFailed, &events.OrderFailed{OrderOutcome: events.OrderOutcome{OrderID: order, PaymentID: uuid.New(), UserID: user}})
	e.drain(t, 20*time.Second)
	rec := e.record(t, order, KindPaymentFailed)
	assert.Equal(t, Sent, rec.Status)
	got := mp.byMessageID(t, MessageID(order.String(), KindPaymentFailed), 1)
	require.Len(t, got, 1)
	assert.Equal(t, addr, got[0].To[0].Address)
	assert.Equal(t, rec.Subject, got[0].Subject)
}

// A customer the service never heard of is SKIPPED with NO_ADDRESS, never
// a failure, and nothing is sent.
func TestUnknownAddressIsSkipped(t *testing.T) {
	t.Parallel()
	f := newFakeSMTP(t)
	e := newEnv(t, f.addr)
	inv := e.issued(t, uuid.New())
	order := uuid.New()
	handle(t, e, e.orderFailed, &events.OrderFailed{OrderOutcome: events.OrderOutcome{OrderID: order, PaymentID: uuid.New()}})
	e.drain(t, 5*time.Second)
	for _, r := range []Notification{e.record(t, inv.OrderID, KindOrderConfirmed), e.record(t, order, KindPaymentFailed)} {
		assert.Equal(t, Skipped, r.Status)
		require.NotNil(t, r.Error)
		assert.Equal(t, NoAddress, *r.Error)
		assert.Zero(t, r.Attempts)
	}
	assert.Zero(t, f.total())
}

// A 4xx reply defers the e-mail (PENDING, an attempt spent, a later
// retry); a 5xx for one recipient fails only that e-mail.
func TestTemporaryAndPermanentReplies(t *testing.T) {
	t.Parallel()
	f := newFakeSMTP(t)
	e := newEnv(t, f.addr)
	greylisted, gAddr := e.customer(t)
	refused, rAddr := e.customer(t)
	fine, fAddr := e.customer(t)
	var tries int
	f.rcpt = func(to string) error {
		switch to {
		case gAddr:
			tries++
			if tries <= 2 {
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "greylisted, try later"}
			}
		case rAddr:
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	}
	g, r, ok := e.issued(t, greylisted), e.issued(t, refused), e.issued(t, fine)
	_, err := e.sender.Round(context.Background())
	require.NoError(t, err)
	rec := e.record(t, g.OrderID, KindOrderConfirmed)
	assert.Equal(t, Pending, rec.Status, "deferred by a 4xx")
	assert.EqualValues(t, 1, rec.Attempts)
	require.NotNil(t, rec.Error)
	assert.Contains(t, *rec.Error, "451")

	e.drain(t, 10*time.Second)
	rec = e.record(t, g.OrderID, KindOrderConfirmed)
	assert.Equal(t, Sent, rec.Status)
	assert.EqualValues(t, 3, rec.Attempts)
	failed := e.record(t, r.OrderID, KindOrderConfirmed)
	assert.Equal(t, Failed, failed.Status, "a 5xx fails at once")
	assert.EqualValues(t, 1, failed.Attempts)
	require.NotNil(t, failed.Error)
	assert.Contains(t, *failed.Error, "550")
	assert.Equal(t, Sent, e.record(t, ok.OrderID, KindOrderConfirmed).Status)
	assert.Len(t, f.received(gAddr), 1)
	assert.Len(t, f.received(fAddr), 1)
	assert.Empty(t, f.received(rAddr))
}

// A connection dropped in the middle of DATA is retried on a new one.
func TestConnectionDroppedMidDataIsRetried(t *testing.T) {
	t.Parallel()
	f := newFakeSMTP(t)
	e := newEnv(t, f.addr)
	user, addr := e.customer(t)
	drops := 1
	f.data = func(string) (error, bool) {
		if drops > 0 {
			drops--
			return nil, true
		}
		return nil, false
	}
	inv := e.issued(t, user)
	e.drain(t, 10*time.Second)
	rec := e.record(t, inv.OrderID, KindOrderConfirmed)
	assert.Equal(t, Sent, rec.Status)
	assert.EqualValues(t, 2, rec.Attempts)
	assert.Len(t, f.received(addr), 1)
}

// While the server is unreachable the sender pauses and spends no attempt;
// once it is back, everything is sent once.
func TestUnreachableServerPausesWithoutSpendingAttempts(t *testing.T) {
	t.Parallel()
	f := newFakeSMTP(t)
	f.stop()
	e := newEnv(t, f.addr)
	user, addr := e.customer(t)
	var orders []uuid.UUID
	for range 5 {
		orders = append(orders, e.issued(t, user).OrderID)
	}
	for i := range 3 {
		n, err := e.sender.Round(context.Background())
		require.ErrorIs(t, err, errUnreachable, "round %d claimed %d", i, n)
	}
	require.Error(t, e.sender.Check(context.Background()), "readiness says sending is paused")
	for _, o := range orders {
		rec := e.record(t, o, KindOrderConfirmed)
		assert.Equal(t, Pending, rec.Status)
		assert.Zero(t, rec.Attempts)
	}
	f.start(t)
	e.drain(t, 10*time.Second)
	require.NoError(t, e.sender.Check(context.Background()))
	assert.Len(t, f.received(addr), len(orders))
}

// A failed fetch of the PDF is transient: the e-mail waits, spending an
// attempt, and goes out with its attachment once invoice-service answers.
func TestFailedFetchIsTransient(t *testing.T) {
	t.Parallel()
	f := newFakeSMTP(t)
	e := newEnv(t, f.addr)
	user, addr := e.customer(t)
	e.docs.failing.Store(true)
	inv := e.issued(t, user)
	_, err := e.sender.Round(context.Background())
	require.NoError(t, err)
	rec := e.record(t, inv.OrderID, KindOrderConfirmed)
	assert.Equal(t, Pending, rec.Status)
	assert.EqualValues(t, 1, rec.Attempts)
	require.NotNil(t, rec.Error)
	assert.Contains(t, *rec.Error, "503")
	assert.Zero(t, f.total(), "nothing sent without its attachment")

	e.docs.failing.Store(false)
	e.drain(t, 10*time.Second)
	assert.Equal(t, Sent, e.record(t, inv.OrderID, KindOrderConfirmed).Status)
	require.Len(t, f.received(addr), 1)
	_, parts := parseMIME(t, f.received(addr)[0])
	assertParts(t, parts, inv.Number, inv.Number+".pdf", testPDF(AttachInvoice, inv.InvoiceID.String()))
}

// Attempts spent on deferrals end the e-mail FAILED, never PENDING forever.
func TestAttemptsSpentFail(t *testing.T) {
	t.Parallel()
	f := newFakeSMTP(t)
	e := newEnv(t, f.addr)
	user, _ := e.customer(t)
	f.rcpt = func(string) error { return &smtp.SMTPError{Code: 452, Message: "mailbox full"} }
	inv := e.issued(t, user)
	e.drain(t, 10*time.Second)
	rec := e.record(t, inv.OrderID, KindOrderConfirmed)
	assert.Equal(t, Failed, rec.Status)
	assert.EqualValues(t, testConfig().MaxAttempts, rec.Attempts)
	require.NotNil(t, rec.Error)
	assert.True(t, strings.HasPrefix(*rec.Error, "gave up after 5 attempts"), *rec.Error)
}
