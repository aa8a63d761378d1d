package gateway_test

import (
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/auth"
	"github.com/ordersaga/ordersaga/libs/web"

	"github.com/ordersaga/ordersaga/apps/gateway/internal/gateway"
)

// fakeUsers stands in for users-service: it serves the JWKS of its keys
// (which a test may rotate) and counts the fetches.
type fakeUsers struct {
	*fakeService
	mu      sync.Mutex
	keys    []auth.Key
	fetches atomic.Int32
}

func newKey(t testing.TB) auth.Key {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	return auth.NewKey(priv)
}

func newFakeUsers(t testing.TB, keys ...auth.Key) *fakeUsers {
	t.Helper()
	u := &fakeUsers{keys: keys}
	u.fakeService = newFakeService(t, map[string]http.HandlerFunc{
		"GET /api/auth/jwks.json": func(w http.ResponseWriter, r *http.Request) {
			u.fetches.Add(1)
			u.mu.Lock()
			var pubs []ed25519.PublicKey
			for _, k := range u.keys {
				pubs = append(pubs, k.Public())
			}
			u.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(auth.NewJWKS(pubs...))
		},
		"POST /api/auth/login": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "42")
			answer(http.StatusTooManyRequests, web.ProblemContentType, `{"type":"x","title":"Too Many Requests","status":429,"detail":"slow down"}`)(w, r)
		},
		"GET /api/users": func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") == "" {
				w.Header().Set("WWW-Authenticate", "Bearer")
				answer(http.StatusUnauthorized, web.ProblemContentType, `{"type":"x","title":"Unauthorized","status":401,"detail":"token"}`)(w, r)
				return
			}
			answer(http.StatusOK, "application/json", `{"data":[],"meta":{"page":1,"limit":10,"total":0,"totalPages":0}}`)(w, r)
		},
	})
	return u
}

func (u *fakeUsers) rotate(k auth.Key) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.keys = append([]auth.Key{k}, u.keys...)
}

