package e2e

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/auth"
	"github.com/ordersaga/ordersaga/libs/gatewayclient"
)

// The administrator every system of these tests starts with (contract §7:
// ADMIN_EMAIL, ADMIN_PASSWORD).
const (
	adminEmail    = "admin@example.com"
	adminPassword = "admin password 1"
)

// account is a registered user and its token.
type account struct {
	ID    string
	Email string
	Token string
}

// call sends method path with body (JSON, when not nil) and an
// Authorization header of token (none when ""), and returns the status,
// headers and body. It is raw net/http on purpose: contract §7's tests
// check each route's exact status, WWW-Authenticate and problem body per
// caller, malformed and forged tokens, and bodies as they are sent on
// the wire; see api_test.go.
func (s *System) call(t testing.TB, method, path, token string, body any) (int, http.Header, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		r = strings.NewReader(string(b))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.GatewayURL+path, r)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err, "%s %s", method, path)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, data
}

// register creates an account and logs it in.
func (s *System) register(t testing.TB, email, password string) account {
	t.Helper()
	resp, err := s.API.RegisterWithResponse(context.Background(), gatewayclient.Registration{Email: gatewayclient.Email(email), Password: password, Name: "Test " + email})
	require.NoError(t, err, "register %s", email)
	expect(t, resp.HTTPResponse, resp.Body, http.StatusCreated)
	u := resp.JSON201
	assert.Equal(t, []gatewayclient.Role{"customer"}, u.Roles)
	return account{ID: u.Id.String(), Email: string(u.Email), Token: s.login(t, email, password)}
}

// login returns an access token of email.
func (s *System) login(t testing.TB, email, password string) string {
	t.Helper()
	resp, err := s.API.LoginWithResponse(context.Background(), gatewayclient.Credentials{Email: email, Password: password})
	require.NoError(t, err, "login %s", email)
	expect(t, resp.HTTPResponse, resp.Body, http.StatusOK)
	tok := resp.JSON200
	require.Equal(t, gatewayclient.Bearer, tok.TokenType)
	require.Positive(t, tok.ExpiresIn)
	require.LessOrEqual(t, tok.ExpiresIn, 3600, "lifetime at most 1 h")
	return tok.AccessToken
}

// placeOrder places an order of token's user and waits for its status.
// It is raw, like call: the access tests compare what each caller sends
// and gets on the wire (a customer's body may leave userId out, §7).
func (s *System) placeOrder(t testing.TB, token string, body map[string]any, status string) string {
	t.Helper()
	code, _, data := s.call(t, http.MethodPost, "/api/orders", token, body)
	require.Equal(t, http.StatusAccepted, code, "%s", data)
	var a gatewayclient.OrderAccepted
	require.NoError(t, json.Unmarshal(data, &a))
	require.Eventually(t, func() bool {
		code, _, data := s.call(t, http.MethodGet, "/api/orders/"+a.OrderId.String(), token, nil)
		var o gatewayclient.Order
		return code == http.StatusOK && json.Unmarshal(data, &o) == nil && string(o.Status) == status
	}, 30*time.Second, 20*time.Millisecond, "order %s reaches %s", a.OrderId, status)
	return a.OrderId.String()
}

// signingKey reads the development signing key users-service generated
// into its database, to forge what an honest client cannot: an expired
// token of a real key.
func (s *System) signingKey(t testing.TB) auth.Key {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.DB["users-service"])
	require.NoError(t, err)
	defer conn.Close(ctx)
	var seed []byte
	require.NoError(t, conn.QueryRow(ctx, `SELECT seed FROM signing_keys`).Scan(&seed))
	return auth.NewKey(ed25519.NewKeyFromSeed(seed))
}

func signed(t testing.TB, k auth.Key, user string, roles []string, issued time.Time, ttl time.Duration) string {
	t.Helper()
	s, err := auth.NewSigner(k, ttl, func() time.Time { return issued })
	require.NoError(t, err)
	tok, err := s.Issue(uuid.MustParse(user), roles)
	require.NoError(t, err)
	return tok
}

