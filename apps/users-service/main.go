// Command users-service owns ordersaga's accounts: it registers users,
// logs them in with throttling, signs their access tokens, serves the
// public keys that verify them, and emits user.registered through its
// outbox.
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/gin-gonic/gin"

	"github.com/ordersaga/ordersaga/db"
	"github.com/ordersaga/ordersaga/db/users/usersdb"
	"github.com/ordersaga/ordersaga/libs/auth"
	"github.com/ordersaga/ordersaga/libs/participant"
	"github.com/ordersaga/ordersaga/saga"

	"github.com/ordersaga/ordersaga/apps/users-service/internal/users"
)

func main() { participant.Main(service()) }

func service() participant.Service[config] {
	return participant.Service[config]{
		Intro:    intro,
		Config:   defaults(),
		Schema:   db.MustSchema("users"),
		Topology: saga.TopologyOf("users-service"),
		Wire:     wire,
	}
}

// run runs the service until ctx ends (participant.Run).
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	return participant.Run(ctx, service(), args, getenv, stdout)
}

// wire loads the signing keys, creates the first administrator if one is
// configured and missing, and adds the routes and the pruning of failed
// logins. users-service consumes nothing.
func wire(p *participant.Participant, cfg *config, engine *gin.Engine) error {
	// Wire gets no context: start-up is bounded by STARTUP_TIMEOUT, as
	// participant.Start's is.
	ctx, cancel := context.WithTimeout(context.Background(), cfg.StartupTimeout)
	defer cancel()
	keys, err := loadKeys(ctx, *cfg, usersdb.New(p.Pool))
	if err != nil {
		return err
	}
	svc, err := users.NewService(p.Runner, p.Log, keys, cfg.TokenTTL)
	if err != nil {
		return err
	}
	if cfg.AdminEmail != "" {
		if err := svc.EnsureAdmin(ctx, cfg.AdminEmail, cfg.AdminPassword); err != nil {
			return err
		}
	}
	p.Log.Info("signing tokens", "kid", keys.Signing.ID, "previous_key", keys.Previous != nil, "development_key", cfg.SigningKeyFile == "")
	p.Go("login-failure-pruning", svc.RunFailurePruning)
	users.Routes(engine, svc)
	return nil
}

// loadKeys reads the configured keys, or the development key from the
// database when none is configured.
func loadKeys(ctx context.Context, cfg config, q *usersdb.Queries) (users.Keys, error) {
	var keys users.Keys
	if cfg.SigningKeyFile == "" {
		k, err := users.DevelopmentKey(ctx, q)
		if err != nil {
			return keys, err
		}
		keys.Signing = k
	} else {
		data, err := os.ReadFile(cfg.SigningKeyFile)
		if err != nil {
			return keys, fmt.Errorf("JWT_SIGNING_KEY_FILE: %w", err)
		}
		priv, err := auth.ParsePrivateKeyPEM(data)
		if err != nil {
			return keys, fmt.Errorf("JWT_SIGNING_KEY_FILE %s: %w", cfg.SigningKeyFile, err)
		}
		keys.Signing = auth.NewKey(priv)
	}
	if cfg.PreviousKeyFile != "" {
		data, err := os.ReadFile(cfg.PreviousKeyFile)
		if err != nil {
			return keys, fmt.Errorf("JWT_PREVIOUS_KEY_FILE: %w", err)
		}
		pub, err := auth.ParsePublicKeyPEM(data)
		if err != nil {
			return keys, fmt.Errorf("JWT_PREVIOUS_KEY_FILE %s: %w", cfg.PreviousKeyFile, err)
		}
		keys.Previous = pub
	}
	return keys, nil
}
