package invoice

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pdfText extracts the text of a PDF with pdftotext (Debian's
// poppler-utils, which scripts/ensure-infra.sh installs): without it the
// test is skipped, or fails when CI is set.
func pdfText(t testing.TB, pdf []byte) string {
	t.Helper()
	bin, err := exec.LookPath("pdftotext")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("pdftotext is missing (poppler-utils; scripts/ensure-infra.sh installs it)")
		}
		t.Skip("pdftotext is missing (poppler-utils; scripts/ensure-infra.sh installs it)")
	}
	cmd := exec.Command(bin, "-layout", "-", "-")
	cmd.Stdin = bytes.NewReader(pdf)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "pdftotext: %s", stderr.String())
	return string(out)
}

func TestRenderPDF(t *testing.T) {
	t.Parallel()
	seller := Seller{Name: "Acme Trading", Address: "1 Example Street; 12345 Example City"}
	mug, cap := "DEMO-MUG", "DEMO-CAP"
	at := time.Date(2026, 12, 6, 10, 11, 12, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		doc   Document
		wants []string
	}{
		{"an invoice with items, 2 decimals", Document{
			Title: "Invoice", Number: "INV-2026-000042", IssuedAt: at, OrderID: "0b6f8a52-8a0e-4c3e-9d2c-6a8f5b1e7c11",
			Customer: "1c9d6f0e-2b7a-4f3e-8d5c-9a1b2c3d4e5f", PaymentID: "2d8e7f1a-3c4b-4d5e-9f6a-7b8c9d0e1f2a", Currency: "USD",
			Lines: []Line{
				{Description: "Mug", SKU: &mug, Quantity: 2, UnitPrice: 1250, Amount: 2500},
				{Description: "Café cap", SKU: &cap, Quantity: 1, UnitPrice: 999, Amount: 999},
			},
			Total: 3499,
		}, []string{"Acme Trading", "12345 Example City", "Invoice INV-2026-000042", "2026-12-06",
			"0b6f8a52-8a0e-4c3e-9d2c-6a8f5b1e7c11", "1c9d6f0e-2b7a-4f3e-8d5c-9a1b2c3d4e5f", "2d8e7f1a-3c4b-4d5e-9f6a-7b8c9d0e1f2a",
			"Mug (DEMO-MUG)", "12.50 USD", "25.00 USD", "Café cap (DEMO-CAP)", "9.99 USD", "34.99 USD"}},
		{"a total-only invoice, 0 decimals", Document{
			Title: "Invoice", Number: "INV-2026-000007", IssuedAt: at, OrderID: "o-1", Customer: "u-1", PaymentID: "p-1",
			Currency: "JPY", Lines: []Line{{Description: "Order o-1", Quantity: 1, UnitPrice: 1234, Amount: 1234}}, Total: 1234,
		}, []string{"INV-2026-000007", "Order o-1", "1234 JPY"}},
		{"a credit note, 3 decimals", Document{
			Title: "Credit note", Number: "CN-2026-000003", Refers: "INV-2026-000007", IssuedAt: at, OrderID: "o-2",
			Customer: "u-2", PaymentID: "p-2", Currency: "BHD",
			Lines: []Line{{Description: "Order o-2", Quantity: 1, UnitPrice: 1234, Amount: 1234}}, Total: 1234,
		}, []string{"Credit note CN-2026-000003", "Credits invoice:", "INV-2026-000007", "Total credited", "1.234 BHD"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pdf, err := RenderPDF(tc.doc, seller)
			require.NoError(t, err)
			text := pdfText(t, pdf)
			for _, want := range tc.wants {
				assert.Contains(t, text, want, "the PDF's text")
			}
			again, err := RenderPDF(tc.doc, seller)
			require.NoError(t, err)
			assert.Equal(t, pdf, again, "rendering is deterministic")
			assert.False(t, strings.Contains(text, "\ufffd"), "every character rendered")
		})
	}
}
