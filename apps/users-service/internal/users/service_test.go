package users

import (
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/db"
	"github.com/ordersaga/ordersaga/db/users/usersdb"
	"github.com/ordersaga/ordersaga/libs/auth"
	"github.com/ordersaga/ordersaga/libs/postgres/pgtest"
	"github.com/ordersaga/ordersaga/libs/uow"
)

// newService returns a service on a fresh users database; its runner never
// dispatches (the outbox rows stay for the test to read).
func newService(t testing.TB) *Service {
	t.Helper()
	pool := pgtest.Pool(t, 8, db.Messaging(), db.MustSchema("users"))
	key, err := DevelopmentKey(context.Background(), usersdb.New(pool))
	require.NoError(t, err)
	s, err := NewService(uow.NewRunner(pool, nil, prometheus.NewRegistry()), slog.New(slog.DiscardHandler), Keys{Signing: key}, 15*time.Minute)
	require.NoError(t, err)
	return s
}

func TestRegisterNormalisesTheEmailAndRefusesASecondSpelling(t *testing.T) {
	t.Parallel()
	s := newService(t)
	ctx := context.Background()
	u, err := s.Register(ctx, Registration{Email: "  Ada@Example.COM ", Password: "correct horse battery", Name: "Ada"})
	require.NoError(t, err)
	assert.Equal(t, "ada@example.com", u.Email, "stored normalised")
	assert.Equal(t, []string{auth.RoleCustomer}, u.Roles, "every new account is a customer")

	_, err = s.Register(ctx, Registration{Email: "ADA@example.com", Password: "another password!", Name: "Other"})
	assert.ErrorIs(t, err, ErrConflict, "the same address in another case")

	var n int
	require.NoError(t, s.runner.Pool().QueryRow(ctx,
		`SELECT count(*) FROM outbox WHERE message_type = 'user.registered' AND correlation_id = $1`, u.ID.String()).Scan(&n))
	assert.Equal(t, 1, n, "user.registered written to the outbox with the account")
}

func TestRegisterValidates(t *testing.T) {
	t.Parallel()
	s := newService(t)
	cases := []struct {
		name  string
		r     Registration
		field string
	}{
		{"no e-mail", Registration{Password: "long enough pw", Name: "A"}, "email"},
		{"not an e-mail", Registration{Email: "ada", Password: "long enough pw", Name: "A"}, "email"},
		{"a display name", Registration{Email: "Ada <ada@example.com>", Password: "long enough pw", Name: "A"}, "email"},
		{"no dot in the domain", Registration{Email: "ada@localhost", Password: "long enough pw", Name: "A"}, "email"},
		{"password of 11 characters", Registration{Email: "ada@example.com", Password: "elevenchars", Name: "A"}, "password"},
		{"no name", Registration{Email: "ada@example.com", Password: "long enough pw", Name: "  "}, "name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Register(context.Background(), tc.r)
			var invalid *InvalidError
			require.ErrorAs(t, err, &invalid)
			require.Len(t, invalid.Errors, 1, "%v", invalid.Errors)
			assert.Equal(t, tc.field, invalid.Errors[0].Field)
		})
	}
}

func TestLoginIssuesATokenAndThrottles(t *testing.T) {
	t.Parallel()
	s := newService(t)
	ctx := context.Background()
	u, err := s.Register(ctx, Registration{Email: "bob@example.com", Password: "bob's long password", Name: "Bob"})
	require.NoError(t, err)

	tok, err := s.Login(ctx, "BOB@example.com", "bob's long password")
	require.NoError(t, err, "the e-mail is compared case-insensitively")
	assert.Equal(t, "Bearer", tok.TokenType)
	assert.Equal(t, 900, tok.ExpiresIn)
	p, err := s.Authenticate("Bearer " + tok.AccessToken)
	require.NoError(t, err)
	assert.Equal(t, u.ID, p.UserID)

	_, err = s.Login(ctx, "nobody@example.com", "whatever password")
	assert.ErrorIs(t, err, ErrBadCredentials, "unknown e-mail")
	for i := range MaxFailures {
		_, err := s.Login(ctx, "bob@example.com", "wrong password!")
		require.ErrorIs(t, err, ErrBadCredentials, "failure %d", i+1)
	}
	_, err = s.Login(ctx, "bob@example.com", "bob's long password")
	var throttled *ThrottledError
	require.ErrorAs(t, err, &throttled, "the 11th attempt within the minute, even with the right password")
	assert.Greater(t, throttled.RetryAfter, time.Duration(0))
	assert.LessOrEqual(t, throttled.RetryAfter, FailureWindow)

	// Another address is not throttled; a minute later neither is bob.
	_, err = s.Login(ctx, "nobody@example.com", "whatever password")
	assert.ErrorIs(t, err, ErrBadCredentials)
	s.now = func() time.Time { return time.Now().Add(FailureWindow + time.Second) }
	_, err = s.Login(ctx, "bob@example.com", "bob's long password")
	assert.NoError(t, err, "the failures left the window")
}

