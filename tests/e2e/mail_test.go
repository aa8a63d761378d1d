package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/mail"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/gatewayclient"
	"github.com/ordersaga/ordersaga/saga"
)

const notificationService = "notification-service"

// mailSink is a real SMTP server (go-smtp) inside the test: it keeps the
// Message-ID of every e-mail it accepted, refuses recipients on demand
// (550) and can be stopped and started on its port (an outage).
type mailSink struct {
	addr   string
	mu     sync.Mutex
	srv    *smtp.Server
	ln     net.Listener
	reject map[string]bool
	// got counts the e-mails accepted per Message-ID; raw keeps the last.
	got map[string]int
	raw map[string][]byte
}

func newMailSink(t testing.TB) *mailSink {
	m := &mailSink{addr: fmt.Sprintf("127.0.0.1:%d", freePorts(t, 1)[0]), reject: map[string]bool{}, got: map[string]int{}, raw: map[string][]byte{}}
	m.Start(t)
	t.Cleanup(m.Stop)
	return m
}

// Start serves on the sink's address.
func (m *mailSink) Start(t testing.TB) {
	t.Helper()
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &sinkSession{m: m}, nil }))
	s.Domain, s.ReadTimeout, s.WriteTimeout = "sink.test", 30*time.Second, 30*time.Second
	var l net.Listener
	require.Eventually(t, func() bool {
		var err error
		l, err = net.Listen("tcp", m.addr)
		return err == nil
	}, 10*time.Second, 50*time.Millisecond, "listen on %s", m.addr)
	m.mu.Lock()
	m.srv, m.ln = s, l
	m.mu.Unlock()
	go func() { _ = s.Serve(l) }()
}

// Stop closes the listener and every connection: the server is gone.
func (m *mailSink) Stop() {
	m.mu.Lock()
	s, l := m.srv, m.ln
	m.srv, m.ln = nil, nil
	m.mu.Unlock()
	if s != nil {
		_ = l.Close()
		_ = s.Close()
	}
}

// Reject makes every RCPT TO addr a 550.
func (m *mailSink) Reject(addr string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reject[strings.ToLower(addr)] = true
}

// Copies returns how many e-mails with this Message-ID were accepted.
func (m *mailSink) Copies(messageID string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.got[messageID]
}

// Raw returns the last accepted e-mail with this Message-ID.
func (m *mailSink) Raw(messageID string) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.raw[messageID]
}

type sinkSession struct {
	m *mailSink
}

func (s *sinkSession) Reset()                               {}
func (s *sinkSession) Logout() error                        { return nil }
func (s *sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	if s.m.reject[strings.ToLower(to)] {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
	}
	return nil
}

func (s *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	msg, err := mail.ReadMessage(bytes.NewReader(b))
	if err != nil {
		return &smtp.SMTPError{Code: 554, Message: "not a message: " + err.Error()}
	}
	id := msg.Header.Get("Message-Id")
	s.m.mu.Lock()
	s.m.got[id]++
	s.m.raw[id] = b
	s.m.mu.Unlock()
	return nil
}

// wireMail gives notification-service, where it is a participant, a mail
// server of this system's own and invoice-service's address (a closed port
// where that is not a participant), and short retry delays; the test's own
// environment (common) still wins.
func (s *System) wireMail(t testing.TB, common []string) {
	t.Helper()
	if _, ok := s.envs[notificationService]; !ok {
		return
	}
	s.Mail = newMailSink(t)
	invoices := fmt.Sprintf("http://127.0.0.1:%d", freePorts(t, 1)[0])
	if u, ok := s.URL["invoice-service"]; ok {
		invoices = u
	}
	own := []string{"SMTP_URL=smtp://" + s.Mail.addr, "INVOICE_SERVICE_URL=" + invoices,
		"NOTIFY_RETRY_DELAY=200ms", "NOTIFY_MAX_RETRY_DELAY=2s", "NOTIFY_MAX_PAUSE=1s", "SMTP_TIMEOUT=5s", "NOTIFY_LEASE=30s"}
	env := s.envs[notificationService]
	s.envs[notificationService] = append(append(env[:2:2], own...), common...)
}

// hasParticipant tells whether saga.conf names a participant.
func hasParticipant(name string) bool {
	_, ok := saga.Lookup(name)
	return ok
}

// emailRecord is a row of notification-service's e-mail log.
type emailRecord struct {
	OrderID, Kind, Status string
	Attempts              int
}