func token(t testing.TB, k auth.Key, user uuid.UUID, ttl time.Duration, now time.Time, roles ...string) string {
	t.Helper()
	s, err := auth.NewSigner(k, ttl, func() time.Time { return now })
	require.NoError(t, err)
	tok, err := s.Issue(user, roles)
	require.NoError(t, err)
	return tok
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// accessFixture is a gateway with AUTH_MODE=required in front of fake
// services holding one order of customer A and one of customer B.
type accessFixture struct {
	h                     *harness
	users                 *fakeUsers
	orders, notifications *fakeService
	key                   auth.Key
	userA, userB          uuid.UUID
	orderA, orderB        string
	paymentA, paymentB    string
	invoiceA, invoiceB    string
	invoices              *fakeService
	tokenA, tokenB, root  string
}

func newAccessFixture(t *testing.T, refresh time.Duration) *accessFixture {
	t.Helper()
	f := &accessFixture{key: newKey(t), userA: uuid.New(), userB: uuid.New(),
		orderA: newUUID(), orderB: newUUID(), paymentA: newUUID(), paymentB: newUUID(),
		invoiceA: newUUID(), invoiceB: newUUID()}
	f.users = newFakeUsers(t, f.key)
	order := func(id string, user uuid.UUID) http.HandlerFunc {
		return answer(200, "application/json", `{"id":"`+id+`","userId":"`+user.String()+`","total":1,"currency":"USD","status":"PAID","cancelReason":null,"createdAt":"2025-03-01T12:00:00Z","updatedAt":"2025-03-01T12:00:00Z"}`)
	}
	page := answer(200, "application/json", `{"data":[],"meta":{"page":1,"limit":10,"total":0,"totalPages":0}}`)
	payment := func(id, order string) http.HandlerFunc {
		return answer(200, "application/json", `{"id":"`+id+`","orderId":"`+order+`","amount":1,"currency":"USD","status":"APPROVED","reason":null,"createdAt":"2025-03-01T12:00:00Z","updatedAt":"2025-03-01T12:00:00Z"}`)
	}
	f.orders = newFakeService(t, map[string]http.HandlerFunc{
		"GET /api/orders":               page,
		"GET /api/orders/" + f.orderA:   order(f.orderA, f.userA),
		"GET /api/orders/" + f.orderB:   order(f.orderB, f.userB),
		"GET /api/orders/{id}":          answer(404, web.ProblemContentType, `{"type":"x","title":"Not Found","status":404,"detail":"not found"}`),
		"GET /api/orders/{id}/timeline": answer(200, "application/json", `{"events":[]}`),
	})
	payments := newFakeService(t, map[string]http.HandlerFunc{
		"GET /api/payments":                     page,
		"GET /api/payments/stats":               answer(200, "application/json", `{"byStatus":[]}`),
		"GET /api/payments/" + f.paymentA:       payment(f.paymentA, f.orderA),
		"GET /api/payments/" + f.paymentB:       payment(f.paymentB, f.orderB),
		"GET /api/payments/order/{id}":          payment(f.paymentA, f.orderA),
		"GET /api/payments/order/{id}/timeline": answer(200, "application/json", `{"events":[]}`),
	})
	invoice := func(id, order string, user uuid.UUID) string {
		return `{"id":"` + id + `","number":"INV-2026-000001","orderId":"` + order + `","userId":"` + user.String() +
			`","paymentId":"` + newUUID() + `","currency":"USD","lines":[],"total":1,"status":"ISSUED","issuedAt":"2025-03-01T12:00:00Z","creditNote":null}`
	}
	f.invoices = newFakeService(t, map[string]http.HandlerFunc{
		"GET /api/invoices":                        page,
		"GET /api/invoices/" + f.invoiceA:          answer(200, "application/json", invoice(f.invoiceA, f.orderA, f.userA)),
		"GET /api/invoices/" + f.invoiceB:          answer(200, "application/json", invoice(f.invoiceB, f.orderB, f.userB)),
		"GET /api/invoices/" + f.invoiceA + "/pdf": answer(200, "application/pdf", "%PDF-1.3 A"),
		"GET /api/invoices/" + f.invoiceB + "/pdf": answer(200, "application/pdf", "%PDF-1.3 B"),
		"GET /api/invoices/{id}":                   answer(404, web.ProblemContentType, `{"type":"x","title":"Not Found","status":404,"detail":"invoice not found"}`),
		"GET /api/invoices/{id}/credit-note/pdf":   answer(404, web.ProblemContentType, `{"type":"x","title":"Not Found","status":404,"detail":"no credit note"}`),
		"GET /api/invoices/order/{id}":             answer(200, "application/json", invoice(f.invoiceA, f.orderA, f.userA)),
		"GET /api/invoices/order/{id}/timeline":    answer(200, "application/json", `{"events":[]}`),
	})
	f.notifications = newFakeService(t, map[string]http.HandlerFunc{"GET /api/notifications": page})
	f.h = startGatewayWith(t, gateway.Options{
		Participants: []gateway.Participant{participantAt(t, gateway.OrderService, f.orders.URL), participantAt(t, gateway.PaymentService, payments.URL),
			participantAt(t, gateway.InvoiceService, f.invoices.URL), participantAt(t, gateway.NotificationService, f.notifications.URL)},
		Auth: gateway.AuthOptions{Mode: gateway.AuthRequired, UsersURL: f.users.URL, KeyRefresh: refresh},
	})
	now := time.Now()
	f.tokenA = token(t, f.key, f.userA, time.Hour, now, auth.RoleCustomer)
	f.tokenB = token(t, f.key, f.userB, time.Hour, now, auth.RoleCustomer)
	f.root = token(t, f.key, uuid.New(), time.Hour, now, auth.RoleAdmin, auth.RoleCustomer)
	return f
}

func TestRequiredModeNeedsAValidToken(t *testing.T) {
	t.Parallel()
	f := newAccessFixture(t, time.Hour)
	user := uuid.New()
	other := newKey(t)
	cases := []struct {
		name   string
		header http.Header
	}{
		{"no Authorization header", nil},
		{"another scheme", http.Header{"Authorization": {"Basic dXNlcjpwYXNzd29yZA=="}}},
		{"not a JWT", bearer("garbage")},
		{"expired", bearer(token(t, f.key, user, time.Minute, time.Now().Add(-2*time.Minute), auth.RoleCustomer))},
		{"signed by another key", bearer(token(t, other, user, time.Minute, time.Now(), auth.RoleAdmin))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, f.h.URL, request{method: http.MethodGet, path: "/api/orders", headers: tc.header})
			assertProblem(t, resp, body, http.StatusUnauthorized)
			assert.Equal(t, "Bearer", resp.Header.Get("WWW-Authenticate"))
		})
	}
	resp, body := do(t, f.h.URL, request{method: http.MethodGet, path: "/api/orders", headers: bearer(f.tokenA)})
	assert.Equal(t, http.StatusOK, resp.StatusCode, "a valid token; %s", body)
	assert.EqualValues(t, 1, f.users.fetches.Load(), "the keys fetched once, for the first token that named one")
	for _, path := range []string{"/api/openapi.json", "/docs", "/api/auth/jwks.json", "/healthz"} {
		resp, body := do(t, f.h.URL, request{method: http.MethodGet, path: path})
		assert.Equal(t, http.StatusOK, resp.StatusCode, "%s needs no token; %s", path, body)
	}
}

