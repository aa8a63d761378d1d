package e2e

import (
	"context"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/gatewayclient"
)

const invoiceService = "invoice-service"

// orderEnd is how an order's saga ended: its status and its payment.
type orderEnd struct {
	status  string
	payment gatewayclient.Payment
}

// waitInvoice polls the order's invoice until done holds of it (ok: it
// exists) or end passes, and returns the last answer.
func (s *System) waitInvoice(t testing.TB, orderID string, end time.Time, done func(inv gatewayclient.Invoice, ok bool) bool) (gatewayclient.Invoice, bool) {
	t.Helper()
	for {
		resp, err := s.API.GetInvoiceOfOrderWithResponse(context.Background(), uuidOf(t, orderID))
		require.NoError(t, err, "GET /api/orders/%s/invoice", orderID)
		require.Contains(t, []int{http.StatusOK, http.StatusNotFound}, resp.StatusCode(), "GET /api/orders/%s/invoice", orderID)
		var inv gatewayclient.Invoice
		ok := resp.JSON200 != nil
		if ok {
			inv = *resp.JSON200
		}
		if done(inv, ok) || time.Now().After(end) {
			return inv, ok
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// everPaid reports whether order id was PAID at some point: order-service
// emitted its order.paid.
func (s *System) everPaid(t testing.TB, id string) bool {
	t.Helper()
	return s.received(t, id, "order-service", events.TypeOrderPaid) > 0
}

// received counts the entries of type typ that service recorded in order
// id's timeline (what it received or emitted).
func (s *System) received(t testing.TB, id, service, typ string) int {
	t.Helper()
	n := 0
	for _, e := range s.mustTimeline(t, id).Events {
		if string(e.Service) == service && e.Type == typ {
			n++
		}
	}
	return n
}

// checkInvoices checks contract §9's invoice invariants by end, the orders
// being final: exactly one invoice per order that was ever PAID, its total
// the payment's amount; a credit note for each of those that ended
// CANCELLED; none for the others; and the numbers of each series unique
// and gapless per year, increasing with issuedAt.
func (s *System) checkInvoices(t testing.TB, ends map[string]orderEnd, end time.Time) {
	t.Helper()
	if _, ok := s.URL[invoiceService]; !ok {
		return
	}
	var none []string
	for id, e := range ends {
		paid := e.status == "PAID" || (e.status == "CANCELLED" && e.payment.Status == "REFUNDED" && s.everPaid(t, id))
		if !paid {
			none = append(none, id)
			continue
		}
		want := gatewayclient.InvoiceStatus("ISSUED")
		if e.status == "CANCELLED" {
			want = "CREDITED"
		}
		inv, ok := s.waitInvoice(t, id, end, func(inv gatewayclient.Invoice, ok bool) bool { return ok && inv.Status == want })
		if assert.True(t, ok, "order %s, %s, has its invoice", id, e.status) {
			assert.Equal(t, want, inv.Status, "order %s, %s: its invoice", id, e.status)
			assert.Equal(t, e.payment.Amount, inv.Total, "order %s: the invoice's total is the payment's amount", id)
			assert.Equal(t, e.payment.Id, inv.PaymentId, "order %s: the invoice names its payment", id)
			assert.Equal(t, want == "CREDITED", inv.CreditNote != nil, "order %s: a credit note only when credited", id)
		}
	}
	for _, id := range none {
		_, ok := s.waitInvoice(t, id, time.Now(), func(gatewayclient.Invoice, bool) bool { return true })
		assert.False(t, ok, "order %s, %s, never paid: no invoice", id, ends[id].status)
	}
	invoices, credited := s.checkNumbering(t)
	t.Logf("invoices: %d issued, %d credited, none for %d orders never paid; numbers gapless", invoices, credited, len(none))
}

var numberShape = regexp.MustCompile(`^(INV|CN)-(\d{4})-(\d{6})$`)

// checkNumbering checks every invoice of the system: one per order, and
// per series and year the numbers 1..N, in the order of issuedAt. It
// returns how many invoices there are and how many were credited.
func (s *System) checkNumbering(t testing.TB) (invoices, credited int) {
	t.Helper()
	all := s.allInvoices(t)
	type doc struct {
		n  int
		at time.Time
	}
	series := map[string][]doc{}
	orders := map[string]int{}
	add := func(number string, at time.Time) {
		m := numberShape.FindStringSubmatch(number)
		if !assert.NotNil(t, m, "number %q", number) {
			return
		}
		n, _ := strconv.Atoi(m[3])
		assert.Equal(t, m[2], strconv.Itoa(at.UTC().Year()), "%s: the year of its issuedAt %s", number, at)
		series[m[1]+"-"+m[2]] = append(series[m[1]+"-"+m[2]], doc{n, at})
	}
	for _, inv := range all {
		orders[inv.OrderId.String()]++
		add(inv.Number, inv.IssuedAt)
		if inv.CreditNote != nil {
			credited++
			add(inv.CreditNote.Number, inv.CreditNote.IssuedAt)
		}
	}
	for id, n := range orders {
		assert.Equal(t, 1, n, "order %s: exactly one invoice", id)
	}
	for name, docs := range series {
		sort.Slice(docs, func(i, j int) bool { return docs[i].n < docs[j].n })
		for i, d := range docs {
			if !assert.Equal(t, i+1, d.n, "%s: numbers 1..%d without a gap or a duplicate", name, len(docs)) {
				break
			}
			if i > 0 && !assert.True(t, d.at.After(docs[i-1].at), "%s: number %d issued after %d", name, d.n, docs[i-1].n) {
				break
			}
		}
	}
	return len(all), credited
}

// allInvoices reads every invoice through the gateway, page by page.
func (s *System) allInvoices(t testing.TB) []gatewayclient.Invoice {
	t.Helper()
	var all []gatewayclient.Invoice
	limit := 100
	for page := 1; ; page++ {
		resp, err := s.API.ListInvoicesWithResponse(context.Background(), &gatewayclient.ListInvoicesParams{Limit: &limit, Page: &page})
		require.NoError(t, err, "GET /api/invoices")
		expect(t, resp.HTTPResponse, resp.Body, http.StatusOK)
		p := resp.JSON200
		all = append(all, p.Data...)
		if int64(page) >= p.Meta.TotalPages {
			return all
		}
	}
}

// pdf fetches a PDF through the gateway.
func (s *System) pdf(t testing.TB, path string) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, s.GatewayURL+path, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var b []byte
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b = append(b, buf[:n]...)
		if err != nil {
			break
		}
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

func TestInvoices(t *testing.T) {
	t.Parallel()
	s := Start(t, nil)
	mug := sku("MUG")
	s.createProduct(t, mug, 1250, 10, "USD")
	end := func() time.Time { return time.Now().Add(30 * time.Second) }

	t.Run("paid: an invoice with the order's lines and its PDF", func(t *testing.T) {
		id := s.placeItems(t, "tok_visa", line(mug, 2))
		s.waitStatus(t, id, "PAID")
		inv, ok := s.waitInvoice(t, id, end(), func(_ gatewayclient.Invoice, ok bool) bool { return ok })
		require.True(t, ok, "the invoice of a PAID order")
		assert.Regexp(t, `^INV-\d{4}-\d{6}$`, inv.Number)
		assert.Equal(t, gatewayclient.InvoiceStatus("ISSUED"), inv.Status)
		assert.Equal(t, int64(2500), inv.Total)
		require.Len(t, inv.Lines, 1)
		assert.Equal(t, "product "+mug, inv.Lines[0].Description, "named as the product")
		assert.Equal(t, mug, *inv.Lines[0].Sku)
		status, ctype, body := s.pdf(t, "/api/invoices/"+inv.Id.String()+"/pdf")
		assert.Equal(t, http.StatusOK, status)
		assert.Equal(t, "application/pdf", ctype)
		assert.True(t, len(body) > 4 && string(body[:4]) == "%PDF", "a PDF")
		_, _, again := s.pdf(t, "/api/invoices/"+inv.Id.String()+"/pdf")
		assert.Equal(t, body, again, "the same bytes every time")
		status, ctype, _ = s.pdf(t, "/api/invoices/"+inv.Id.String()+"/credit-note/pdf")
		assert.Equal(t, http.StatusNotFound, status, "no credit note yet")
		assert.Equal(t, "application/problem+json", ctype)
		byID, err := s.API.GetInvoiceWithResponse(context.Background(), inv.Id)
		require.NoError(t, err)
		expect(t, byID.HTTPResponse, byID.Body, http.StatusOK)
		assert.Equal(t, inv.Number, byID.JSON200.Number)
	})

	t.Run("cancelled after paid: credit note, refund, units back", func(t *testing.T) {
		id := s.placeItems(t, "tok_visa", line(mug, 1))
		s.waitStatus(t, id, "PAID")
		require.Equal(t, http.StatusAccepted, s.cancel(t, id))
		s.waitStatus(t, id, "CANCELLED")
		s.waitPayment(t, id, paymentIs("REFUNDED"))
		inv, ok := s.waitInvoice(t, id, end(), func(inv gatewayclient.Invoice, ok bool) bool { return ok && inv.Status == "CREDITED" })
		require.True(t, ok)
		require.Equal(t, gatewayclient.InvoiceStatus("CREDITED"), inv.Status)
		require.NotNil(t, inv.CreditNote)
		assert.Regexp(t, `^CN-\d{4}-\d{6}$`, inv.CreditNote.Number)
		status, ctype, body := s.pdf(t, "/api/invoices/"+inv.Id.String()+"/credit-note/pdf")
		assert.Equal(t, http.StatusOK, status)
		assert.Equal(t, "application/pdf", ctype)
		assert.Equal(t, "%PDF", string(body[:4]))
		// 10 on hand: 2 sold above, this one's unit back.
		s.stockIs(t, mug, 8)
	})

	t.Run("declined, failed, total-only", func(t *testing.T) {
		declined := s.createOrder(t, totalOrder(uuid.NewString(), 700, "tok_decline"), "")
		failed := s.createOrder(t, totalOrder(uuid.NewString(), 700, "tok_fail"), "")
		jpyOrder, jpyCurrency := totalOrder(uuid.NewString(), 1234, ""), "JPY"
		jpyOrder.Currency = &jpyCurrency
		jpy := s.createOrder(t, jpyOrder, "")
		s.waitStatus(t, declined, "CANCELLED")
		s.waitStatus(t, failed, "FAILED")
		s.waitStatus(t, jpy, "PAID")
		inv, ok := s.waitInvoice(t, jpy, end(), func(_ gatewayclient.Invoice, ok bool) bool { return ok })
		require.True(t, ok)
		require.Len(t, inv.Lines, 1, "a total-only order's invoice has one line")
		assert.Nil(t, inv.Lines[0].Sku)
		assert.Equal(t, int64(1234), inv.Total)
		for _, id := range []string{declined, failed} {
			_, ok := s.waitInvoice(t, id, time.Now(), func(gatewayclient.Invoice, bool) bool { return true })
			assert.False(t, ok, "order %s was never paid: no invoice", id)
		}
	})

	t.Run("a duplicate order.paid: still one invoice", func(t *testing.T) {
		id := s.createOrder(t, totalOrder(uuid.NewString(), 990, ""), "")
		s.waitStatus(t, id, "PAID")
		inv, ok := s.waitInvoice(t, id, end(), func(_ gatewayclient.Invoice, ok bool) bool { return ok })
		require.True(t, ok)
		s.republishOrderPaid(t, inv)
		deadline := end()
		for s.received(t, id, invoiceService, events.TypeOrderPaid) < 2 {
			require.True(t, time.Now().Before(deadline), "invoice-service received the duplicate order.paid")
			time.Sleep(50 * time.Millisecond)
		}
		again, _ := s.waitInvoice(t, id, time.Now(), func(gatewayclient.Invoice, bool) bool { return true })
		assert.Equal(t, inv.Number, again.Number, "the same invoice")
		s.checkNumbering(t)
	})
}

// republishOrderPaid publishes the order.paid of inv's order again, under
// a new message id: a replay the inbox cannot recognise.
func (s *System) republishOrderPaid(t testing.TB, inv gatewayclient.Invoice) {
	t.Helper()
	conn, err := amqp.Dial(s.Broker.AMQPURL)
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	require.NoError(t, ch.Confirm(false))
	msg, err := events.NewMessage(events.OrderPaid{
		OrderOutcome: events.OrderOutcome{OrderID: inv.OrderId, PaymentID: inv.PaymentId, UserID: inv.UserId},
		Total:        inv.Total, Currency: inv.Currency,
	}, inv.OrderId.String())
	require.NoError(t, err)
	dc, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), events.ExchangeOrderEvents, msg.Type, true, false, amqp.Publishing{
		ContentType: "application/json", DeliveryMode: amqp.Persistent, MessageId: msg.ID.String(), Type: msg.Type,
		CorrelationId: inv.OrderId.String(), Timestamp: time.Now(), AppId: "test", Body: msg.Body,
		Headers: amqp.Table{"x-schema-version": int64(1)},
	})
	require.NoError(t, err)
	require.True(t, dc.Wait(), "broker confirmed the duplicate")
}
