package notify

import (
	"context"
	"net/mail"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/db/notification/notificationdb"
)

// A sender that dies between the server's 250 and the record leaves its
// lease behind: once the lease ran out the e-mail is sent once more, with
// the same Message-ID, and the record says SENT once (the honest limit of
// SMTP, contract §8).
func TestCrashAfterTheReplyResendsOnceWithTheSameMessageID(t *testing.T) {
	t.Parallel()
	f := newFakeSMTP(t)
	// The lease must outlast the dying sender's claim, render and send
	// and the live sender's round after it: seconds, on a loaded machine.
	// (A round begins an e-mail only with 5 timeouts of the lease left.)
	const lease = 15 * time.Second
	e := newEnv(t, f.addr, func(c *SenderConfig) { c.Lease = lease; c.Timeout = 2 * time.Second })
	user, addr := e.customer(t)
	inv := e.issued(t, user)

	// The dying sender: it claims, sends, and never records.
	rows, err := notificationdb.New(e.pool).ClaimDue(context.Background(), notificationdb.ClaimDueParams{LeaseSeconds: lease.Seconds(), Lim: 10})
	require.NoError(t, err)
	require.Len(t, rows, 1)
	em, err := e.sender.prepare(context.Background(), rows[0])
	require.NoError(t, err)
	msg, err := Build(e.sender.cfg.From, em)
	require.NoError(t, err)
	sess, err := e.sender.mailer.Dial(context.Background())
	require.NoError(t, err)
	require.NoError(t, sess.Send(msg))
	sess.Close()

	n, err := e.sender.Round(context.Background())
	require.NoError(t, err)
	assert.Zero(t, n, "leased: nobody else sends it meanwhile")
	e.drain(t, lease+30*time.Second)

	rec := e.record(t, inv.OrderID, KindOrderConfirmed)
	assert.Equal(t, Sent, rec.Status)
	assert.EqualValues(t, 1, rec.Attempts)
	got := f.received(addr)
	require.Len(t, got, 2, "sent again once after the crash")
	for _, raw := range got {
		h, _ := parseMIME(t, raw)
		assert.Equal(t, "<"+MessageID(inv.OrderID.String(), KindOrderConfirmed)+">", h.Get("Message-Id"))
	}
}

// The mail server away for a while under load: the sender pauses without
// spending attempts, and once the server is back every e-mail is sent
// exactly once and none fails.
func TestServerOutageUnderLoadSendsEachOnce(t *testing.T) {
	t.Parallel()
	const orders, outage = 30, 3 * time.Second
	f := newFakeSMTP(t)
	f.stop()
	e := newEnv(t, f.addr)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = e.sender.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })

	addrs := map[uuid.UUID]string{}
	for range orders {
		user, addr := e.customer(t)
		addrs[e.issued(t, user).OrderID] = addr
	}
	time.Sleep(outage) // the outage itself
	for o := range addrs {
		rec := e.record(t, o, KindOrderConfirmed)
		require.Equal(t, Pending, rec.Status)
		require.Zero(t, rec.Attempts, "no attempt spent while the server is unreachable")
	}
	f.start(t)
	require.Eventually(t, func() bool { return e.pending(t) == 0 }, 20*time.Second, 50*time.Millisecond)
	for o, addr := range addrs {
		rec := e.record(t, o, KindOrderConfirmed)
		assert.Equal(t, Sent, rec.Status)
		assert.EqualValues(t, 1, rec.Attempts)
		got := f.received(addr)
		if assert.Len(t, got, 1, "once, to %s", addr) {
			m, err := mail.ReadMessage(bytesReader(got[0]))
			require.NoError(t, err)
			assert.Equal(t, "<"+MessageID(o.String(), KindOrderConfirmed)+">", m.Header.Get("Message-Id"))
		}
	}
	assert.Equal(t, orders, f.total())
}
