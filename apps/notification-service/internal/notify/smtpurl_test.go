package notify

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSMTPURL(t *testing.T) {
	t.Parallel()
	ok := []struct {
		url  string
		want SMTPOptions
	}{
		{"smtp://127.0.0.1:1025", SMTPOptions{Host: "127.0.0.1", Port: 1025, TLS: "opportunistic"}},
		{"smtp://mail.example.org", SMTPOptions{Host: "mail.example.org", Port: 25, TLS: "opportunistic"}},
		{"smtp://u:p%40ss@mail.example.org:587?starttls=required", SMTPOptions{Host: "mail.example.org", Port: 587, TLS: "required", Username: "u", Password: "p@ss", Auth: "AUTODISCOVER"}},
		{"smtp://u:p@mail.example.org:587?starttls=required&auth=plain&helo=shop.example.org", SMTPOptions{Host: "mail.example.org", Port: 587, TLS: "required", Username: "u", Password: "p", Auth: "PLAIN", HELO: "shop.example.org"}},
		{"smtps://mail.example.org?tls_insecure=true", SMTPOptions{Host: "mail.example.org", Port: 465, TLS: "implicit", Insecure: true}},
		{"smtp://localhost:2525?starttls=none", SMTPOptions{Host: "localhost", Port: 2525, TLS: "none"}},
	}
	for _, c := range ok {
		got, err := ParseSMTPURL(c.url)
		require.NoError(t, err, c.url)
		assert.Equal(t, c.want, got, c.url)
	}
	for _, bad := range []string{
		"http://mail.example.org", "smtp://", "smtp://h:0", "smtp://h:99999", "smtp://h?starttls=maybe",
		"smtps://h?starttls=required", "smtp://h?auth=plain", "smtp://u:p@h?auth=magic", "smtp://h?tls=1",
		"smtp://h?tls_insecure=perhaps",
	} {
		_, err := ParseSMTPURL(bad)
		assert.Error(t, err, bad)
	}
	_, err := ParseSMTPURL("smtp://user:secret@h?auth=magic")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "secret", "a password never reaches an error")
}

func TestFormatAmount(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		minor    int64
		currency string
		want     string
	}{
		{1234, "USD", "12.34 USD"}, {5, "EUR", "0.05 EUR"}, {1234, "JPY", "1234 JPY"}, {1234, "BHD", "1.234 BHD"}, {-150, "USD", "-1.50 USD"},
	} {
		assert.Equal(t, c.want, FormatAmount(c.minor, c.currency))
	}
}

func TestMessageIDIsStablePerOrderAndKind(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "0b6f7c1e-0000-4000-8000-000000000001.ORDER_CONFIRMED@ordersaga.local",
		MessageID("0b6f7c1e-0000-4000-8000-000000000001", KindOrderConfirmed))
	m, err := Build("ordersaga <no-reply@ordersaga.local>", Email{To: "a@example.org", Kind: KindPaymentFailed, OrderID: "o", Subject: "s"})
	require.NoError(t, err)
	assert.Equal(t, []string{"<o.PAYMENT_FAILED@ordersaga.local>"}, m.GetGenHeader("Message-ID"))
}
