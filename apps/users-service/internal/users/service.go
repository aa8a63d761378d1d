// Package users keeps ordersaga's accounts (contract §7): registration,
// login with throttling, the access tokens it signs and the keys they are
// verified with, the current user, and the administrators' listing and role
// changes.
package users

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ordersaga/ordersaga/db/users/usersdb"
	"github.com/ordersaga/ordersaga/libs/auth"
	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/uow"
	"github.com/ordersaga/ordersaga/libs/web"
)

// Throttling of failed logins (contract §7): after MaxFailures failed
// logins of one e-mail within FailureWindow, further attempts are refused
// until the oldest of them leaves the window.
const (
	MaxFailures   = 10
	FailureWindow = time.Minute
)

// Errors of the service; the HTTP edge maps each to a status.
var (
	ErrNotFound = errors.New("not found")
	// ErrConflict is an e-mail address that already has an account.
	ErrConflict = errors.New("an account with this e-mail address exists")
	// ErrBadCredentials is an unknown e-mail or a wrong password: the same
	// error for both, so an answer never tells which.
	ErrBadCredentials = errors.New("invalid e-mail or password")
	// ErrUnauthenticated is a request without a valid token.
	ErrUnauthenticated = errors.New("a valid bearer token is required")
	// ErrForbidden is a valid token without the role a request needs.
	ErrForbidden = errors.New("this needs the admin role")
)

// InvalidError is a request with invalid fields.
type InvalidError struct{ Errors []web.FieldError }

func (e *InvalidError) Error() string { return fmt.Sprintf("invalid request: %v", e.Errors) }

// ThrottledError is a login refused because of too many recent failures.
type ThrottledError struct{ RetryAfter time.Duration }

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many failed logins; retry after %s", e.RetryAfter)
}

