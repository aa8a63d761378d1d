package invoice

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/db"
	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/postgres/pgtest"
	"github.com/ordersaga/ordersaga/libs/uow"
	"github.com/ordersaga/ordersaga/libs/uow/uowtest"
)

// harness is the invoice service over a fresh database; it runs each
// handler in a unit of work of its own, as a consumer does.
type harness struct {
	*Service
	runner *uow.Runner
	pool   *pgxpool.Pool
}

func newService(t testing.TB) *harness {
	t.Helper()
	pool := pgtest.Pool(t, 32, db.Messaging(), Schema())
	log := slog.New(slog.DiscardHandler)
	runner := uow.NewRunner(pool, nil, prometheus.NewRegistry())
	return &harness{Service: NewService(runner, log, Seller{Name: "Test Seller", Address: "Street 1"}), runner: runner, pool: pool}
}

func (h *harness) paid(t testing.TB, e events.OrderPaid) error {
	t.Helper()
	return h.runner.InTx(context.Background(), func(ctx context.Context, tx *uow.Tx) error { return h.orderPaid(ctx, tx, &e) })
}

func (h *harness) cancelled(t testing.TB, e events.OrderCancelled) error {
	t.Helper()
	return h.runner.InTx(context.Background(), func(ctx context.Context, tx *uow.Tx) error { return h.orderCancelled(ctx, tx, &e) })
}

func paidEvent(total int64, currency string, items ...events.PaidLine) events.OrderPaid {
	return events.OrderPaid{
		OrderOutcome: events.OrderOutcome{OrderID: uuid.New(), PaymentID: uuid.New(), UserID: uuid.New()},
		Total:        total, Currency: currency, Items: items,
	}
}

func cancelOf(e events.OrderPaid) events.OrderCancelled {
	return events.OrderCancelled{OrderID: e.OrderID, Reason: events.ReasonUserRequested, PreviousStatus: events.StatusPaid, UserID: e.UserID}
}

func TestInvoiceOfAPaidOrder(t *testing.T) {
	t.Parallel()
	h := newService(t)
	ctx := context.Background()
	year := time.Now().UTC().Year()

	withItems := paidEvent(3499, "USD", events.PaidLine{SKU: "MUG", Name: "Mug", Quantity: 2, UnitPrice: 1250},
		events.PaidLine{SKU: "CAP", Quantity: 1, UnitPrice: 999})
	require.NoError(t, h.paid(t, withItems))
	require.NoError(t, h.paid(t, withItems), "a duplicate order.paid changes nothing")
	inv, err := h.OfOrder(ctx, withItems.OrderID)
	require.NoError(t, err)
	mug, cap := "MUG", "CAP"
	assert.Equal(t, Number("INV", year, 1), inv.Number)
	assert.Equal(t, Issued, inv.Status)
	assert.Equal(t, []Line{{Description: "Mug", SKU: &mug, Quantity: 2, UnitPrice: 1250, Amount: 2500},
		{Description: "CAP", SKU: &cap, Quantity: 1, UnitPrice: 999, Amount: 999}}, inv.Lines, "a line without a name is described by its sku")
	assert.Equal(t, int64(3499), inv.Total)
	assert.Equal(t, withItems.PaymentID, inv.PaymentID)
	assert.Nil(t, inv.CreditNote)
	assert.Equal(t, []string{events.TypeInvoiceIssued}, uowtest.Emitted(t, h.pool, withItems.OrderID.String()), "one invoice.issued")

	totalOnly := paidEvent(1234, "JPY")
	require.NoError(t, h.paid(t, totalOnly))
	inv2, err := h.OfOrder(ctx, totalOnly.OrderID)
	require.NoError(t, err)
	assert.Equal(t, Number("INV", year, 2), inv2.Number)
	require.Len(t, inv2.Lines, 1, "a total-only order's invoice has one line")
	assert.Nil(t, inv2.Lines[0].SKU)
	assert.Equal(t, int64(1234), inv2.Lines[0].Amount)

	pdf, err := h.PDF(ctx, inv2.ID)
	require.NoError(t, err)
	text := pdfText(t, pdf)
	assert.Contains(t, text, inv2.Number)
	assert.Contains(t, text, totalOnly.OrderID.String())
	assert.Contains(t, text, "1234 JPY")
	again, err := h.PDF(ctx, inv2.ID)
	require.NoError(t, err)
	assert.Equal(t, pdf, again, "the same bytes every time")
	_, err = h.CreditNotePDF(ctx, inv2.ID)
	assert.ErrorIs(t, err, ErrNoCreditNote)

	list, total, err := h.List(ctx, Filter{}, 10, 0)
	require.NoError(t, err)
	assert.Equal(t, int64(2), total)
	assert.Equal(t, []string{inv2.Number, inv.Number}, []string{list[0].Number, list[1].Number}, "newest first")
}