// TestAccessWithAuthRequired is contract §7's table: every route × {no
// token, expired, customer A, customer B, admin}, with the exact status.
func TestAccessWithAuthRequired(t *testing.T) {
	t.Parallel()
	s := Start(t, map[string]string{"AUTH_MODE": "required", "ADMIN_EMAIL": adminEmail, "ADMIN_PASSWORD": adminPassword})
	a := s.register(t, "Customer.A@example.com", "customer A password")
	b := s.register(t, "customer.b@example.com", "customer B password")
	admin := s.login(t, "ADMIN@example.com", adminPassword)
	expired := signed(t, s.signingKey(t), a.ID, []string{"customer"}, time.Now().Add(-2*time.Hour), time.Hour)
	_, otherPriv, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	otherKey := signed(t, auth.NewKey(otherPriv), a.ID, []string{"admin"}, time.Now(), time.Hour)

	orderA := s.placeOrder(t, a.Token, map[string]any{"total": 4200}, "PAID")
	orderB := s.placeOrder(t, b.Token, map[string]any{"userId": b.ID, "total": 1200}, "PAID")
	failedB := s.placeOrder(t, b.Token, map[string]any{"total": 100, "paymentMethod": "tok_fail"}, "FAILED")
	pay, err := s.API.GetPaymentOfOrderWithResponse(context.Background(), uuidOf(t, orderA), gatewayclient.BearerAuth(a.Token))
	require.NoError(t, err)
	expect(t, pay.HTTPResponse, pay.Body, http.StatusOK)
	payA := *pay.JSON200

	type statuses struct{ none, expired, a, b, admin int }
	routes := []struct {
		method, path string
		body         any
		want         statuses
	}{
		{"POST", "/api/orders", map[string]any{"total": 100}, statuses{401, 401, 202, 202, 202}},
		{"POST", "/api/orders", map[string]any{"userId": a.ID, "total": 100}, statuses{401, 401, 202, 403, 202}},
		{"GET", "/api/orders", nil, statuses{401, 401, 200, 200, 200}},
		{"GET", "/api/orders?userId=" + a.ID, nil, statuses{401, 401, 200, 403, 200}},
		{"GET", "/api/orders/" + orderA, nil, statuses{401, 401, 200, 404, 200}},
		{"GET", "/api/orders/" + orderA + "/timeline", nil, statuses{401, 401, 200, 404, 200}},
		{"GET", "/api/orders/" + orderA + "/events", nil, statuses{401, 401, 200, 404, 200}},
		{"PATCH", "/api/orders/" + failedB + "/cancel", nil, statuses{401, 401, 404, 409, 409}},
		{"PATCH", "/api/orders/" + failedB, map[string]any{"status": "CANCELLED"}, statuses{401, 401, 404, 409, 409}},
		{"GET", "/api/payments", nil, statuses{401, 401, 200, 200, 200}},
		{"GET", "/api/payments?userId=" + a.ID, nil, statuses{401, 401, 200, 403, 200}},
		{"GET", "/api/payments/" + payA.Id.String(), nil, statuses{401, 401, 200, 404, 200}},
		{"GET", "/api/payments/order/" + orderA, nil, statuses{401, 401, 200, 404, 200}},
		{"GET", "/api/payments/stats", nil, statuses{401, 401, 403, 403, 200}},
		{"POST", "/api/products", map[string]any{"sku": "ACCESS-1", "name": "Access", "price": 100, "currency": "USD", "onHand": 5},
			statuses{401, 401, 403, 403, 202}},
		{"POST", "/api/products/ACCESS-1/stock", map[string]any{"delta": 1}, statuses{401, 401, 403, 403, 202}},
		{"GET", "/api/products", nil, statuses{401, 401, 200, 200, 200}},
		{"GET", "/api/products/NO-SUCH-SKU", nil, statuses{401, 401, 404, 404, 404}},
		{"GET", "/api/users/me", nil, statuses{401, 401, 200, 200, 200}},
		{"GET", "/api/users", nil, statuses{401, 401, 403, 403, 200}},
		{"PATCH", "/api/users/" + b.ID, map[string]any{"roles": []string{"customer"}}, statuses{401, 401, 403, 403, 200}},
		{"GET", "/api/auth/jwks.json", nil, statuses{200, 200, 200, 200, 200}},
		{"GET", "/api/openapi.json", nil, statuses{200, 200, 200, 200, 200}},
		{"GET", "/docs", nil, statuses{200, 200, 200, 200, 200}},
	}
	for _, r := range routes {
		t.Run(r.method+" "+r.path, func(t *testing.T) {
			for _, caller := range []struct {
				name, token string
				want        int
			}{
				{"no token", "", r.want.none}, {"expired", expired, r.want.expired},
				{"customer A", a.Token, r.want.a}, {"customer B", b.Token, r.want.b}, {"admin", admin, r.want.admin},
			} {
				code, header, body := s.call(t, r.method, r.path, caller.token, r.body)
				assert.Equal(t, caller.want, code, "%s: %s", caller.name, body)
				if code >= 400 {
					assert.Equal(t, "application/problem+json", header.Get("Content-Type"), "%s: a problem", caller.name)
				}
				if code == http.StatusUnauthorized {
					assert.Equal(t, "Bearer", header.Get("WWW-Authenticate"), caller.name)
				}
			}
		})
	}

	t.Run("a token signed by another key", func(t *testing.T) {
		code, header, _ := s.call(t, http.MethodGet, "/api/orders", otherKey, nil)
		assert.Equal(t, http.StatusUnauthorized, code)
		assert.Equal(t, "Bearer", header.Get("WWW-Authenticate"))
	})

	t.Run("A's order is invisible to B in every list and by id", func(t *testing.T) {
		ids := func(token, path string) []string {
			code, _, data := s.call(t, http.MethodGet, path, token, nil)
			require.Equal(t, http.StatusOK, code, "%s", data)
			var page struct {
				Data []struct {
					ID      string `json:"id"`
					OrderID string `json:"orderId"`
				} `json:"data"`
			}
			require.NoError(t, json.Unmarshal(data, &page))
			var out []string
			for _, d := range page.Data {
				out = append(out, d.ID, d.OrderID)
			}
			return out
		}
		for _, path := range []string{"/api/orders?limit=100", "/api/orders?limit=100&status=PAID", "/api/payments?limit=100", "/api/payments?limit=100&status=APPROVED"} {
			assert.NotContains(t, ids(b.Token, path), orderA, "B's %s", path)
			assert.NotContains(t, ids(b.Token, path), payA.Id.String(), "B's %s", path)
			assert.NotContains(t, ids(a.Token, path), orderB, "A's %s", path)
			assert.True(t, slices.Contains(ids(admin, path), orderA) || slices.Contains(ids(admin, path), payA.Id.String()), "the admin's %s", path)
		}
		assert.Contains(t, ids(a.Token, "/api/orders"), orderA, "A's own list")
		code, _, _ := s.call(t, http.MethodGet, "/api/payments/order/"+orderA, b.Token, nil)
		assert.Equal(t, http.StatusNotFound, code, "A's payment by order id, asked by B")
		code, _, _ = s.call(t, http.MethodPatch, "/api/orders/"+orderA+"/cancel", b.Token, nil)
		assert.Equal(t, http.StatusNotFound, code, "B cancelling A's order")
		o := s.placeOrder(t, a.Token, map[string]any{"total": 10}, "PAID")
		code, _, data := s.call(t, http.MethodPatch, "/api/orders/"+o+"/cancel", a.Token, nil)
		assert.Equal(t, http.StatusAccepted, code, "A cancelling their own: %s", data)
	})

	t.Run("an admin makes an admin", func(t *testing.T) {
		code, _, data := s.call(t, http.MethodPatch, "/api/users/"+a.ID, admin, map[string]any{"roles": []string{"customer", "admin"}})
		require.Equal(t, http.StatusOK, code, "%s", data)
		code, _, _ = s.call(t, http.MethodGet, "/api/payments/stats", a.Token, nil)
		assert.Equal(t, http.StatusForbidden, code, "A's old token holds the old roles")
		promoted := s.login(t, a.Email, "customer A password")
		code, _, _ = s.call(t, http.MethodGet, "/api/payments/stats", promoted, nil)
		assert.Equal(t, http.StatusOK, code, "a new login holds the new roles")
	})
}