// emails reads the e-mail log, by order id and kind.
func (s *System) emails(t testing.TB) map[string]emailRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.DB[notificationService])
	require.NoError(t, err)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT order_id::text, kind, status, attempts FROM notifications")
	require.NoError(t, err)
	recs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (emailRecord, error) {
		var e emailRecord
		return e, r.Scan(&e.OrderID, &e.Kind, &e.Status, &e.Attempts)
	})
	require.NoError(t, err)
	out := map[string]emailRecord{}
	for _, e := range recs {
		key := e.OrderID + "/" + e.Kind
		require.NotContains(t, out, key, "one record per order and kind")
		out[key] = e
	}
	return out
}

// emailKind is the e-mail an order's end calls for (contract §8): "" for
// none, or none this system can send (a confirmation needs invoice-service).
// A status "CANCELLED_PAID" is a cancelled order that had been paid.
func emailKind(status string) string {
	switch status {
	case "PAID", "CANCELLED_PAID":
		if hasParticipant("invoice-service") {
			if status == "PAID" {
				return "ORDER_CONFIRMED"
			}
			return "ORDER_CANCELLED"
		}
		return ""
	case "CANCELLED":
		return "ORDER_CANCELLED"
	case "FAILED":
		return "PAYMENT_FAILED"
	}
	return ""
}

// checkEmails is §9's e-mail invariant over final orders (id → status):
// exactly one record per order and kind triggered, none left PENDING by
// end, each SENT e-mail accepted by the mail server at least once and at
// most maxCopies times (2 only after a crash, contract §8). It returns the
// count of records by status.
func (s *System) checkEmails(t testing.TB, final map[string]string, end time.Time, maxCopies int) map[string]int {
	t.Helper()
	var recs map[string]emailRecord
	for {
		recs = s.emails(t)
		pending := 0
		for _, r := range recs {
			if r.Status == "PENDING" {
				pending++
			}
		}
		// An order is final before notification-service has handled the
		// event that triggers its e-mail (a confirmation waits for
		// invoice-service's invoice.issued, which follows order.paid): a
		// record not there yet is waited for like a PENDING one, and its
		// absence at end is the failure below.
		missing := 0
		for id, status := range final {
			if kind := emailKind(status); kind != "" {
				if _, ok := recs[id+"/"+kind]; !ok {
					missing++
				}
			}
		}
		if pending == 0 && missing == 0 {
			break
		}
		if !time.Now().Before(end) {
			require.Zero(t, pending, "%d e-mails still PENDING", pending)
			break // the missing records fail below, each named
		}
		time.Sleep(200 * time.Millisecond)
	}
	byStatus := map[string]int{}
	for id, status := range final {
		kind := emailKind(status)
		if kind == "" {
			continue
		}
		r, ok := recs[id+"/"+kind]
		if !assert.True(t, ok, "order %s (%s) has its %s record", id, status, kind) {
			continue
		}
		byStatus[r.Status]++
		assert.Contains(t, []string{"SENT", "FAILED", "SKIPPED"}, r.Status)
		if r.Status == "SENT" {
			n := s.Mail.Copies("<" + id + "." + kind + "@ordersaga.local>")
			assert.True(t, n >= 1 && n <= maxCopies, "order %s's %s accepted %d times (want 1..%d)", id, kind, n, maxCopies)
		}
	}
	return byStatus
}

// customers registers n customers (AUTH_MODE off: no token needed) and
// returns their ids and addresses.
func (s *System) customers(t testing.TB, n int) (ids, addrs []string) {
	t.Helper()
	for i := range n {
		a := s.register(t, fmt.Sprintf("c%d-%d@example.org", i, time.Now().UnixNano()), "correct horse battery")
		ids, addrs = append(ids, a.ID), append(addrs, a.Email)
	}
	s.waitAddresses(t, ids)
	return ids, addrs
}

