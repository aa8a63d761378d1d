// Package auth is what issuing and checking an access token needs on both
// sides (contract §7): users-service signs JWTs with an Ed25519 key and
// publishes the public keys as a JWKS; the gateway (and users-service
// itself) verifies them against those keys. Tokens are EdDSA only: a token
// naming any other algorithm (none, HS256 keyed with the public key…) is
// refused before its signature is looked at.
package auth

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Roles (contract §7).
const (
	RoleCustomer = "customer"
	RoleAdmin    = "admin"
)

// Roles lists every role, for validation.
var Roles = []string{RoleAdmin, RoleCustomer}

// Issuer is the iss claim of every token users-service signs.
const Issuer = "ordersaga-users-service"

// Algorithm is the only JWS algorithm issued and accepted.
const Algorithm = "EdDSA"

// MaxTTL is the longest lifetime of a token (contract §7: at most 1 h).
const MaxTTL = time.Hour

var (
	// ErrUnknownKey is a token signed with a key id that is not (or no
	// longer) among the verification keys.
	ErrUnknownKey = errors.New("unknown signing key")
	// ErrInvalidToken is a token that is malformed, expired, of another
	// algorithm or issuer, or badly signed.
	ErrInvalidToken = errors.New("invalid token")
)

// Claims are the claims of an access token: sub (the user id), roles, iss,
// iat and exp.
type Claims struct {
	Roles []string `json:"roles"`
	jwt.RegisteredClaims
}

// Principal is who a verified token speaks for.
type Principal struct {
	UserID uuid.UUID
	Roles  []string
}

// IsAdmin reports whether the principal holds the admin role.
func (p Principal) IsAdmin() bool { return slices.Contains(p.Roles, RoleAdmin) }

// Key is an Ed25519 signing key with its key id.
type Key struct {
	ID      string
	Private ed25519.PrivateKey
}

// NewKey returns the key of priv, its id the RFC 7638 thumbprint of its
// public key (so the same key always has the same id, on every instance).
func NewKey(priv ed25519.PrivateKey) Key {
	return Key{ID: KeyID(priv.Public().(ed25519.PublicKey)), Private: priv}
}

// Public is the key's public half.
func (k Key) Public() ed25519.PublicKey { return k.Private.Public().(ed25519.PublicKey) }

