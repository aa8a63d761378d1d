package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/gatewayclient"
)

// The tests call the gateway as any client of its API does through
// libs/gatewayclient, the client generated from its OpenAPI document
// (s.API). Raw net/http (s.Do, s.call, request, s.pdf, the stream and
// console tests) remains where a test checks the wire itself, which a
// typed client cannot or must not send or hide: malformed or unknown JSON,
// bad query strings and path ids, exact headers and the problem+json of
// refused input, Server-Sent Events, and PDFs as bytes.

// apiTimeout bounds one call of the generated client. The calls use
// context.Background(), not t.Context(): some run in goroutines a test's
// cleanup stops, after t.Context() is cancelled.
const apiTimeout = 15 * time.Second

// newAPI is the generated client of the gateway at url.
func newAPI(t testing.TB, url string) *gatewayclient.ClientWithResponses {
	t.Helper()
	c, err := gatewayclient.NewClientWithResponses(url, gatewayclient.WithHTTPClient(&http.Client{Timeout: apiTimeout}))
	require.NoError(t, err, "gateway client of %s", url)
	return c
}

// expect fails t unless an answer of the generated client (its
// HTTPResponse and Body) has the status want; the message carries its
// problem's detail.
func expect(t testing.TB, resp *http.Response, body []byte, want int) {
	t.Helper()
	require.NoError(t, gatewayclient.Check(resp, body, want))
}

// uuidOf is the UUID of an id the tests hold as a string.
func uuidOf(t testing.TB, s string) uuid.UUID {
	t.Helper()
	u, err := uuid.Parse(s)
	require.NoError(t, err, "id %q", s)
	return u
}

// totalOrder is an order of user for total, paid with method ("" for the
// default card), in the default currency.
func totalOrder(user string, total int64, method string) gatewayclient.NewOrder {
	id := uuid.MustParse(user)
	o := gatewayclient.NewOrder{UserId: &id, Total: &total}
	if method != "" {
		o.PaymentMethod = &method
	}
	return o
}
