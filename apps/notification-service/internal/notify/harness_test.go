package notify

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/db"
	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/postgres/pgtest"
	"github.com/ordersaga/ordersaga/libs/testinfra"
	"github.com/ordersaga/ordersaga/libs/uow"
)

// env is the notification service over a fresh database, its sender
// pointed at a real SMTP server and a real HTTP server of PDFs.
type env struct {
	*Service
	runner *uow.Runner
	pool   *pgxpool.Pool
	sender *Sender
	docs   *pdfServer
}

func testConfig() SenderConfig {
	return SenderConfig{
		From: "ordersaga <no-reply@ordersaga.local>", Timeout: 2 * time.Second, MaxAttempts: 5,
		RetryDelay: 50 * time.Millisecond, MaxRetryDelay: 200 * time.Millisecond, Lease: 15 * time.Second,
		Batch: 32, Poll: 50 * time.Millisecond, MaxPause: 200 * time.Millisecond,
	}
}

func newEnv(t testing.TB, smtpAddr string, tweak ...func(*SenderConfig)) *env {
	t.Helper()
	pool := pgtest.Pool(t, 16, db.Messaging(), Schema())
	log := slog.New(slog.DiscardHandler)
	runner := uow.NewRunner(pool, nil, prometheus.NewRegistry())
	cfg := testConfig()
	for _, f := range tweak {
		f(&cfg)
	}
	docs := newPDFServer(t)
	mailer := mailerOf(t, smtpAddr, cfg.Timeout)
	sender := NewSender(cfg, pool, log, NewDocuments(docs.URL, cfg.Timeout), mailer, prometheus.NewRegistry())
	return &env{Service: NewService(runner, log, sender.Wake), runner: runner, pool: pool, sender: sender, docs: docs}
}

func mailerOf(t testing.TB, addr string, timeout time.Duration) *SMTPMailer {
	t.Helper()
	o, err := ParseSMTPURL("smtp://" + addr)
	require.NoError(t, err)
	m, err := NewSMTPMailer(o, timeout)
	require.NoError(t, err)
	return m
}

// handle runs the handler of p in a unit of work of its own, as a consumer
// does.
func handle[T any, M interface {
	*T
	events.Payload
}](t testing.TB, e *env, fn func(context.Context, *uow.Tx, M) error, p M) {
	t.Helper()
	require.NoError(t, e.runner.InTx(context.Background(), func(ctx context.Context, tx *uow.Tx) error { return fn(ctx, tx, p) }))
}

// customer registers a customer and returns their id and address.
func (e *env) customer(t testing.TB) (uuid.UUID, string) {
	t.Helper()
	id := uuid.New()
	addr := "c-" + id.String()[:8] + "@example.org"
	handle(t, e, e.userRegistered, &events.UserRegistered{UserID: id, Email: addr, Name: "Ada " + id.String()[:4]})
	return id, addr
}

// issued consumes an invoice.issued of a new order of user.
func (e *env) issued(t testing.TB, user uuid.UUID) events.InvoiceIssued {
	t.Helper()
	inv := events.InvoiceIssued{InvoiceID: uuid.New(), Number: "INV-2026-" + fmt.Sprintf("%06d", time.Now().UnixNano()%1000000),
		OrderID: uuid.New(), UserID: user, Total: 1234, Currency: "USD"}
	handle(t, e, e.invoiceIssued, &inv)
	return inv
}

// drain runs sending rounds until nothing is due or leased, or fails at the
// deadline.
func (e *env) drain(t testing.TB, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		_, err := e.sender.Round(context.Background())
		if err == nil && e.pending(t) == 0 {
			return
		}
		require.True(t, time.Now().Before(deadline), "e-mails still PENDING after %s (last round: %v)", within, err)
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) pending(t testing.TB) int {
	t.Helper()
	var n int
	require.NoError(t, e.pool.QueryRow(context.Background(), "SELECT count(*) FROM notifications WHERE status = 'PENDING'").Scan(&n))
	return n
}

// record is the e-mail log's record of an order and kind.
func (e *env) record(t testing.TB, order uuid.UUID, kind string) Notification {
	t.Helper()
	list, _, err := e.List(context.Background(), Filter{OrderID: &order}, 100, 0)
	require.NoError(t, err)
	var found []Notification
	for _, n := range list {
		if n.Kind == kind {
			found = append(found, n)
		}
	}
	require.Len(t, found, 1, "records of order %s, kind %s", order, kind)
	return found[0]
}