func TestConcurrentFailuresAreCountedOnce(t *testing.T) {
	t.Parallel()
	s := newService(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	results := make([]error, 2*MaxFailures)
	for i := range results {
		wg.Go(func() { _, results[i] = s.Login(ctx, "eve@example.com", "guessing password") })
	}
	wg.Wait()
	var bad, throttled int
	for _, err := range results {
		var te *ThrottledError
		switch {
		case errors.Is(err, ErrBadCredentials):
			bad++
		case errors.As(err, &te):
			throttled++
		default:
			t.Errorf("unexpected %v", err)
		}
	}
	assert.Equal(t, MaxFailures, bad, "exactly ten failures were checked")
	assert.Equal(t, MaxFailures, throttled, "the rest throttled")
}

func TestEnsureAdminIsIdempotent(t *testing.T) {
	t.Parallel()
	s := newService(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { assert.NoError(t, s.EnsureAdmin(ctx, "Admin@Example.com", "admin password 1")) })
	}
	wg.Wait()
	us, total, err := s.List(ctx, 10, 0)
	require.NoError(t, err)
	require.EqualValues(t, 1, total, "one administrator")
	assert.Equal(t, []string{auth.RoleAdmin, auth.RoleCustomer}, us[0].Roles)
	tok, err := s.Login(ctx, "admin@example.com", "admin password 1")
	require.NoError(t, err)
	p, err := s.Authenticate("Bearer " + tok.AccessToken)
	require.NoError(t, err)
	assert.True(t, p.IsAdmin())
}

func TestSetRoles(t *testing.T) {
	t.Parallel()
	s := newService(t)
	ctx := context.Background()
	u, err := s.Register(ctx, Registration{Email: "carol@example.com", Password: "carol's password", Name: "Carol"})
	require.NoError(t, err)
	got, err := s.SetRoles(ctx, u.ID, []string{"customer", "admin", "admin"})
	require.NoError(t, err)
	assert.Equal(t, []string{"admin", "customer"}, got.Roles, "sorted, without repeats")
	for _, roles := range [][]string{nil, {"root"}} {
		_, err = s.SetRoles(ctx, u.ID, roles)
		var invalid *InvalidError
		assert.ErrorAs(t, err, &invalid, "%v", roles)
	}
	_, err = s.SetRoles(ctx, uuid.New(), []string{"admin"})
	assert.ErrorIs(t, err, ErrNotFound)
}

func TestTheDevelopmentKeyIsSharedAndRotationKeepsThePreviousKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t, 8, db.Messaging(), db.MustSchema("users"))
	log := slog.New(slog.DiscardHandler)
	keys := make([]auth.Key, 4)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			k, err := DevelopmentKey(ctx, usersdb.New(pool))
			assert.NoError(t, err)
			keys[i] = k
		})
	}
	wg.Wait()
	for _, k := range keys[1:] {
		assert.Equal(t, keys[0].ID, k.ID, "every instance signs with the same key")
	}

	// Rotation: the old key becomes the previous one; its tokens verify.
	runner := uow.NewRunner(pool, nil, prometheus.NewRegistry())
	old, err := NewService(runner, log, Keys{Signing: keys[0]}, time.Minute)
	require.NoError(t, err)
	_, priv, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	rotated, err := NewService(uow.NewRunner(pool, nil, prometheus.NewRegistry()), log,
		Keys{Signing: auth.NewKey(priv), Previous: keys[0].Public()}, time.Minute)
	require.NoError(t, err)
	require.Len(t, rotated.JWKS().Keys, 2, "the JWKS holds both keys")
	assert.Equal(t, auth.KeyID(priv.Public().(ed25519.PublicKey)), rotated.JWKS().Keys[0].KeyID, "the current key first")
	oldToken, err := old.signer.Issue(uuid.New(), []string{auth.RoleCustomer})
	require.NoError(t, err)
	_, err = rotated.Authenticate("Bearer " + oldToken)
	assert.NoError(t, err, "a token of the previous key verifies during the rotation")
	newToken, err := rotated.signer.Issue(uuid.New(), []string{auth.RoleCustomer})
	require.NoError(t, err)
	_, err = old.Authenticate("Bearer " + newToken)
	assert.ErrorIs(t, err, ErrUnauthenticated, "the old service does not know the new key")
}
