package main

import (
	"errors"
	"os"
	"time"

	"github.com/ordersaga/ordersaga/libs/participant"
	"github.com/ordersaga/ordersaga/libs/settings"
)

// config is the users service's configuration (contract §1, §7): every
// participant's, the first administrator, and the token keys.
type config struct {
	participant.Config
	AdminEmail    string `env:"ADMIN_EMAIL" help:"the first administrator's e-mail, created at start-up if missing (unset: none)"`
	AdminPassword string `env:"ADMIN_PASSWORD" help:"its password, 12 characters or more (required with ADMIN_EMAIL)"`
	// SigningKeyFile is the production signing key; without it a key is
	// generated once and kept in the database, for development.
	SigningKeyFile string `env:"JWT_SIGNING_KEY_FILE" help:"PEM file of the Ed25519 private key tokens are signed with (PKCS #8; unset: generated once and kept in the database, for development only)"`
	// PreviousKeyFile is the key signed with before the current one: its
	// tokens still verify, and the JWKS lists it, until they expired.
	PreviousKeyFile string        `env:"JWT_PREVIOUS_KEY_FILE" help:"PEM file of the previous Ed25519 key (public or private) during a rotation: its tokens stay valid (unset: none)"`
	TokenTTL        time.Duration `env:"TOKEN_TTL" envDefault:"15m" valid:"1m..1h" help:"lifetime of an access token"`
}

const intro = `users-service owns ordersaga's accounts: registration, login, roles, and
the access tokens (EdDSA JWTs) the gateway checks; it emits user.registered.

Usage: users-service [-h | --help | --version]
`

// defaults is the configuration before the environment is read.
func defaults() config {
	return config{Config: participant.Defaults("users-service", ":3005",
		"postgres://postgres@127.0.0.1:5432/users?sslmode=disable")}
}

// Check reports what the tags cannot say.
func (c *config) Check() error {
	errs := []error{c.Config.Check()}
	if (c.AdminEmail == "") != (c.AdminPassword == "") {
		errs = append(errs, errors.New("ADMIN_EMAIL and ADMIN_PASSWORD: set both or neither"))
	} else if c.AdminPassword != "" && len([]rune(c.AdminPassword)) < 12 {
		// Never the value: it is a password.
		errs = append(errs, errors.New("ADMIN_PASSWORD: want 12 characters or more"))
	}
	for _, f := range []struct{ name, path string }{{"JWT_SIGNING_KEY_FILE", c.SigningKeyFile}, {"JWT_PREVIOUS_KEY_FILE", c.PreviousKeyFile}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, errors.New(f.name+" "+f.path+": cannot be read"))
		}
	}
	return errors.Join(errs...)
}

func parseConfig(getenv func(string) string) (config, error) {
	c := defaults()
	return c, settings.Parse(getenv, &c)
}