// User is an account as the API shows it (never its password hash).
type User struct {
	ID        uuid.UUID `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Roles     []string  `json:"roles"`
	CreatedAt time.Time `json:"createdAt"`
}

// Token is the answer to a successful login.
type Token struct {
	AccessToken string `json:"accessToken"`
	TokenType   string `json:"tokenType"`
	// ExpiresIn is the token's lifetime in seconds.
	ExpiresIn int `json:"expiresIn"`
}

// Keys are the key tokens are signed with and, during a rotation, the
// previous key's public half, with which tokens it signed still verify.
type Keys struct {
	Signing  auth.Key
	Previous ed25519.PublicKey
}

// Service is the accounts' logic over the users database.
type Service struct {
	runner *uow.Runner
	log    *slog.Logger
	signer *auth.Signer
	verify auth.Lookup
	jwks   auth.JWKS
	now    func() time.Time
	// dummyHash is checked against for an unknown e-mail, so that its
	// login costs what a wrong password costs.
	dummyHash string
}

// NewService returns the service; tokens live ttl.
func NewService(runner *uow.Runner, log *slog.Logger, keys Keys, ttl time.Duration) (*Service, error) {
	signer, err := auth.NewSigner(keys.Signing, ttl, nil)
	if err != nil {
		return nil, err
	}
	public := []ed25519.PublicKey{keys.Signing.Public()}
	if keys.Previous != nil && !keys.Previous.Equal(keys.Signing.Public()) {
		public = append(public, keys.Previous)
	}
	dummy, err := HashPassword(uuid.NewString())
	if err != nil {
		return nil, err
	}
	return &Service{
		runner: runner, log: log, signer: signer,
		verify: auth.StaticKeys(public...), jwks: auth.NewJWKS(public...),
		now: time.Now, dummyHash: dummy,
	}, nil
}

// JWKS returns the public keys tokens verify with, the current first.
func (s *Service) JWKS() auth.JWKS { return s.jwks }

// Authenticate returns whom the bearer token in an Authorization header
// value speaks for, or ErrUnauthenticated.
func (s *Service) Authenticate(header string) (auth.Principal, error) {
	token, ok := auth.BearerToken(header)
	if !ok {
		return auth.Principal{}, ErrUnauthenticated
	}
	p, err := auth.Verify(token, s.verify, s.now)
	if err != nil {
		return auth.Principal{}, fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	return p, nil
}

// Register creates a customer account and emits user.registered.
func (s *Service) Register(ctx context.Context, r Registration) (User, error) {
	if errs := r.Validate(); len(errs) > 0 {
		return User{}, &InvalidError{Errors: errs}
	}
	return s.create(ctx, r, []string{auth.RoleCustomer})
}

func (s *Service) create(ctx context.Context, r Registration, roles []string) (User, error) {
	hash, err := HashPassword(r.Password)
	if err != nil {
		return User{}, err
	}
	var u User
	err = s.runner.InTx(ctx, func(ctx context.Context, tx *uow.Tx) error {
		row, err := usersdb.New(tx).InsertUser(ctx, usersdb.InsertUserParams{
			ID: events.NewID(), Email: r.Email, Name: r.Name, PasswordHash: hash, Roles: roles, Now: s.now().UTC(),
		})
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrConflict
		}
		if err != nil {
			return fmt.Errorf("insert user: %w", err)
		}
		u = User(row)
		return tx.Emit(events.UserRegistered{UserID: u.ID, Email: u.Email, Name: u.Name}, u.ID.String())
	})
	return u, err
}

// EnsureAdmin creates the administrator account of email and password
// unless an account of email exists (contract §7: the first admin). Two
// instances starting at once create it once: the unique index decides.
func (s *Service) EnsureAdmin(ctx context.Context, email, password string) error {
	r := Registration{Email: email, Password: password, Name: "Administrator"}
	if errs := r.Validate(); len(errs) > 0 {
		return fmt.Errorf("ADMIN_EMAIL/ADMIN_PASSWORD: %v", errs)
	}
	u, err := s.create(ctx, r, []string{auth.RoleAdmin, auth.RoleCustomer})
	if errors.Is(err, ErrConflict) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create the administrator: %w", err)
	}
	s.log.InfoContext(ctx, "administrator created", "user_id", u.ID)
	return nil
}

// Login checks email and password and returns an access token. A wrong
// password and an unknown e-mail are both ErrBadCredentials, and cost the
// same: both check a password hash and record a failure. After
// MaxFailures failures of one e-mail within FailureWindow it answers
// *ThrottledError without checking anything.
func (s *Service) Login(ctx context.Context, email, password string) (Token, error) {
	email = NormaliseEmail(email)
	var user usersdb.UserByEmailRow
	err := s.runner.InTx(ctx, func(ctx context.Context, tx *uow.Tx) error {
		q := usersdb.New(tx)
		// One e-mail's logins one at a time, across instances: two cannot
		// both pass the count below.
		if err := q.LockEmail(ctx, email); err != nil {
			return fmt.Errorf("lock logins: %w", err)
		}
		now := s.now().UTC()
		recent, err := q.RecentFailures(ctx, usersdb.RecentFailuresParams{Email: email, Since: now.Add(-FailureWindow), Lim: MaxFailures})
		if err != nil {
			return fmt.Errorf("count failed logins: %w", err)
		}
		if len(recent) >= MaxFailures {
			// Allowed again once the oldest of the last MaxFailures leaves
			// the window.
			return &ThrottledError{RetryAfter: recent[MaxFailures-1].Add(FailureWindow).Sub(now)}
		}
		found := true
		user, err = q.UserByEmail(ctx, email)
		if errors.Is(err, pgx.ErrNoRows) {
			found = false
			user.PasswordHash = s.dummyHash
		} else if err != nil {
			return fmt.Errorf("find user: %w", err)
		}
		ok, err := CheckPassword(user.PasswordHash, password)
		if err != nil {
			return fmt.Errorf("check password of %s: %w", user.ID, err)
		}
		if found && ok {
			return nil
		}
		// Recorded whether or not the account exists: the answer and its
		// cost must not tell.
		if err := q.AddFailure(ctx, usersdb.AddFailureParams{Email: email, At: now}); err != nil {
			return fmt.Errorf("record failed login: %w", err)
		}
		user = usersdb.UserByEmailRow{}
		return nil
	})
	if err != nil {
		return Token{}, err
	}
	if user.ID == uuid.Nil {
		return Token{}, ErrBadCredentials
	}
	token, err := s.signer.Issue(user.ID, user.Roles)
	if err != nil {
		return Token{}, err
	}
	return Token{AccessToken: token, TokenType: "Bearer", ExpiresIn: int(s.signer.TTL() / time.Second)}, nil
}

// Get returns the user id.
func (s *Service) Get(ctx context.Context, id uuid.UUID) (User, error) {
	row, err := usersdb.New(s.runner.Pool()).UserByID(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, fmt.Errorf("user %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("get user %s: %w", id, err)
	}
	return User(row), nil
}

// List returns a page of users, newest first, and how many there are.
func (s *Service) List(ctx context.Context, limit, offset int) ([]User, int64, error) {
	q := usersdb.New(s.runner.Pool())
	rows, err := q.ListUsers(ctx, usersdb.ListUsersParams{Lim: int32(limit), Off: int32(offset)})
	if err != nil {
		return nil, 0, fmt.Errorf("list users: %w", err)
	}
	total, err := q.CountUsers(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("count users: %w", err)
	}
	out := make([]User, len(rows))
	for i, r := range rows {
		out[i] = User(r)
	}
	return out, total, nil
}

// SetRoles replaces the roles of user id (a non-empty subset of
// auth.Roles). They reach the user's tokens at the next login.
func (s *Service) SetRoles(ctx context.Context, id uuid.UUID, roles []string) (User, error) {
	roles, errs := normaliseRoles(roles)
	if len(errs) > 0 {
		return User{}, &InvalidError{Errors: errs}
	}
	row, err := usersdb.New(s.runner.Pool()).SetRoles(ctx, usersdb.SetRolesParams{ID: id, Roles: roles})
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, fmt.Errorf("user %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("set roles of %s: %w", id, err)
	}
	return User(row), nil
}

// RunFailurePruning deletes the failed logins that left the window, every
// minute, until ctx ends: the table holds a minute of failures at most.
func (s *Service) RunFailurePruning(ctx context.Context) error {
	t := time.NewTicker(FailureWindow)
	defer t.Stop()
	for {
		if _, err := usersdb.New(s.runner.Pool()).PruneFailures(ctx, s.now().Add(-FailureWindow)); err != nil && ctx.Err() == nil {
			return fmt.Errorf("prune failed logins: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// DevelopmentKey returns the signing key kept in the database, generating
// it on the first start: every instance started without a configured key
// signs with the same one, and tokens survive restarts.
func DevelopmentKey(ctx context.Context, q *usersdb.Queries) (auth.Key, error) {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return auth.Key{}, err
	}
	if err := q.InsertSigningKey(ctx, priv.Seed()); err != nil {
		return auth.Key{}, fmt.Errorf("store the development signing key: %w", err)
	}
	seed, err := q.SigningKey(ctx)
	if err != nil {
		return auth.Key{}, fmt.Errorf("read the development signing key: %w", err)
	}
	return auth.NewKey(ed25519.NewKeyFromSeed(seed)), nil
}

// Name is the service's name: its app_id.
const Name = "users-service"

// hasRole is for the HTTP edge's checks.
func hasRole(p auth.Principal, role string) bool { return slices.Contains(p.Roles, role) }
