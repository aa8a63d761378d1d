package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
)

// maxPDF bounds an attachment read from invoice-service.
const maxPDF = 16 << 20

// Documents fetches the PDFs that e-mails attach, by reference, from
// invoice-service (INVOICE_SERVICE_URL, contract §6). Every failure is
// transient: the e-mail waits and tries again.
type Documents struct {
	base   string
	client *http.Client
}

// NewDocuments returns the fetcher of invoice-service at base, each fetch
// bounded by timeout.
func NewDocuments(base string, timeout time.Duration) *Documents {
	return &Documents{base: strings.TrimRight(base, "/"), client: &http.Client{Timeout: timeout}}
}

// Fetch returns the PDF of an invoice (AttachInvoice) or of its credit
// note (AttachCreditNote).
func (d *Documents) Fetch(ctx context.Context, which string, invoiceID uuid.UUID) ([]byte, error) {
	path := "/api/invoices/" + invoiceID.String() + "/pdf"
	if which == AttachCreditNote {
		path = "/api/invoices/" + invoiceID.String() + "/credit-note/pdf"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/pdf")
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch %s: %s", path, resp.Status)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/pdf" {
		return nil, fmt.Errorf("fetch %s: Content-Type %q, want application/pdf", path, mt)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPDF+1))
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", path, err)
	}
	if len(body) > maxPDF {
		return nil, fmt.Errorf("fetch %s: over %d bytes", path, maxPDF)
	}
	if !strings.HasPrefix(string(body[:min(len(body), 5)]), "%PDF-") {
		return nil, errors.New("fetch " + path + ": not a PDF")
	}
	return body, nil
}