// TestAccountsWithAuthOff checks AUTH_MODE=off (the default): orders need
// no token, register and login work, user administration still needs an
// admin; and contract §7's rules of registration and login, black-box.
func TestAccountsWithAuthOff(t *testing.T) {
	t.Parallel()
	s := Start(t, map[string]string{"ADMIN_EMAIL": adminEmail, "ADMIN_PASSWORD": adminPassword})
	c := s.register(t, "carol@example.com", "carol's password")
	admin := s.login(t, adminEmail, adminPassword)

	code, _, data := s.call(t, http.MethodPost, "/api/orders", "", map[string]any{"userId": uuid.NewString(), "total": 100})
	assert.Equal(t, http.StatusAccepted, code, "no token needed: %s", data)
	code, _, _ = s.call(t, http.MethodGet, "/api/payments/stats", "", nil)
	assert.Equal(t, http.StatusOK, code)
	for _, x := range []struct {
		name, token string
		want        int
	}{{"no token", "", 401}, {"customer", c.Token, 403}, {"admin", admin, 200}} {
		code, _, _ := s.call(t, http.MethodGet, "/api/users?page=1&limit=5", x.token, nil)
		assert.Equal(t, x.want, code, "GET /api/users, %s", x.name)
		code, _, _ = s.call(t, http.MethodPatch, "/api/users/"+c.ID, x.token, map[string]any{"roles": []string{"customer"}})
		assert.Equal(t, x.want, code, "PATCH /api/users/{id}, %s", x.name)
	}
	code, _, data = s.call(t, http.MethodGet, "/api/users/me", c.Token, nil)
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, string(data), `"email":"carol@example.com"`)

	t.Run("registration", func(t *testing.T) {
		cases := []struct {
			name  string
			body  map[string]any
			want  int
			field string
		}{
			{"the same e-mail in another case", map[string]any{"email": "CAROL@Example.com", "password": "another password", "name": "C"}, 409, ""},
			{"not an e-mail", map[string]any{"email": "carol", "password": "another password", "name": "C"}, 422, "email"},
			{"a password of 11 characters", map[string]any{"email": "dave@example.com", "password": "elevenchars", "name": "D"}, 422, "password"},
		}
		for _, tc := range cases {
			code, _, data := s.call(t, http.MethodPost, "/api/auth/register", "", tc.body)
			assert.Equal(t, tc.want, code, "%s: %s", tc.name, data)
			if tc.field != "" {
				assert.Contains(t, string(data), `"field":"`+tc.field+`"`, tc.name)
			}
		}
	})

	t.Run("a wrong password and an unknown e-mail get the same 401, then 429", func(t *testing.T) {
		_, _, wrong := s.call(t, http.MethodPost, "/api/auth/login", "", map[string]string{"email": c.Email, "password": "not carol's password"})
		code, _, unknown := s.call(t, http.MethodPost, "/api/auth/login", "", map[string]string{"email": "nobody@example.com", "password": "not carol's password"})
		assert.Equal(t, http.StatusUnauthorized, code)
		assert.JSONEq(t, string(wrong), string(unknown), "the same body for both")
		for i := 2; i <= 10; i++ {
			code, _, _ := s.call(t, http.MethodPost, "/api/auth/login", "", map[string]string{"email": c.Email, "password": "not carol's password"})
			require.Equal(t, http.StatusUnauthorized, code, "failure %d", i)
		}
		code, header, data := s.call(t, http.MethodPost, "/api/auth/login", "", map[string]string{"email": c.Email, "password": "carol's password"})
		assert.Equal(t, http.StatusTooManyRequests, code, "the 11th attempt within the minute: %s", data)
		assert.NotEmpty(t, header.Get("Retry-After"))
	})

	t.Run("request headers are capped on every service", func(t *testing.T) {
		for name, base := range s.URL {
			for _, h := range []struct {
				name string
				set  func(http.Header)
			}{
				{"one header of 1 MiB", func(h http.Header) { h.Set("X-Big", strings.Repeat("a", 1<<20)) }},
				{"1024 headers of 1 KB", func(h http.Header) {
					for i := range 1024 {
						h.Set(fmt.Sprintf("X-H-%d", i), strings.Repeat("b", 1000))
					}
				}},
			} {
				req, err := http.NewRequest(http.MethodGet, base+"/healthz", nil)
				require.NoError(t, err)
				h.set(req.Header)
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err, "%s: %s", name, h.name)
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode, "%s: %s", name, h.name)
			}
		}
	})
}