// pdfServer is a real HTTP server standing in for invoice-service (a
// remote dependency): it serves a PDF per invoice and credit note, or 503
// while failing is set.
type pdfServer struct {
	*httptest.Server
	failing atomic.Bool
	fetches atomic.Int64
}

func newPDFServer(t testing.TB) *pdfServer {
	s := &pdfServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/") // api invoices {id} pdf | credit-note pdf
		if s.failing.Load() || len(parts) < 4 || parts[0] != "api" || parts[1] != "invoices" {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		which := AttachInvoice
		if parts[3] == "credit-note" {
			which = AttachCreditNote
		}
		w.Header().Set("Content-Type", "application/pdf")
		_, _ = w.Write(testPDF(which, parts[2]))
	}))
	t.Cleanup(s.Close)
	return s
}

// testPDF is the document the stand-in serves: bytes unique per document.
func testPDF(which, id string) []byte {
	return []byte("%PDF-1.4\n% " + which + " " + id + "\n1 0 obj << /Type /Catalog >> endobj\n\x00\x01\x02\xff binary\n%%EOF\n")
}

// part is a leaf of a parsed MIME message.
type part struct {
	ContentType, Filename string
	Body                  []byte
}

// parseMIME parses a raw message into its headers and leaf parts, decoding
// base64 and quoted-printable.
func parseMIME(t testing.TB, raw []byte) (mail.Header, []part) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	require.NoError(t, err)
	var parts []part
	walkMIME(t, textproto(m.Header), m.Body, &parts)
	return m.Header, parts
}

type header interface{ Get(string) string }

func textproto(h mail.Header) header { return h }

func walkMIME(t testing.TB, h header, body io.Reader, out *[]part) {
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
			walkMIME(t, p.Header, p, out)
		}
	}
	data, err := io.ReadAll(body)
	require.NoError(t, err)
	switch strings.ToLower(h.Get("Content-Transfer-Encoding")) {
	case "base64":
		data, err = base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(data)), ""))
		require.NoError(t, err)
	case "quoted-printable":
		data, err = io.ReadAll(quotedprintable.NewReader(bytes.NewReader(data)))
		require.NoError(t, err)
	}
	_, dp, _ := mime.ParseMediaType(h.Get("Content-Disposition"))
	*out = append(*out, part{ContentType: mt, Filename: dp["filename"], Body: data})
}

// freeAddr is a local address nothing listens on but the test's own
// servers, until the test ends (testinfra.ReservedAddr): a fake SMTP server
// stopped for an outage gets its port back when it starts again.
func freeAddr(t testing.TB) string { return testinfra.ReservedAddr(t) }

// mailpit is a Mailpit started for one test.
type mailpit struct {
	SMTP, API string
}

// mailpitBinary finds the Mailpit that scripts/ensure-mailpit.sh installs
// (or MAILPIT_BIN); without it the test skips, or fails when CI is set.
func mailpitBinary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("MAILPIT_BIN")
	if bin == "" {
		cache := os.Getenv("ORDERSAGA_CACHE")
		if cache == "" {
			base, err := os.UserCacheDir()
			require.NoError(t, err)
			cache = filepath.Join(base, "ordersaga")
		}
		bin = filepath.Join(cache, "bin", "mailpit")
	}
	if _, err := os.Stat(bin); err != nil {
		msg := "no Mailpit at " + bin + ": run scripts/ensure-mailpit.sh (make test does)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return bin
}

// startMailpit starts Mailpit on free ports, stopped when the test ends.
func startMailpit(t testing.TB) *mailpit {
	t.Helper()
	bin := mailpitBinary(t)
	m := &mailpit{SMTP: freeAddr(t), API: "http://" + freeAddr(t)}
	cmd := exec.Command(bin, "--smtp", m.SMTP, "--listen", strings.TrimPrefix(m.API, "http://"),
		"--database", filepath.Join(t.TempDir(), "mailpit.db"), "--quiet")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(m.API + "/api/v1/messages")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return m
			}
		}
		require.True(t, time.Now().Before(deadline), "Mailpit did not answer: %v", err)
		time.Sleep(50 * time.Millisecond)
	}
}