func TestCreditNotes(t *testing.T) {
	t.Parallel()
	h := newService(t)
	ctx := context.Background()
	year := time.Now().UTC().Year()

	t.Run("cancelled after paid", func(t *testing.T) {
		e := paidEvent(500, "BHD")
		require.NoError(t, h.paid(t, e))
		require.NoError(t, h.cancelled(t, cancelOf(e)))
		require.NoError(t, h.cancelled(t, cancelOf(e)), "a second cancellation changes nothing")
		inv, err := h.OfOrder(ctx, e.OrderID)
		require.NoError(t, err)
		assert.Equal(t, Credited, inv.Status)
		require.NotNil(t, inv.CreditNote)
		assert.Regexp(t, fmt.Sprintf(`^CN-%d-\d{6}$`, year), inv.CreditNote.Number)
		assert.Equal(t, []string{events.TypeInvoiceIssued, events.TypeInvoiceCredited}, uowtest.Emitted(t, h.pool, e.OrderID.String()))
		pdf, err := h.CreditNotePDF(ctx, inv.ID)
		require.NoError(t, err)
		text := pdfText(t, pdf)
		assert.Contains(t, text, inv.CreditNote.Number)
		assert.Contains(t, text, inv.Number, "the credit note refers to its invoice")
		assert.Contains(t, text, "0.500 BHD")
	})
	t.Run("cancelled before its order.paid came", func(t *testing.T) {
		e := paidEvent(700, "USD")
		require.NoError(t, h.cancelled(t, cancelOf(e)))
		_, err := h.OfOrder(ctx, e.OrderID)
		assert.ErrorIs(t, err, ErrNotFound, "nothing issued yet")
		require.NoError(t, h.paid(t, e))
		inv, err := h.OfOrder(ctx, e.OrderID)
		require.NoError(t, err)
		assert.Equal(t, Credited, inv.Status, "both documents issued when order.paid came")
		assert.NotNil(t, inv.CreditNote)
		assert.Equal(t, []string{events.TypeInvoiceIssued, events.TypeInvoiceCredited}, uowtest.Emitted(t, h.pool, e.OrderID.String()))
	})
	t.Run("cancelled before it was paid: nothing", func(t *testing.T) {
		e := paidEvent(700, "USD")
		c := cancelOf(e)
		c.PreviousStatus = events.StatusPendingPayment
		require.NoError(t, h.cancelled(t, c))
		_, err := h.OfOrder(ctx, e.OrderID)
		assert.ErrorIs(t, err, ErrNotFound)
		assert.Empty(t, uowtest.Emitted(t, h.pool, e.OrderID.String()))
	})
}

// TestNumbersAreGaplessUnderConcurrency: many orders paid at once, each
// twice, some handlers failing after they took their number, in one
// database: the committed numbers are 1..N, one invoice per order, and
// issuedAt grows with the number.
func TestNumbersAreGaplessUnderConcurrency(t *testing.T) {
	t.Parallel()
	h := newService(t)
	const orders = 60
	paid := make([]events.OrderPaid, orders)
	for i := range paid {
		paid[i] = paidEvent(int64(100+i), "EUR")
	}
	var wg sync.WaitGroup
	errFailed := errors.New("fails after its number was taken")
	for i := range 2 * orders {
		wg.Go(func() {
			e := paid[i%orders]
			err := h.runner.InTx(context.Background(), func(ctx context.Context, tx *uow.Tx) error {
				if err := h.orderPaid(ctx, tx, &e); err != nil {
					return err
				}
				if i%7 == 0 {
					return errFailed // rolled back: its number is given back
				}
				return nil
			})
			if errors.Is(err, errFailed) {
				err = h.paid(t, e) // handled again, as a redelivery would
			}
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	list, total, err := h.List(context.Background(), Filter{}, 100, 0)
	require.NoError(t, err)
	require.Equal(t, int64(orders), total, "one invoice per order")
	sort.Slice(list, func(i, j int) bool { return list[i].Number < list[j].Number })
	year := time.Now().UTC().Year()
	for i, inv := range list {
		assert.Equal(t, Number("INV", year, int64(i+1)), inv.Number, "numbers 1..N")
		if i > 0 {
			assert.True(t, inv.IssuedAt.After(list[i-1].IssuedAt), "%s issued after %s", inv.Number, list[i-1].Number)
		}
	}
}
