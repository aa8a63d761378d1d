package auth_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/auth"
)

func newKey(t testing.TB) auth.Key {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return auth.NewKey(priv)
}

func at(s string) func() time.Time {
	ts, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return func() time.Time { return ts }
}

// unsigned builds the header.claims part of a token by hand, for the
// tokens no honest library would issue.
func unsigned(t testing.TB, header, claims map[string]any) string {
	t.Helper()
	h, err := json.Marshal(header)
	require.NoError(t, err)
	c, err := json.Marshal(claims)
	require.NoError(t, err)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
}

func TestIssuedTokensVerify(t *testing.T) {
	key := newKey(t)
	user := uuid.New()
	s, err := auth.NewSigner(key, 15*time.Minute, at("2026-12-06T08:00:00Z"))
	require.NoError(t, err)
	token, err := s.Issue(user, []string{auth.RoleCustomer})
	require.NoError(t, err)

	header, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(header)
	require.NoError(t, err)
	var h map[string]any
	require.NoError(t, json.Unmarshal(raw, &h))
	assert.Equal(t, "EdDSA", h["alg"], "alg header")
	assert.Equal(t, key.ID, h["kid"], "kid header")

	p, err := auth.Verify(token, auth.StaticKeys(key.Public()), at("2026-12-06T08:14:59Z"))
	require.NoError(t, err)
	assert.Equal(t, user, p.UserID, "sub")
	assert.Equal(t, []string{auth.RoleCustomer}, p.Roles, "roles")
	assert.False(t, p.IsAdmin())
}

func TestVerifyRefuses(t *testing.T) {
	key, other := newKey(t), newKey(t)
	user := uuid.New()
	now := at("2026-12-06T08:00:00Z")
	sign := func(k auth.Key, ttl time.Duration) string {
		s, err := auth.NewSigner(k, ttl, now)
		require.NoError(t, err)
		tok, err := s.Issue(user, []string{auth.RoleAdmin})
		require.NoError(t, err)
		return tok
	}
	good := sign(key, 15*time.Minute)
	claims := map[string]any{"sub": user.String(), "roles": []string{"admin"}, "iss": auth.Issuer,
		"iat": now().Unix(), "exp": now().Add(time.Minute).Unix()}
	hs256WithPublicKey := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(claims))
		tok.Header["kid"] = key.ID
		s, err := tok.SignedString([]byte(key.Public()))
		require.NoError(t, err)
		return s
	}()
	parts := strings.Split(good, ".")
	otherClaims := func(change func(map[string]any)) string {
		c := map[string]any{}
		for k, v := range claims {
			c[k] = v
		}
		change(c)
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims(c))
		tok.Header["kid"] = key.ID
		s, err := tok.SignedString(key.Private)
		require.NoError(t, err)
		return s
	}
	cases := []struct {
		name    string
		token   string
		now     func() time.Time
		unknown bool
	}{
		{name: "expired", token: good, now: at("2026-12-06T08:15:01Z")},
		{name: "signed by another key with this key's id", token: func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims(claims))
			tok.Header["kid"] = key.ID
			s, err := tok.SignedString(other.Private)
			require.NoError(t, err)
			return s
		}()},
		{name: "signed by an unknown key", token: sign(other, time.Minute), unknown: true},
		{name: "alg none", token: unsigned(t, map[string]any{"alg": "none", "typ": "JWT", "kid": key.ID}, claims) + "."},
		{name: "alg none with the real signature", token: unsigned(t, map[string]any{"alg": "none", "kid": key.ID}, claims) + "." + parts[2]},
		{name: "HS256 keyed with the public key", token: hs256WithPublicKey},
		{name: "tampered claims", token: parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"`+uuid.NewString()+`","roles":["admin"],"iss":"`+auth.Issuer+`","exp":9999999999,"iat":1}`)) + "." + parts[2]},
		{name: "no kid", token: func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims(claims))
			s, err := tok.SignedString(key.Private)
			require.NoError(t, err)
			return s
		}()},
		{name: "another issuer", token: otherClaims(func(c map[string]any) { c["iss"] = "someone" })},
		{name: "no exp", token: otherClaims(func(c map[string]any) { delete(c, "exp") })},
		{name: "lifetime over an hour", token: otherClaims(func(c map[string]any) { c["exp"] = now().Add(2 * time.Hour).Unix() })},
		{name: "sub not a user id", token: otherClaims(func(c map[string]any) { c["sub"] = "root" })},
		{name: "unknown role", token: otherClaims(func(c map[string]any) { c["roles"] = []string{"superuser"} })},
		{name: "garbage", token: "not.a.token"},
		{name: "empty", token: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			when := now
			if tc.now != nil {
				when = tc.now
			}
			_, err := auth.Verify(tc.token, auth.StaticKeys(key.Public()), when)
			require.Error(t, err)
			assert.ErrorIs(t, err, auth.ErrInvalidToken)
			if tc.unknown {
				assert.ErrorIs(t, err, auth.ErrUnknownKey)
			}
		})
	}
}

func TestSignerLifetimeIsBounded(t *testing.T) {
	for _, ttl := range []time.Duration{0, time.Hour + time.Second} {
		_, err := auth.NewSigner(newKey(t), ttl, nil)
		assert.Error(t, err, "ttl %s", ttl)
	}
}

func TestJWKSRoundTrips(t *testing.T) {
	current, previous := newKey(t), newKey(t)
	data, err := json.Marshal(auth.NewJWKS(current.Public(), previous.Public()))
	require.NoError(t, err)
	keys, err := auth.ParseJWKS(data)
	require.NoError(t, err)
	assert.Equal(t, map[string]ed25519.PublicKey{current.ID: current.Public(), previous.ID: previous.Public()}, keys)

	_, err = auth.ParseJWKS([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k","x":"AAAA"}]}`))
	assert.Error(t, err, "a short x")
	keys, err = auth.ParseJWKS([]byte(`{"keys":[{"kty":"RSA","kid":"r","n":"x","e":"AQAB"}]}`))
	require.NoError(t, err)
	assert.Empty(t, keys, "keys of other types are skipped")
}

func TestPEMRoundTrips(t *testing.T) {
	key := newKey(t)
	data, err := auth.MarshalPrivateKeyPEM(key.Private)
	require.NoError(t, err)
	priv, err := auth.ParsePrivateKeyPEM(data)
	require.NoError(t, err)
	assert.Equal(t, key.Private, priv)
	pub, err := auth.ParsePublicKeyPEM(data)
	require.NoError(t, err)
	assert.Equal(t, key.Public(), pub)
	_, err = auth.ParsePrivateKeyPEM([]byte("not pem"))
	assert.Error(t, err)
}

func TestBearerToken(t *testing.T) {
	cases := []struct {
		header string
		token  string
		ok     bool
	}{
		{"Bearer abc.def.ghi", "abc.def.ghi", true},
		{"bearer abc", "abc", true},
		{"Basic dXNlcjpwYXNz", "", false},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Bearer a b", "", false},
		{"", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.header, func(t *testing.T) {
			token, ok := auth.BearerToken(tc.header)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.token, token)
		})
	}
}
