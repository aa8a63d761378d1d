package gateway

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/ordersaga/ordersaga/libs/auth"
	"github.com/ordersaga/ordersaga/libs/web"
)

// Authentication modes (AUTH_MODE, contract §7).
const (
	// AuthOff serves every route as without accounts (§2–§6); only user
	// administration needs a token, checked by users-service. For
	// development and seed-compatible clients: never in production.
	AuthOff = "off"
	// AuthRequired needs a valid bearer token on every /api route but
	// /api/auth/* and /api/openapi.json, and lets a customer see only their
	// own orders and payments.
	AuthRequired = "required"
)

// UsersService is the service that keeps accounts and issues tokens.
const UsersService = "users-service"

// DefaultUsersURL is users-service's address on a developer machine
// (contract §1: USERS_SERVICE_URL).
const DefaultUsersURL = "http://127.0.0.1:3005"

// DefaultKeyRefresh is the shortest interval between two fetches of the
// JWKS (contract §7: at most once per 30 s).
const DefaultKeyRefresh = 30 * time.Second

// AuthOptions configure the gateway's access control.
type AuthOptions struct {
	// Mode is AuthOff (the default) or AuthRequired.
	Mode string
	// UsersURL is users-service's base URL: its JWKS, and where /api/auth/*
	// and /api/users* are forwarded (default DefaultUsersURL).
	UsersURL string
	// KeyRefresh is the shortest interval between two fetches of the JWKS
	// (default DefaultKeyRefresh).
	KeyRefresh time.Duration
}

// principalKey is the gin key of the verified caller.
const principalKey = "principal"

// errKeysUnavailable is a token whose key the gateway could not fetch.
var errKeysUnavailable = errors.New("the token keys could not be fetched from users-service")

// keySet is the gateway's copy of users-service's JWKS. A token with a key
// id it does not hold makes it fetch the JWKS again, at most once per
// refresh interval, so that neither a rotation nor forged key ids cost a
// call per request.
type keySet struct {
	users   upstream
	refresh time.Duration
	now     func() time.Time

	mu   sync.RWMutex
	keys map[string]ed25519.PublicKey

	fetching  sync.Mutex // one fetch at a time
	nextFetch time.Time  // guarded by fetching
}

func (k *keySet) cached(kid string) (ed25519.PublicKey, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	key, ok := k.keys[kid]
	return key, ok
}

// lookup returns the key lookup of a request.
func (k *keySet) lookup(ctx context.Context) auth.Lookup {
	return func(kid string) (ed25519.PublicKey, error) {
		if key, ok := k.cached(kid); ok {
			return key, nil
		}
		k.fetching.Lock()
		defer k.fetching.Unlock()
		if key, ok := k.cached(kid); ok { // fetched while this one waited
			return key, nil
		}
		now := k.now()
		if now.Before(k.nextFetch) {
			k.mu.RLock()
			never := k.keys == nil
			k.mu.RUnlock()
			if never {
				return nil, errKeysUnavailable
			}
			return nil, fmt.Errorf("key %q: %w", kid, auth.ErrUnknownKey)
		}
		keys, err := k.fetch(ctx)
		if err != nil {
			// users-service may be starting: try again soon.
			k.nextFetch = now.Add(time.Second)
			return nil, fmt.Errorf("%w: %w", errKeysUnavailable, err)
		}
		k.nextFetch = now.Add(k.refresh)
		k.mu.Lock()
		k.keys = keys
		k.mu.Unlock()
		if key, ok := keys[kid]; ok {
			return key, nil
		}
		return nil, fmt.Errorf("key %q: %w", kid, auth.ErrUnknownKey)
	}
}

func (k *keySet) fetch(ctx context.Context) (map[string]ed25519.PublicKey, error) {
	resp, err := k.users.get(ctx, "/api/auth/jwks.json", "")
	if err != nil {
		return nil, err
	}
	if resp.status != http.StatusOK {
		return nil, fmt.Errorf("JWKS answered %d", resp.status)
	}
	return auth.ParseJWKS(resp.body)
}