func TestCustomersSeeOnlyTheirOwn(t *testing.T) {
	t.Parallel()
	f := newAccessFixture(t, time.Hour)
	get := func(path, tok string) int {
		resp, body := do(t, f.h.URL, request{method: http.MethodGet, path: path, headers: bearer(tok)})
		if resp.StatusCode >= 400 {
			assert.Equal(t, web.ProblemContentType, resp.Header.Get("Content-Type"), "%s: %s", path, body)
		}
		return resp.StatusCode
	}
	cases := []struct {
		name  string
		path  string
		a, b  int // customer A's and B's status
		admin int
	}{
		{"A's order", "/api/orders/" + f.orderA, 200, 404, 200},
		{"B's order", "/api/orders/" + f.orderB, 404, 200, 200},
		{"unknown order", "/api/orders/" + newUUID(), 404, 404, 404},
		{"A's timeline", "/api/orders/" + f.orderA + "/timeline", 200, 404, 200},
		{"A's payment", "/api/payments/" + f.paymentA, 200, 404, 200},
		{"A's order's payment", "/api/payments/order/" + f.orderA, 200, 404, 200},
		{"payment stats", "/api/payments/stats", 403, 403, 200},
		{"A's invoice", "/api/invoices/" + f.invoiceA, 200, 404, 200},
		{"B's invoice's PDF", "/api/invoices/" + f.invoiceB + "/pdf", 404, 200, 200},
		{"A's invoice's credit note (none)", "/api/invoices/" + f.invoiceA + "/credit-note/pdf", 404, 404, 404},
		{"unknown invoice", "/api/invoices/" + newUUID(), 404, 404, 404},
		{"A's order's invoice", "/api/orders/" + f.orderA + "/invoice", 200, 404, 200},
		{"invoices of B", "/api/invoices?userId=" + f.userB.String(), 403, 200, 200},
		{"invoices in a bad status", "/api/invoices?status=PAID", 400, 400, 400},
		{"orders of A", "/api/orders?userId=" + f.userA.String(), 200, 403, 200},
		{"payments of B", "/api/payments?userId=" + f.userB.String(), 403, 200, 200},
		{"e-mails of B", "/api/notifications?userId=" + f.userB.String(), 403, 200, 200},
		{"e-mails of an order", "/api/notifications?orderId=" + f.orderA, 200, 200, 200},
		{"e-mails, a bad status", "/api/notifications?status=DONE", 400, 400, 400},
		{"a bad userId stays a 400", "/api/orders?userId=nope", 400, 400, 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.a, get(tc.path, f.tokenA), "customer A")
			assert.Equal(t, tc.b, get(tc.path, f.tokenB), "customer B")
			assert.Equal(t, tc.admin, get(tc.path, f.root), "admin")
		})
	}

	t.Run("a customer's list is filtered by their id, an admin's is not", func(t *testing.T) {
		before := len(f.orders.requests())
		require.Equal(t, 200, get("/api/orders?status=PAID", f.tokenA))
		require.Equal(t, 200, get("/api/orders?status=PAID", f.root))
		seen := f.orders.requests()[before:]
		require.Len(t, seen, 2)
		assert.Contains(t, seen[0].RawQuery, "userId="+f.userA.String(), "A's list")
		assert.Contains(t, seen[0].RawQuery, "status=PAID", "the other filters kept")
		assert.NotContains(t, seen[1].RawQuery, "userId", "the admin's list")

		before = len(f.notifications.requests())
		require.Equal(t, 200, get("/api/notifications?status=SENT", f.tokenB))
		seen = f.notifications.requests()[before:]
		require.Len(t, seen, 1)
		assert.Contains(t, seen[0].RawQuery, "userId="+f.userB.String(), "B's e-mails only")
		assert.Contains(t, seen[0].RawQuery, "status=SENT")
	})

	t.Run("cancelling another's order is a 404", func(t *testing.T) {
		resp, body := do(t, f.h.URL, request{method: http.MethodPatch, path: "/api/orders/" + f.orderB + "/cancel", headers: bearer(f.tokenA)})
		assertProblem(t, resp, body, http.StatusNotFound)
		resp, body = do(t, f.h.URL, request{method: http.MethodPatch, path: "/api/orders/" + f.orderB, body: strings.NewReader(`{"status":"CANCELLED"}`),
			headers: http.Header{"Authorization": {"Bearer " + f.tokenA}, "Content-Type": {"application/json"}}})
		assertProblem(t, resp, body, http.StatusNotFound)
	})

	t.Run("a customer's order is theirs", func(t *testing.T) {
		headers := http.Header{"Authorization": {"Bearer " + f.tokenA}, "Content-Type": {"application/json"}}
		resp, body := do(t, f.h.URL, request{method: http.MethodPost, path: "/api/orders", headers: headers,
			body: strings.NewReader(`{"userId":"` + f.userB.String() + `","total":100}`)})
		assertProblem(t, resp, body, http.StatusForbidden, "userId")

		resp, body = do(t, f.h.URL, request{method: http.MethodPost, path: "/api/orders", headers: headers, body: strings.NewReader(`{"total":100}`)})
		require.Equal(t, http.StatusAccepted, resp.StatusCode, "userId left out; %s", body)
		m := nextMessage(t, f.h.Broker, "order-service.commands")
		assert.Contains(t, string(m.Body), `"userId":"`+f.userA.String()+`"`, "the token's sub placed the order")

		resp, body = do(t, f.h.URL, request{method: http.MethodPost, path: "/api/orders", headers: headers, body: strings.NewReader(`{"total":"x"}`)})
		assertProblem(t, resp, body, http.StatusBadRequest, "total")
	})
}

