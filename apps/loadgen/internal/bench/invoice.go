package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/google/uuid"

	"github.com/ordersaga/ordersaga/libs/gatewayclient"
)

// PDFSamples is how many invoices' PDFs the invoice-backlog step fetches.
const PDFSamples = 5

// InvoiceBacklog is the drain of invoices queued while invoice-service
// was stopped: its invoices/s is invoice-service's saturation.
type InvoiceBacklog struct {
	// Orders are the orders paid while it was stopped.
	Orders       int     `json:"orders"`
	PostSeconds  float64 `json:"post_seconds"`
	ReadySeconds float64 `json:"invoice_service_ready_seconds"`
	// DrainSeconds runs from invoice-service's start (exec) to the last
	// invoice.issued.
	DrainSeconds float64 `json:"drain_seconds"`
	DrainPerSec  float64 `json:"drain_invoices_per_sec"`
	PDF          *PDFs   `json:"pdf,omitempty"`
}

// PDFs are a few invoices' PDFs, each fetched twice from invoice-service
// after the drain: the first fetch renders and stores it, the second reads
// what was stored.
type PDFs struct {
	Fetched      int     `json:"fetched"`
	SizeP50Bytes int     `json:"size_p50_bytes"`
	SizeMaxBytes int     `json:"size_max_bytes"`
	First        Latency `json:"first_fetch"`
	Second       Latency `json:"second_fetch"`
}

// invoiceBacklogStep stops invoice-service, has the saga pay orders
// meanwhile (their order.paid queue for it), then starts it and times the
// drain; then it fetches a few of the PDFs.
func (b *bencher) invoiceBacklogStep(ctx context.Context) (Step, error) {
	n := b.o.InvoiceBacklog
	name := fmt.Sprintf("invoice-backlog-%d", n)
	rec, posted, err := b.queueBacklog(ctx, name, InvoiceService, n)
	if err != nil {
		return Step{}, err
	}
	start := time.Now().Add(-posted)
	rec.WaitFinal(ctx, time.Now().Add(max(b.o.SagaTimeout, 10*time.Minute)))
	sagas := rec.LastFinal().Sub(start)
	b.say("%s: %d POSTed in %.1fs, final in %.1fs; starting invoice-service", name, n, posted.Seconds(), sagas.Seconds())
	d, err := b.drain(ctx, InvoiceService, rec.WaitInvoices)
	if err != nil {
		return Step{}, err
	}
	rec.Close()
	counts, post, final, _ := rec.Snapshot()
	drain := rec.LastInvoice().Sub(d.started)
	inv := rec.InvoiceSnapshot(drain.Seconds())
	s := Step{
		Name: name, Kind: KindInvoiceBacklog, PaymentLatency: "0s", WindowSec: sagas.Seconds(), Counts: counts,
		Post: post, Final: final, Memory: d.mem, FirstErrors: b.load.errs.list(),
		CPU: b.acct.Between(d.before, d.after, inv.Invoiced), Invoices: inv,
		InvoiceBacklog: &InvoiceBacklog{
			Orders: inv.Paid, PostSeconds: posted.Seconds(), ReadySeconds: d.ready.Seconds(),
			DrainSeconds: drain.Seconds(), DrainPerSec: inv.PerSec,
		},
		Notes: []string{"its CPU is per invoice issued during the drain, not per saga"},
	}
	if sagas > 0 {
		s.SagasPerSec = float64(counts.WindowFinals) / sagas.Seconds()
	}
	b.load.errs = &errorLog{}
	ids := rec.InvoiceIDs()
	pdf, err := b.fetchPDFs(ctx, ids[:min(len(ids), PDFSamples)])
	if err != nil {
		s.Notes = append(s.Notes, "PDFs: "+err.Error())
	}
	s.InvoiceBacklog.PDF = pdf
	return s, ctx.Err()
}

// fetchPDFs fetches each invoice's PDF twice from invoice-service, timing
// each fetch to the last byte, and checks that both are the same PDF.
func (b *bencher) fetchPDFs(ctx context.Context, ids []string) (*PDFs, error) {
	if len(ids) == 0 {
		return nil, fmt.Errorf("no invoice to fetch")
	}
	api, err := gatewayclient.NewClientWithResponses(b.o.Endpoints.Invoice, gatewayclient.WithHTTPClient(b.load.poster.client))
	if err != nil {
		return nil, fmt.Errorf("invoice client of %s: %w", b.o.Endpoints.Invoice, err)
	}
	first, second := newHistogram(), newHistogram()
	var sizes []int
	for _, raw := range ids {
		id, err := uuid.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("invoice id %q: %w", raw, err)
		}
		var pdfs [2][]byte
		for i, h := range []*hdrhistogram.Histogram{first, second} {
			t0 := time.Now()
			if pdfs[i], err = fetchPDF(ctx, api, id); err != nil {
				return nil, err
			}
			record(h, time.Since(t0))
		}
		if !bytes.Equal(pdfs[0], pdfs[1]) {
			return nil, fmt.Errorf("invoice %s: the second fetch's PDF differs from the first", id)
		}
		sizes = append(sizes, len(pdfs[0]))
	}
	slices.Sort(sizes)
	return &PDFs{Fetched: len(sizes), SizeP50Bytes: sizes[(len(sizes)-1)/2], SizeMaxBytes: sizes[len(sizes)-1],
		First: Summarize(first), Second: Summarize(second)}, nil
}

// fetchPDF gets one invoice's PDF: 200, and a PDF.
func fetchPDF(ctx context.Context, api *gatewayclient.ClientWithResponses, id uuid.UUID) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := api.GetInvoicePDFWithResponse(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("GET /api/invoices/%s/pdf: %w", id, err)
	}
	if err := gatewayclient.Check(resp.HTTPResponse, resp.Body, http.StatusOK); err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(resp.Body, []byte("%PDF-")) {
		return nil, fmt.Errorf("GET /api/invoices/%s/pdf: not a PDF: %.20q", id, resp.Body)
	}
	return resp.Body, nil
}
