package notify

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"strconv"
	"strings"
	texttemplate "text/template"

	"github.com/wneessen/go-mail"
	"golang.org/x/text/currency"
)

//go:embed templates
var templateFS embed.FS

var (
	textTemplates = texttemplate.Must(texttemplate.ParseFS(templateFS, "templates/*.txt"))
	htmlTemplates = htmltemplate.Must(htmltemplate.ParseFS(templateFS, "templates/*.html"))
)

// Facts are what the triggering event told about the e-mail's order: what
// its subject and body say. They are stored with the record, so the e-mail
// sent after a retry or a restart is the one decided at consumption.
type Facts struct {
	Number           string `json:"number,omitempty"`
	CreditNoteNumber string `json:"creditNoteNumber,omitempty"`
	Total            int64  `json:"total,omitempty"`
	Currency         string `json:"currency,omitempty"`
	Reason           string `json:"reason,omitempty"`
}

// view is what the templates see.
type view struct {
	Subject, Name, OrderID, Number, CreditNoteNumber, Total, Reason string
}

// Subject is the subject line of an e-mail of kind about order.
func Subject(kind, orderID string, f Facts) string {
	short := orderID
	if len(short) > 8 {
		short = short[:8]
	}
	switch kind {
	case KindOrderConfirmed:
		return fmt.Sprintf("Order %s confirmed — invoice %s", short, f.Number)
	case KindOrderCancelled:
		if f.CreditNoteNumber != "" {
			return fmt.Sprintf("Order %s cancelled — credit note %s", short, f.CreditNoteNumber)
		}
		return fmt.Sprintf("Order %s cancelled", short)
	default:
		return fmt.Sprintf("Payment for order %s failed", short)
	}
}

// MessageID is the stable Message-ID of the e-mail of kind about an order
// (without angle brackets): a resend after a crash carries the same one, so
// a mailbox can tell it is the same e-mail (contract §8).
func MessageID(orderID, kind string) string { return orderID + "." + kind + "@ordersaga.local" }

// Email is one e-mail ready to be built: a record and its attachment.
type Email struct {
	To, Name, Kind, OrderID, Subject string
	Facts                            Facts
	AttachmentName                   string
	Attachment                       []byte
}

// Build renders e as a MIME message from from: the plain-text and HTML
// parts from the kind's templates, the PDF attached if any, and its stable
// Message-ID.
func Build(from string, e Email) (*mail.Msg, error) {
	m := mail.NewMsg()
	if err := m.From(from); err != nil {
		return nil, fmt.Errorf("MAIL_FROM %q: %w", from, err)
	}
	if err := m.AddToFormat(e.Name, e.To); err != nil {
		return nil, fmt.Errorf("recipient %q: %w", e.To, err)
	}
	m.Subject(e.Subject)
	m.SetMessageIDWithValue(MessageID(e.OrderID, e.Kind))
	m.SetDate()
	v := view{
		Subject: e.Subject, Name: cmpName(e.Name), OrderID: e.OrderID, Number: e.Facts.Number,
		CreditNoteNumber: e.Facts.CreditNoteNumber, Reason: e.Facts.Reason,
		Total: FormatAmount(e.Facts.Total, e.Facts.Currency),
	}
	var text bytes.Buffer
	if err := textTemplates.ExecuteTemplate(&text, e.Kind+".txt", v); err != nil {
		return nil, err
	}
	var html bytes.Buffer
	if err := htmlTemplates.ExecuteTemplate(&html, e.Kind+".html", v); err != nil {
		return nil, err
	}
	m.SetBodyString(mail.TypeTextPlain, text.String())
	m.AddAlternativeString(mail.TypeTextHTML, html.String())
	if e.Attachment != nil {
		if err := m.AttachReader(e.AttachmentName, bytes.NewReader(e.Attachment),
			mail.WithFileContentType(mail.ContentType("application/pdf"))); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func cmpName(name string) string {
	if strings.TrimSpace(name) == "" {
		return "customer"
	}
	return name
}

// FormatAmount writes minor units with the currency's own number of
// decimals (ISO 4217): 1234 USD is "12.34 USD", 1234 JPY "1234 JPY".
func FormatAmount(minor int64, code string) string {
	if code == "" {
		return strconv.FormatInt(minor, 10)
	}
	scale := 2
	if u, err := currency.ParseISO(code); err == nil {
		scale, _ = currency.Standard.Rounding(u)
	}
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	s := strconv.FormatInt(minor, 10)
	if scale == 0 {
		return sign + s + " " + code
	}
	if len(s) <= scale {
		s = strings.Repeat("0", scale-len(s)+1) + s
	}
	return sign + s[:len(s)-scale] + "." + s[len(s)-scale:] + " " + code
}