// TestLoginTimingDoesNotTellWhetherAnAccountExists compares the medians of
// 50 logins with an unknown e-mail and 50 with a wrong password,
// interleaved: within 20 % (contract §7). Timing-based, so it runs only
// with LOGIN_TIMING_TEST=1 (a busy machine's noise is not the design's).
func TestLoginTimingDoesNotTellWhetherAnAccountExists(t *testing.T) {
	if os.Getenv("LOGIN_TIMING_TEST") == "" {
		t.Skip("timing-based: set LOGIN_TIMING_TEST=1 to run it")
	}
	s := Start(t, nil)
	const n = 50
	// Five accounts take ten failures each: the tenth is still checked.
	var accounts []string
	for i := range n / 10 {
		accounts = append(accounts, s.register(t, fmt.Sprintf("timing%d@example.com", i), "the right password").Email)
	}
	login := func(email string) time.Duration {
		start := time.Now()
		code, _, _ := s.call(t, http.MethodPost, "/api/auth/login", "", map[string]string{"email": email, "password": "a wrong password"})
		d := time.Since(start)
		require.Equal(t, http.StatusUnauthorized, code)
		return d
	}
	var unknown, wrong []time.Duration
	for i := range n {
		unknown = append(unknown, login(fmt.Sprintf("nobody%d-%s@example.com", i, uuid.NewString()[:8])))
		wrong = append(wrong, login(accounts[i%len(accounts)]))
	}
	median := func(ds []time.Duration) time.Duration {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return (ds[n/2-1] + ds[n/2]) / 2
	}
	mu, mw := median(unknown), median(wrong)
	diff := float64(mu-mw) / float64(max(mu, mw))
	t.Logf("LOGIN_TIMING median unknown e-mail %v, wrong password %v, difference %.1f%%", mu, mw, 100*diff)
	assert.Less(t, max(diff, -diff), 0.20, "medians within 20%%")
}