// mailpitMessage is what Mailpit's API lists of a message.
type mailpitMessage struct {
	ID        string
	MessageID string
	Subject   string
	To        []struct{ Address string }
}

func (m *mailpit) messages(t testing.TB) []mailpitMessage {
	t.Helper()
	var page struct {
		Messages []mailpitMessage
	}
	m.getJSON(t, "/api/v1/messages?limit=1000", &page)
	return page.Messages
}

func (m *mailpit) raw(t testing.TB, id string) []byte {
	t.Helper()
	resp, err := http.Get(m.API + "/api/v1/message/" + id + "/raw")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return b
}

func (m *mailpit) getJSON(t testing.TB, path string, v any) {
	t.Helper()
	resp, err := http.Get(m.API + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
}

// byMessageID waits for Mailpit to hold want messages with this
// Message-ID and returns them.
func (m *mailpit) byMessageID(t testing.TB, messageID string, want int) []mailpitMessage {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var found []mailpitMessage
		for _, msg := range m.messages(t) {
			if msg.MessageID == messageID {
				found = append(found, msg)
			}
		}
		if len(found) >= want || time.Now().After(deadline) {
			return found
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fakeSMTP is an SMTP server (go-smtp) inside the test, for the replies
// Mailpit will not give: 4xx and 5xx on demand, a connection dropped in the
// middle of DATA, a server that goes away.
type fakeSMTP struct {
	addr string
	mu   sync.Mutex
	srv  *smtp.Server
	ln   net.Listener
	// rcpt decides the reply to RCPT TO (nil: 250); data the reply to the
	// end of DATA, or drop the connection.
	rcpt func(to string) error
	data func(to string) (err error, drop bool)
	// got is every accepted message's raw bytes, by recipient.
	got map[string][][]byte
}

func newFakeSMTP(t testing.TB) *fakeSMTP {
	f := &fakeSMTP{addr: freeAddr(t), got: map[string][][]byte{}}
	f.start(t)
	t.Cleanup(f.stop)
	return f
}

func (f *fakeSMTP) start(t testing.TB) {
	t.Helper()
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &fakeSession{f: f, conn: c}, nil }))
	s.Domain = "fake.test"
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	var l net.Listener
	deadline := time.Now().Add(5 * time.Second)
	for {
		var err error
		if l, err = net.Listen("tcp", f.addr); err == nil {
			break
		}
		require.True(t, time.Now().Before(deadline), "listen on %s: %v", f.addr, err)
		time.Sleep(50 * time.Millisecond)
	}
	f.mu.Lock()
	f.srv, f.ln = s, l
	f.mu.Unlock()
	go func() { _ = s.Serve(l) }()
}

func (f *fakeSMTP) stop() {
	f.mu.Lock()
	s, l := f.srv, f.ln
	f.srv, f.ln = nil, nil
	f.mu.Unlock()
	if s != nil {
		// The listener too: Serve may not have taken it yet.
		_ = l.Close()
		_ = s.Close()
	}
}

func (f *fakeSMTP) received(to string) [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.got[to]
}

func (f *fakeSMTP) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, g := range f.got {
		n += len(g)
	}
	return n
}

type fakeSession struct {
	f    *fakeSMTP
	conn *smtp.Conn
	to   string
}

func (s *fakeSession) Reset()        { s.to = "" }
func (s *fakeSession) Logout() error { return nil }
func (s *fakeSession) Mail(string, *smtp.MailOptions) error {
	return nil
}

func (s *fakeSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.f.mu.Lock()
	rcpt := s.f.rcpt
	s.f.mu.Unlock()
	if rcpt != nil {
		if err := rcpt(to); err != nil {
			return err
		}
	}
	s.to = to
	return nil
}

func (s *fakeSession) Data(r io.Reader) error {
	s.f.mu.Lock()
	data := s.f.data
	s.f.mu.Unlock()
	if data != nil {
		if err, drop := data(s.to); drop {
			_, _ = io.CopyN(io.Discard, r, 64)
			_ = s.conn.Conn().Close()
			return io.ErrUnexpectedEOF
		} else if err != nil {
			_, _ = io.Copy(io.Discard, r)
			return err
		}
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.f.mu.Lock()
	s.f.got[s.to] = append(s.f.got[s.to], b)
	s.f.mu.Unlock()
	return nil
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
