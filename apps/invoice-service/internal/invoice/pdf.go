package invoice

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"

	"codeberg.org/go-pdf/fpdf"
)

// Seller is who issues the documents: its name and postal address (lines
// separated by ;), printed at the top of every one.
type Seller struct {
	Name    string
	Address string
}

// Document is what a PDF shows: an invoice, or a credit note when Refers
// names the invoice it credits (its amounts are those of the invoice,
// credited in full).
type Document struct {
	Title     string // "Invoice" or "Credit note"
	Number    string
	IssuedAt  time.Time
	Refers    string // the credited invoice's number; "" for an invoice
	OrderID   string
	Customer  string
	PaymentID string
	Currency  string
	Lines     []Line
	Total     int64
}

// RenderPDF renders d as issued by seller. The result depends on its
// arguments only (creation date = the issue date, the catalogue sorted, no
// random id), though it is rendered once, when the document is issued, and
// its bytes stored: a later version of the library or of this layout
// never changes a document already issued.
func RenderPDF(d Document, seller Seller) ([]byte, error) {
	f := fpdf.New("P", "mm", "A4", "")
	f.SetCatalogSort(true)
	f.SetCreationDate(d.IssuedAt.UTC())
	f.SetModificationDate(d.IssuedAt.UTC())
	f.SetTitle(d.Title+" "+d.Number, true)
	f.SetAuthor(seller.Name, true)
	f.SetMargins(20, 20, 20)
	f.AddPage()
	tr := f.UnicodeTranslatorFromDescriptor("") // UTF-8 → the core fonts' cp1252

	f.SetFont("Helvetica", "B", 14)
	f.CellFormat(0, 7, tr(seller.Name), "", 1, "L", false, 0, "")
	f.SetFont("Helvetica", "", 10)
	for _, l := range strings.Split(seller.Address, ";") {
		f.CellFormat(0, 5, tr(strings.TrimSpace(l)), "", 1, "L", false, 0, "")
	}
	f.Ln(8)
	f.SetFont("Helvetica", "B", 18)
	f.CellFormat(0, 10, tr(d.Title+" "+d.Number), "", 1, "L", false, 0, "")
	f.SetFont("Helvetica", "", 10)
	field := func(label, value string) {
		f.CellFormat(35, 6, tr(label), "", 0, "L", false, 0, "")
		f.CellFormat(0, 6, tr(value), "", 1, "L", false, 0, "")
	}
	field("Date:", d.IssuedAt.UTC().Format("2006-01-02"))
	if d.Refers != "" {
		field("Credits invoice:", d.Refers)
	}
	field("Order:", d.OrderID)
	field("Customer:", d.Customer)
	field("Payment:", d.PaymentID)
	f.Ln(6)
	lineTable(f, tr, d)
	if f.Err() {
		return nil, fmt.Errorf("render %s: %w", d.Number, f.Error())
	}
	var b bytes.Buffer
	if err := f.Output(&b); err != nil {
		return nil, fmt.Errorf("render %s: %w", d.Number, err)
	}
	return b.Bytes(), nil
}

// lineTable writes d's lines and its total.
func lineTable(f *fpdf.Fpdf, tr func(string) string, d Document) {
	widths := []float64{80, 20, 35, 35}
	head := []string{"Description", "Quantity", "Unit price", "Amount"}
	f.SetFont("Helvetica", "B", 10)
	for i, h := range head {
		align := "R"
		if i == 0 {
			align = "L"
		}
		f.CellFormat(widths[i], 7, h, "B", 0, align, false, 0, "")
	}
	f.Ln(-1)
	f.SetFont("Helvetica", "", 10)
	for _, l := range d.Lines {
		desc := l.Description
		if l.SKU != nil {
			desc += " (" + *l.SKU + ")"
		}
		f.CellFormat(widths[0], 6, tr(desc), "", 0, "L", false, 0, "")
		f.CellFormat(widths[1], 6, strconv.FormatInt(l.Quantity, 10), "", 0, "R", false, 0, "")
		f.CellFormat(widths[2], 6, FormatAmount(l.UnitPrice, d.Currency), "", 0, "R", false, 0, "")
		f.CellFormat(widths[3], 6, FormatAmount(l.Amount, d.Currency), "", 1, "R", false, 0, "")
	}
	f.SetFont("Helvetica", "B", 11)
	label := "Total"
	if d.Refers != "" {
		label = "Total credited"
	}
	f.CellFormat(widths[0]+widths[1]+widths[2], 8, label, "T", 0, "L", false, 0, "")
	f.CellFormat(widths[3], 8, FormatAmount(d.Total, d.Currency), "T", 1, "R", false, 0, "")
}