// TestKeyRotationKeepsBothKeysTokensValid rotates users-service's signing
// key the way README says (the new key in JWT_SIGNING_KEY_FILE, the old one
// in JWT_PREVIOUS_KEY_FILE): tokens of both verify at the gateway during
// the overlap, the new one's once the gateway refetched the JWKS (at most
// 30 s after its last fetch).
func TestKeyRotationKeepsBothKeysTokensValid(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyFile := func(name string) (string, auth.Key) {
		_, priv, err := ed25519.GenerateKey(nil)
		require.NoError(t, err)
		data, err := auth.MarshalPrivateKeyPEM(priv)
		require.NoError(t, err)
		path := dir + "/" + name + ".pem"
		require.NoError(t, os.WriteFile(path, data, 0o600))
		return path, auth.NewKey(priv)
	}
	oldFile, oldKey := keyFile("old")
	newFile, newKey := keyFile("new")
	s := Start(t, map[string]string{"AUTH_MODE": "required", "JWT_SIGNING_KEY_FILE": oldFile})
	a := s.register(t, "rotating@example.com", "rotating password")
	code, _, _ := s.call(t, http.MethodGet, "/api/orders", a.Token, nil)
	require.Equal(t, http.StatusOK, code, "a token of the old key")

	s.Stop("users-service")
	s.envs["users-service"] = append(s.envs["users-service"], "JWT_SIGNING_KEY_FILE="+newFile, "JWT_PREVIOUS_KEY_FILE="+oldFile)
	s.StartService("users-service")
	code, _, data := s.call(t, http.MethodGet, "/api/auth/jwks.json", "", nil)
	require.Equal(t, http.StatusOK, code)
	var set auth.JWKS
	require.NoError(t, json.Unmarshal(data, &set))
	require.Len(t, set.Keys, 2, "both keys during the rotation")
	assert.Equal(t, []string{newKey.ID, oldKey.ID}, []string{set.Keys[0].KeyID, set.Keys[1].KeyID}, "the current key first")

	fresh := s.login(t, a.Email, "rotating password")
	code, _, _ = s.call(t, http.MethodGet, "/api/users/me", a.Token, nil)
	assert.Equal(t, http.StatusOK, code, "users-service still accepts the old key's token")
	require.Eventually(t, func() bool {
		code, _, _ := s.call(t, http.MethodGet, "/api/orders", fresh, nil)
		return code == http.StatusOK
	}, 45*time.Second, 250*time.Millisecond, "the new key's token, once the gateway refetched the keys")
	code, _, _ = s.call(t, http.MethodGet, "/api/orders", a.Token, nil)
	assert.Equal(t, http.StatusOK, code, "the old key's token, during the overlap")
}