// KeyID is the RFC 7638 JWK thumbprint of an Ed25519 public key.
func KeyID(pub ed25519.PublicKey) string {
	// The members in lexicographic order, no whitespace (RFC 7638 §3).
	canonical := `{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(canonical))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Signer issues access tokens.
type Signer struct {
	key Key
	ttl time.Duration
	now func() time.Time
}

// NewSigner returns a signer with key whose tokens live ttl (1 s to MaxTTL).
func NewSigner(key Key, ttl time.Duration, now func() time.Time) (*Signer, error) {
	if ttl < time.Second || ttl > MaxTTL {
		return nil, fmt.Errorf("token lifetime %s: want 1s to %s", ttl, MaxTTL)
	}
	if len(key.Private) != ed25519.PrivateKeySize || key.ID == "" {
		return nil, errors.New("signer: want an Ed25519 key with an id")
	}
	if now == nil {
		now = time.Now
	}
	return &Signer{key: key, ttl: ttl, now: now}, nil
}

// TTL is the lifetime of the tokens the signer issues.
func (s *Signer) TTL() time.Duration { return s.ttl }

// Issue returns a token for user with roles.
func (s *Signer) Issue(user uuid.UUID, roles []string) (string, error) {
	now := s.now().Truncate(time.Second)
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, Claims{
		Roles: roles,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    Issuer,
			Subject:   user.String(),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(s.ttl)),
		},
	})
	t.Header["kid"] = s.key.ID
	signed, err := t.SignedString(s.key.Private)
	if err != nil {
		return "", fmt.Errorf("sign token of %s: %w", user, err)
	}
	return signed, nil
}

// Lookup returns the public key of key id kid, or an error wrapping
// ErrUnknownKey.
type Lookup func(kid string) (ed25519.PublicKey, error)

// StaticKeys is a Lookup over a fixed set of public keys.
func StaticKeys(keys ...ed25519.PublicKey) Lookup {
	byID := map[string]ed25519.PublicKey{}
	for _, k := range keys {
		byID[KeyID(k)] = k
	}
	return func(kid string) (ed25519.PublicKey, error) {
		if k, ok := byID[kid]; ok {
			return k, nil
		}
		return nil, fmt.Errorf("key %q: %w", kid, ErrUnknownKey)
	}
}

// Verify checks token (EdDSA only, a kid among lookup's keys, the issuer,
// an exp in the future, a user id as sub, known roles) and returns whom it
// speaks for. Every failure wraps ErrInvalidToken, and also ErrUnknownKey
// when that is why.
func Verify(token string, lookup Lookup, now func() time.Time) (Principal, error) {
	if now == nil {
		now = time.Now
	}
	var claims Claims
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{Algorithm}),
		jwt.WithIssuer(Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(now),
	)
	_, err := parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("no kid in the header")
		}
		return lookup(kid)
	})
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	// A token may live at most MaxTTL, whatever its signer said.
	if claims.IssuedAt == nil || claims.ExpiresAt.Sub(claims.IssuedAt.Time) > MaxTTL {
		return Principal{}, fmt.Errorf("%w: lifetime over %s", ErrInvalidToken, MaxTTL)
	}
	id, err := uuid.Parse(claims.Subject)
	if err != nil || id == uuid.Nil {
		return Principal{}, fmt.Errorf("%w: sub %q is not a user id", ErrInvalidToken, claims.Subject)
	}
	for _, r := range claims.Roles {
		if !slices.Contains(Roles, r) {
			return Principal{}, fmt.Errorf("%w: unknown role %q", ErrInvalidToken, r)
		}
	}
	return Principal{UserID: id, Roles: claims.Roles}, nil
}

// BearerToken returns the token of an Authorization header value
// ("Bearer <token>", the scheme in any case), or false.
func BearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || strings.ContainsAny(token, " \t") {
		return "", false
	}
	return token, true
}

// JWK is one public key of a JWKS (RFC 7517, RFC 8037 for OKP keys).
type JWK struct {
	KeyType   string `json:"kty"`
	Curve     string `json:"crv"`
	X         string `json:"x"`
	KeyID     string `json:"kid"`
	Use       string `json:"use"`
	Algorithm string `json:"alg"`
}

// JWKS is a JSON Web Key Set.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// NewJWKS returns the set of keys, in the order given (the current first).
func NewJWKS(keys ...ed25519.PublicKey) JWKS {
	set := JWKS{Keys: []JWK{}}
	for _, k := range keys {
		set.Keys = append(set.Keys, JWK{
			KeyType: "OKP", Curve: "Ed25519", X: base64.RawURLEncoding.EncodeToString(k),
			KeyID: KeyID(k), Use: "sig", Algorithm: Algorithm,
		})
	}
	return set
}

// ParseJWKS reads a JWKS and returns its Ed25519 signing keys by key id;
// keys of other types are skipped, a malformed Ed25519 key is an error.
func ParseJWKS(data []byte) (map[string]ed25519.PublicKey, error) {
	var set JWKS
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("parse JWKS: %w", err)
	}
	keys := map[string]ed25519.PublicKey{}
	for _, k := range set.Keys {
		if k.KeyType != "OKP" || k.Curve != "Ed25519" || (k.Use != "" && k.Use != "sig") || (k.Algorithm != "" && k.Algorithm != Algorithm) {
			continue
		}
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("parse JWKS: key %q: x is not an Ed25519 public key", k.KeyID)
		}
		if k.KeyID == "" {
			return nil, errors.New("parse JWKS: a key without kid")
		}
		keys[k.KeyID] = ed25519.PublicKey(x)
	}
	return keys, nil
}

// ParsePrivateKeyPEM reads an Ed25519 private key in PEM (PKCS #8,
// "PRIVATE KEY", as `openssl genpkey -algorithm ed25519` writes it).
func ParsePrivateKeyPEM(data []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("want a PEM block of type PRIVATE KEY (PKCS #8)")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse PKCS #8 key: %w", err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("want an Ed25519 key, got %T", k)
	}
	return priv, nil
}

// ParsePublicKeyPEM reads an Ed25519 public key in PEM ("PUBLIC KEY") or
// the public half of a private one ("PRIVATE KEY").
func ParsePublicKeyPEM(data []byte) (ed25519.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block != nil && block.Type == "PUBLIC KEY" {
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse public key: %w", err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("want an Ed25519 key, got %T", k)
		}
		return pub, nil
	}
	priv, err := ParsePrivateKeyPEM(data)
	if err != nil {
		return nil, errors.New("want a PEM block of type PUBLIC KEY or PRIVATE KEY (Ed25519)")
	}
	return priv.Public().(ed25519.PublicKey), nil
}

// MarshalPrivateKeyPEM writes priv as PEM (PKCS #8), as ParsePrivateKeyPEM
// reads it.
func MarshalPrivateKeyPEM(priv ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