// isPublic reports whether path is served without a token in every mode.
func isPublic(path string) bool {
	return strings.HasPrefix(path, "/api/auth/") || path == "/api/openapi.json"
}

// authenticate is the /api group's middleware: with AuthRequired, a request
// to anything but the public routes needs a valid bearer token (else 401
// with WWW-Authenticate), and its principal is kept for the routes' checks.
func (g *Gateway) authenticate(c *gin.Context) {
	if g.authMode != AuthRequired || isPublic(c.Request.URL.Path) {
		return
	}
	token, ok := auth.BearerToken(c.GetHeader("Authorization"))
	if !ok {
		unauthorized(c, "this route needs an Authorization: Bearer <token> header (POST /api/auth/login issues one)")
		return
	}
	p, err := auth.Verify(token, g.keys.lookup(requestContext(c)), nil)
	switch {
	case errors.Is(err, errKeysUnavailable):
		c.Header("Retry-After", "1")
		web.Fail(c, http.StatusServiceUnavailable, UsersService+" is unavailable: the token cannot be checked")
		g.log.WarnContext(c, "token keys unavailable", "error", err, "request_id", c.GetString(web.RequestIDHeader))
	case err != nil:
		unauthorized(c, "the bearer token is invalid or expired")
	default:
		c.Set(principalKey, p)
	}
}

func unauthorized(c *gin.Context, detail string) {
	c.Header("WWW-Authenticate", "Bearer")
	web.Fail(c, http.StatusUnauthorized, detail)
}

// customer returns the caller when the request is restricted to its own
// data: AuthRequired and a caller without the admin role.
func (g *Gateway) customer(c *gin.Context) (auth.Principal, bool) {
	p, ok := g.caller(c)
	if !ok || p.IsAdmin() {
		return auth.Principal{}, false
	}
	return p, true
}

// adminOnly answers 403 to a customer (AuthRequired).
func (g *Gateway) adminOnly(c *gin.Context) {
	if _, ok := g.customer(c); ok {
		web.Fail(c, http.StatusForbidden, "this needs the admin role")
	}
}

// ownQuery makes a customer's list their own: a userId query parameter
// naming someone else is a 403, and a list without one gets theirs.
func (g *Gateway) ownQuery(c *gin.Context) {
	p, ok := g.customer(c)
	if !ok {
		return
	}
	q := c.Request.URL.Query()
	values, given := q["userId"]
	if !given {
		q.Set("userId", p.UserID.String())
		c.Request.URL.RawQuery = q.Encode()
		return
	}
	// A malformed or repeated value is the list's own 400.
	if len(values) != 1 {
		return
	}
	if id, err := web.ParseUUID(values[0]); err == nil && id != p.UserID {
		web.Fail(c, http.StatusForbidden, "a customer may list only their own data",
			web.FieldError{Field: "userId", Message: "must be your own user id or left out"})
	}
}

// caller returns the verified caller of a request (AuthRequired only).
func (g *Gateway) caller(c *gin.Context) (auth.Principal, bool) {
	if g.authMode != AuthRequired {
		return auth.Principal{}, false
	}
	v, _ := c.Get(principalKey)
	p, ok := v.(auth.Principal)
	return p, ok
}

