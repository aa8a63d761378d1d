package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/gatewayclient"
)

func TestConsoleProgress(t *testing.T) {
	t.Parallel()
	t.Run("terminal: one line redrawn in place, erased before other output", func(t *testing.T) {
		var b bytes.Buffer
		c := &console{w: &b, live: true}
		c.progress("waiting for 5 sagas… 0/5 settled", 0)
		c.progress("waiting for 5 sagas… 1/5 settled", 1200*time.Millisecond)
		c.printf("an event\n")
		c.progress("waiting for 5 sagas… 1/5 settled", 1300*time.Millisecond)
		c.endProgress()
		assert.Equal(t, eraseLine+"  ⠙ waiting for 5 sagas… 0/5 settled  0.0s"+
			eraseLine+"  ⠹ waiting for 5 sagas… 1/5 settled  1.2s"+
			eraseLine+"an event\n"+
			eraseLine+"  ⠸ waiting for 5 sagas… 1/5 settled  1.3s"+
			eraseLine, b.String())
	})
	t.Run("not a terminal: a plain line when the label changes", func(t *testing.T) {
		var b bytes.Buffer
		c := &console{w: &b}
		c.progress("waiting for 5 sagas… 0/5 settled", 0)
		c.progress("waiting for 5 sagas… 0/5 settled", 100*time.Millisecond)
		c.printf("an event\n")
		c.progress("waiting for 5 sagas… 1/5 settled", 1200*time.Millisecond)
		c.endProgress()
		c.progress("waiting for 5 sagas… 1/5 settled", 0) // a new wait starts afresh
		assert.Equal(t, "  waiting for 5 sagas… 0/5 settled (0.0s)\n"+
			"an event\n"+
			"  waiting for 5 sagas… 1/5 settled (1.2s)\n"+
			"  waiting for 5 sagas… 1/5 settled (0.0s)\n", b.String())
		assert.NotContains(t, b.String(), "\r", "no control characters in a log")
	})
}

func TestIsTerminal(t *testing.T) {
	t.Parallel()
	assert.False(t, isTerminal(&bytes.Buffer{}, "xterm"), "a buffer")
}

func TestWriteResults(t *testing.T) {
	t.Parallel()
	ok := &tracked{scenario: scenarios[0], ID: "e0d26446-6a63-5ae7-9693-79ad9a254e74",
		Order: ord(statusPaid, ""), Payment: paymentApproved}
	wrong := &tracked{scenario: scenarios[1], ID: "00613dbd-ad1f-59ef-bc28-133403783817",
		Order: ord(statusPaid, ""), Payment: paymentApproved}
	broken := &tracked{scenario: replayScenario, ID: "40a074e8-b2eb-47e4-957b-f306f75c9f26",
		Failure: "the cancel did not reach order-service.commands.dlq: not done within 20s"}
	noted := &tracked{scenario: scenarios[4], ID: "2a75fe7e-9a08-5eda-8a08-8081ebb89b83",
		Order: ord(statusCancelled, reasonUserRequested), Payment: paymentRefunded, Note: "a note"}
	var b bytes.Buffer
	require.NoError(t, writeResults(&b, []*tracked{ok, wrong, broken, noted}))
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	require.Len(t, lines, 8, "header, four rows, three explanations:\n%s", b.String())
	assert.Equal(t, "  ORDER     SCENARIO      EXPECTED (order · payment)                     ORDER STATUS  CANCEL REASON   PAYMENT   RESULT", lines[0])
	assert.Equal(t, "  e0d26446  approved      PAID · APPROVED                                PAID          -               APPROVED  OK", lines[1])
	assert.Equal(t, "  00613dbd  declined      CANCELLED/PAYMENT_DECLINED · DECLINED          PAID          -               APPROVED  FAIL", lines[2])
	assert.Equal(t, "  40a074e8  dlq-replay    CANCELLED/USER_REQUESTED · CANCELLED|REFUNDED  none          -               none      FAIL", lines[3])
	assert.Equal(t, "  2a75fe7e  early-cancel  CANCELLED/USER_REQUESTED · CANCELLED|REFUNDED  CANCELLED     USER_REQUESTED  REFUNDED  OK", lines[4])
	assert.Equal(t, "  declined: FAIL: ended PAID · payment APPROVED, expected CANCELLED/PAYMENT_DECLINED · DECLINED", lines[5])
	assert.Equal(t, "  dlq-replay: FAIL: the cancel did not reach order-service.commands.dlq: not done within 20s", lines[6])
	assert.Equal(t, "  early-cancel: a note", lines[7])
}

func TestWriteTimeline(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	tr := &tracked{scenario: scenarios[0], ID: "e0d26446-6a63-5ae7-9693-79ad9a254e74", Order: ord(statusPaid, ""), Payment: paymentApproved}
	var b bytes.Buffer
	require.NoError(t, writeTimeline(&b, tr, []gatewayclient.TimelineEvent{
		{At: at, Service: "order-service", Type: "order.create.requested", Detail: "received total=4200"},
		{At: at.Add(1048 * time.Millisecond), Service: "payment-service", Type: "payment.approved", Detail: "emitted amount=4200"},
	}))
	assert.Equal(t, "\n  approved · order e0d26446-6a63-5ae7-9693-79ad9a254e74 · PAID · payment APPROVED\n"+
		"    +0.000s  order-service    order.create.requested  received total=4200\n"+
		"    +1.048s  payment-service  payment.approved        emitted amount=4200\n", b.String())

	b.Reset()
	require.NoError(t, writeTimeline(&b, tr, nil))
	assert.Contains(t, b.String(), "(no entries)")
}

func TestCancelNote(t *testing.T) {
	t.Parallel()
	cancelled := func(previous string) []gatewayclient.TimelineEvent {
		return []gatewayclient.TimelineEvent{
			{Service: "payment-service", Type: "order.cancelled", Detail: "received reason=USER_REQUESTED previousStatus=PAID"},
			{Service: "order-service", Type: "order.cancelled", Detail: "emitted reason=USER_REQUESTED previousStatus=" + previous},
		}
	}
	cases := []struct {
		name    string
		entries []gatewayclient.TimelineEvent
		payment string
		want    string
	}{
		{"caught pending, never charged", cancelled(statusPending), paymentCancelled, "found the order PENDING_PAYMENT; its payment was CANCELLED"},
		{"caught pending, approved meanwhile", cancelled(statusPending), paymentRefunded, "had been approved meanwhile: REFUNDED"},
		{"too late: already paid", cancelled(statusPaid), paymentRefunded, "came after the order was PAID"},
		{"no cancellation recorded", nil, paymentCancelled, "no order.cancelled in its timeline"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Contains(t, cancelNote(&tracked{Payment: tc.payment}, tc.entries), tc.want)
		})
	}
}

func TestFormatting(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "e0d26446", short("e0d26446-6a63-5ae7-9693-79ad9a254e74"))
	assert.Equal(t, "abc", short("abc"))
	assert.Equal(t, "+1.024s", offset(1024*time.Millisecond))
	assert.Equal(t, "1.2s", seconds(1234*time.Millisecond))
}