func TestKeysAreRefetchedOnAnUnknownKeyIDAtMostOncePerInterval(t *testing.T) {
	t.Parallel()
	f := newAccessFixture(t, time.Hour)
	rotated := newKey(t)
	user := uuid.New()
	require.Equal(t, http.StatusOK, statusOf(t, f.h.URL, f.tokenA))
	require.EqualValues(t, 1, f.users.fetches.Load())

	// Forged key ids: no fetch until the interval since the last passed.
	for range 20 {
		assert.Equal(t, http.StatusUnauthorized, statusOf(t, f.h.URL, token(t, newKey(t), user, time.Minute, time.Now(), auth.RoleCustomer)))
	}
	assert.EqualValues(t, 1, f.users.fetches.Load(), "no refresh within the interval, whatever the key ids")

	// A rotation is picked up once the interval has passed.
	g := newAccessFixture(t, 200*time.Millisecond)
	require.Equal(t, http.StatusOK, statusOf(t, g.h.URL, g.tokenA))
	g.users.rotate(rotated)
	fresh := token(t, rotated, user, time.Minute, time.Now(), auth.RoleCustomer)
	require.Eventually(t, func() bool { return statusOf(t, g.h.URL, fresh) == http.StatusOK }, 5*time.Second, 50*time.Millisecond,
		"a token of the new key is accepted after the refresh")
	assert.LessOrEqual(t, g.users.fetches.Load(), int32(1+5*time.Second/(200*time.Millisecond)), "at most one fetch per interval")
	assert.Equal(t, http.StatusOK, statusOf(t, g.h.URL, g.tokenA), "the previous key's tokens stay valid while it is in the JWKS")
}

func statusOf(t testing.TB, base, tok string) int {
	t.Helper()
	resp, _ := do(t, base, request{method: http.MethodGet, path: "/api/payments", headers: bearer(tok)})
	return resp.StatusCode
}

func TestAccountsAreForwardedToUsersService(t *testing.T) {
	t.Parallel()
	users := newFakeUsers(t, newKey(t))
	orders := newFakeService(t, nil)
	h := startGatewayWith(t, gateway.Options{
		Participants: []gateway.Participant{participantAt(t, gateway.OrderService, orders.URL), participantAt(t, gateway.PaymentService, closedURL(t))},
		Auth:         gateway.AuthOptions{Mode: gateway.AuthOff, UsersURL: users.URL},
	})
	resp, body := do(t, h.URL, request{method: http.MethodPost, path: "/api/auth/login", headers: jsonHeaders(), body: strings.NewReader(`{"email":"a@example.com","password":"x"}`)})
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "%s", body)
	assert.Equal(t, "42", resp.Header.Get("Retry-After"), "users-service's Retry-After passed on")

	resp, body = do(t, h.URL, request{method: http.MethodGet, path: "/api/users"})
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "AUTH_MODE=off: user administration still needs a token; %s", body)
	assert.Equal(t, "Bearer", resp.Header.Get("WWW-Authenticate"))
	resp, _ = do(t, h.URL, request{method: http.MethodGet, path: "/api/users", headers: bearer("x")})
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the Authorization header is forwarded")

	down := startGatewayWith(t, gateway.Options{
		Participants: []gateway.Participant{participantAt(t, gateway.OrderService, orders.URL), participantAt(t, gateway.PaymentService, closedURL(t))},
		Auth:         gateway.AuthOptions{Mode: gateway.AuthRequired, UsersURL: closedURL(t)},
	})
	resp, body = do(t, down.URL, request{method: http.MethodGet, path: "/api/orders", headers: bearer(token(t, newKey(t), uuid.New(), time.Minute, time.Now()))})
	assertProblem(t, resp, body, http.StatusServiceUnavailable)
}