// ownNewOrder makes a POST /api/orders the caller's: its userId may be left
// out (it is the token's sub, an admin's too) and a customer naming someone
// else is a 403. A body it cannot read as a JSON object is left to the
// handler's checks.
func (g *Gateway) ownNewOrder(c *gin.Context) {
	p, ok := g.caller(c)
	if !ok {
		return
	}
	body, err := io.ReadAll(io.LimitReader(c.Request.Body, MaxBodyBytes+1))
	rest := c.Request.Body
	restore := func(b []byte) {
		c.Request.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(b), rest), rest}
	}
	if err != nil || len(body) > MaxBodyBytes {
		restore(body)
		return
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil || fields == nil {
		restore(body)
		return
	}
	raw, given := fields["userId"]
	if !given || string(raw) == "null" {
		fields["userId"], _ = json.Marshal(p.UserID)
		body, _ = json.Marshal(fields)
		c.Request.ContentLength = int64(len(body))
		restore(body)
		return
	}
	restore(body)
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return // a wrong type: the handler's 400
	}
	if id, err := web.ParseUUID(s); err == nil && id != p.UserID && !p.IsAdmin() {
		web.Fail(c, http.StatusForbidden, "a customer may place orders only for themselves",
			web.FieldError{Field: "userId", Message: "must be your own user id or left out"})
	}
}

// ownOrder answers a customer's request about an order that is not theirs
// as if it did not exist (404), never saying that it does.
func (g *Gateway) ownOrder(param string) gin.HandlerFunc {
	return func(c *gin.Context) {
		p, ok := g.customer(c)
		if !ok {
			return
		}
		id, err := web.ParseUUID(c.Param(param))
		if err != nil {
			return // the handler's 400
		}
		if err := g.checkOwner(requestContext(c), p, id); err != nil {
			g.fail(c, err)
		}
	}
}

// ownPayment is ownOrder for a payment: its order must be the customer's.
func (g *Gateway) ownPayment(c *gin.Context) {
	p, ok := g.customer(c)
	if !ok {
		return
	}
	id, err := web.ParseUUID(c.Param("id"))
	if err != nil {
		return
	}
	var payment struct {
		OrderID uuid.UUID `json:"orderId"`
	}
	err = g.payments.getJSON(requestContext(c), "/api/payments/"+id.String(), &payment)
	if err == nil {
		err = g.checkOwner(requestContext(c), p, payment.OrderID)
	}
	if errors.Is(err, ErrNotFound) {
		err = fmt.Errorf("payment %s: %w", id, ErrNotFound)
	}
	if err != nil {
		g.fail(c, err)
	}
}

// checkOwner returns ErrNotFound unless order id is p's.
func (g *Gateway) checkOwner(ctx context.Context, p auth.Principal, id uuid.UUID) error {
	var o struct {
		UserID uuid.UUID `json:"userId"`
	}
	if err := g.orders.getJSON(ctx, "/api/orders/"+id.String(), &o); err != nil {
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("order %s: %w", id, ErrNotFound)
		}
		return err
	}
	if o.UserID != p.UserID {
		return fmt.Errorf("order %s: %w", id, ErrNotFound)
	}
	return nil
}

// proxiedHeaders are the headers of users-service's answers passed on.
var proxiedHeaders = []string{"Retry-After", "WWW-Authenticate", "Location", "Cache-Control"}

// proxyUsers forwards the request as it is (method, path, query, body,
// Authorization) to users-service, and its answer back: /api/auth/* and
// /api/users* are users-service's, which checks their tokens itself.
func (g *Gateway) proxyUsers(c *gin.Context) {
	var body []byte
	if c.Request.Method != http.MethodGet && c.Request.Method != http.MethodHead {
		var ok bool
		if body, ok = readJSONBody(c); !ok {
			return
		}
	}
	header := http.Header{}
	for _, h := range []string{"Authorization", "Content-Type"} {
		if v := c.GetHeader(h); v != "" {
			header.Set(h, v)
		}
	}
	resp, err := g.users.send(requestContext(c), c.Request.Method, c.Request.URL.Path, c.Request.URL.RawQuery, header, body)
	if err != nil {
		g.fail(c, err)
		return
	}
	for _, h := range proxiedHeaders {
		if v := resp.header.Get(h); v != "" {
			c.Header(h, v)
		}
	}
	if resp.contentType == "" {
		c.Status(resp.status)
		_, _ = c.Writer.Write(resp.body)
		return
	}
	c.Data(resp.status, resp.contentType, resp.body)
}