// waitAddresses waits until notification-service has the addresses of
// users from their user.registered: it comes on a queue of its own, and an
// order's e-mail written before it arrived would be SKIPPED (contract §8),
// which a test of the e-mails' delivery does not mean to test.
func (s *System) waitAddresses(t testing.TB, users []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.DB[notificationService])
	require.NoError(t, err)
	defer conn.Close(ctx)
	for {
		var known int
		err := conn.QueryRow(ctx, "SELECT count(*) FROM addresses WHERE user_id::text = ANY($1)", users).Scan(&known)
		require.NoError(t, err, "notification-service knows %d of %d customers' addresses by the deadline", known, len(users))
		if known == len(users) {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// mailLoad places n orders of customers, every other one failing its
// payment (PAYMENT_FAILED) and the rest paid (a confirmation where
// invoice-service runs), calling fault after a third; it returns the
// orders' final statuses.
func (s *System) mailLoad(t testing.TB, users []string, n int, fault func()) map[string]string {
	t.Helper()
	var ids []string
	for i := range n {
		if i == n/3 && fault != nil {
			fault()
		}
		method := "tok_visa"
		if i%2 == 0 {
			method = "tok_fail"
		}
		ids = append(ids, s.createOrder(t, totalOrder(users[i%len(users)], int64(100+i), method), ""))
	}
	final := map[string]string{}
	for _, id := range ids {
		o := s.waitOrder(t, id, 60*time.Second, func(o gatewayclient.Order) bool {
			return slices.Contains([]gatewayclient.OrderStatus{"PAID", "CANCELLED", "FAILED"}, o.Status)
		})
		final[id] = string(o.Status)
	}
	return final
}

// mailOutage is how long the mail server stays down under load: 20 s in
// make test, CHAOS_SMTP_OUTAGE (make chaos: 2m) otherwise.
func mailOutage() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("CHAOS_SMTP_OUTAGE")); err == nil && d > 0 {
		return d
	}
	return 20 * time.Second
}

func needNotifications(t *testing.T) {
	if !hasParticipant(notificationService) {
		t.Skip("notification-service is not a participant in saga/saga.conf")
	}
}

// The mail server down for a while under load: afterwards every e-mail is
// sent exactly once, none fails and none is dead-lettered.
func TestChaosSMTPDown(t *testing.T) {
	t.Parallel()
	needNotifications(t)
	s := Start(t, map[string]string{"PAYMENT_LATENCY": "20ms"})
	users, _ := s.customers(t, 5)
	n := chaosOrders() / 4
	if os.Getenv("CHAOS_ORDERS") != "" {
		n = chaosOrders() * 2 / 3 // make chaos: 200 orders
	}
	outage := mailOutage()
	var down time.Time
	final := s.mailLoad(t, users, n, func() { s.Mail.Stop(); down = time.Now() })
	// Sending paused, reported: /readyz still 200, its smtp check not ok.
	require.Eventually(t, func() bool {
		resp, err := http.Get(s.URL[notificationService] + "/readyz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var r struct{ Checks map[string]string }
		return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&r) == nil &&
			r.Checks["smtp"] != "" && r.Checks["smtp"] != "ok"
	}, outage, 100*time.Millisecond, "notification-service reports the mail server away, and stays ready")
	if wait := outage - time.Since(down); wait > 0 {
		time.Sleep(wait) // the rest of the outage, whatever the load took
	}
	s.Mail.Start(t)
	back := time.Now()
	byStatus := s.checkEmails(t, final, back.Add(60*time.Second), 1)
	assert.Zero(t, byStatus["FAILED"], "no e-mail failed for the outage")
	assert.Zero(t, byStatus["SKIPPED"], "every customer was known")
	assert.Positive(t, byStatus["SENT"])
	s.noDeadLetters(t, "notification-service.events", "notification-service.user-events")
	t.Logf("CHAOS %-28s orders=%d outage=%v e-mails=%v sent-within=%v", "smtp down", n, outage, byStatus, time.Since(back).Round(time.Millisecond))
}

// A 5xx for one recipient costs only that recipient's e-mails.
func TestSMTPRejectionCostsOnlyThatEmail(t *testing.T) {
	t.Parallel()
	needNotifications(t)
	s := Start(t, nil)
	users, addrs := s.customers(t, 3)
	s.Mail.Reject(addrs[0])
	final := s.mailLoad(t, users, 12, nil)
	s.checkEmails(t, final, time.Now().Add(60*time.Second), 1)
	recs := s.emails(t)
	failed, sent := 0, 0
	for _, r := range recs {
		switch r.Status {
		case "FAILED":
			failed++
			assert.Equal(t, 1, r.Attempts, "a 5xx fails at once")
		case "SENT":
			sent++
		}
	}
	assert.Positive(t, failed, "the refused recipient's e-mails failed")
	assert.Positive(t, sent, "the others' were sent")
	assert.Equal(t, len(recs), failed+sent)
}

// notification-service SIGKILLed mid-load and started again: every e-mail
// is sent, at most twice and then with the same Message-ID, and its
// record says SENT once.
func TestNotificationServiceKilled(t *testing.T) {
	t.Parallel()
	needNotifications(t)
	s := Start(t, map[string]string{"NOTIFY_LEASE": "6s", "SMTP_TIMEOUT": "1s"})
	users, _ := s.customers(t, 4)
	n := chaosOrders() / 4
	final := s.mailLoad(t, users, n, func() {
		s.Kill(notificationService)
		s.StartService(notificationService)
	})
	byStatus := s.checkEmails(t, final, time.Now().Add(60*time.Second), 2)
	assert.Zero(t, byStatus["FAILED"])
	assert.Positive(t, byStatus["SENT"])
	s.noDeadLetters(t, "notification-service.events", "notification-service.user-events")
}

// The confirmation carries the invoice's PDF, byte for byte as
// invoice-service serves it (contract §6, §8).
func TestConfirmationCarriesTheInvoicePDF(t *testing.T) {
	t.Parallel()
	needNotifications(t)
	if !hasParticipant("invoice-service") {
		t.Skip("invoice-service is not a participant in saga/saga.conf yet: no invoice.issued, so no confirmation")
	}
	s := Start(t, nil)
	users, _ := s.customers(t, 1)
	final := s.mailLoad(t, users, 2, nil) // one failed, one paid
	s.checkEmails(t, final, time.Now().Add(60*time.Second), 1)
	for id, status := range final {
		if status != "PAID" {
			continue
		}
		inv, err := s.API.GetInvoiceOfOrderWithResponse(context.Background(), uuidOf(t, id))
		require.NoError(t, err)
		expect(t, inv.HTTPResponse, inv.Body, http.StatusOK)
		// The PDF as bytes: raw.
		resp, err := http.Get(s.GatewayURL + "/api/invoices/" + inv.JSON200.Id.String() + "/pdf")
		require.NoError(t, err)
		pdf, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		attached := attachments(t, s.Mail.Raw("<"+id+".ORDER_CONFIRMED@ordersaga.local>"))
		require.Len(t, attached, 1)
		assert.Equal(t, pdf, attached[0])
	}
}

// noDeadLetters asserts that the dead-letter queues of these work queues
// are empty.
func (s *System) noDeadLetters(t testing.TB, queues ...string) {
	t.Helper()
	conn, err := amqp.Dial(s.Broker.AMQPURL)
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	defer ch.Close()
	for _, q := range queues {
		info, err := ch.QueueDeclarePassive(q+".dlq", true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
		require.NoError(t, err, q+".dlq")
		assert.Zero(t, info.Messages, "%s.dlq is empty", q)
	}
}

// attachments returns the decoded attachments of a raw e-mail.
func attachments(t testing.TB, raw []byte) [][]byte {
	t.Helper()
	require.NotEmpty(t, raw, "the e-mail was received")
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	require.NoError(t, err)
	var out [][]byte
	var walk func(h interface{ Get(string) string }, body io.Reader)
	walk = func(h interface{ Get(string) string }, body io.Reader) {
		mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
		require.NoError(t, err)
		if strings.HasPrefix(mt, "multipart/") {
			r := multipart.NewReader(body, params["boundary"])
			for {
				p, err := r.NextRawPart()
				if err == io.EOF {
					return
				}
				require.NoError(t, err)
				walk(p.Header, p)
			}
		}
		if _, dp, _ := mime.ParseMediaType(h.Get("Content-Disposition")); dp["filename"] != "" {
			data, err := io.ReadAll(body)
			require.NoError(t, err)
			dec, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(data)), ""))
			require.NoError(t, err)
			out = append(out, dec)
		}
	}
	walk(m.Header, m.Body)
	return out
}

// finalStatuses reads the status of final orders, "CANCELLED_PAID" for a
// cancelled one whose payment was refunded.
func (s *System) finalStatuses(t testing.TB, ids []string) map[string]string {
	t.Helper()
	final := map[string]string{}
	for _, id := range ids {
		o := s.mustOrder(t, id)
		final[id] = string(o.Status)
		if o.Status == "CANCELLED" {
			if p, status := s.payment(t, id); status == http.StatusOK && p.Status == "REFUNDED" {
				final[id] = "CANCELLED_PAID"
			}
		}
	}
	return final
}
