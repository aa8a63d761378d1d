// Package db holds the SQL of ordersaga: each schema owner's goose migrations
// (embedded here, applied by the services at start-up) and the sqlc code
// generated from its queries (orderdb, paymentdb, messagingdb). A schema is
// a directory <name>/migrations; a new one needs no edit here.
package db

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
)

//go:embed */migrations/*.sql
var migrations embed.FS

// messaging is the schema every service database carries beside its own.
const messaging = "messaging"

// Migrations are the migrations of one schema owner, with the name of the
// goose version table that tracks them.
type Migrations struct {
	FS    fs.FS
	Table string
}

// Schema returns the migrations of db/<name>/migrations. A service's own
// schema is tracked in goose_db_version; the messaging schema, which every
// service database also carries, in goose_messaging_version, so the two
// sets of versions never mix.
func Schema(name string) (Migrations, error) {
	dir := path.Join(name, "migrations")
	if !fs.ValidPath(dir) || path.Dir(dir) != name || name == "." {
		return Migrations{}, fmt.Errorf("schema %q: want the name of a directory of db/", name)
	}
	files, err := fs.Glob(migrations, dir+"/*.sql")
	if err != nil || len(files) == 0 {
		return Migrations{}, fmt.Errorf("schema %q: no migrations embedded at db/%s/*.sql", name, dir)
	}
	f, err := fs.Sub(migrations, dir)
	if err != nil {
		return Migrations{}, fmt.Errorf("schema %q: %w", name, err)
	}
	table := "goose_db_version"
	if name == messaging {
		table = "goose_messaging_version"
	}
	return Migrations{FS: f, Table: table}, nil
}

// MustSchema is Schema for the names a service compiles in: a missing
// directory is a build defect, found by the service's first test.
func MustSchema(name string) Migrations {
	m, err := Schema(name)
	if err != nil {
		panic(err)
	}
	return m
}

// Order is the order service's schema.
func Order() Migrations { return MustSchema("order") }

// Payment is the payment service's schema.
func Payment() Migrations { return MustSchema("payment") }

// Messaging is the outbox and inbox schema that every service database carries.
func Messaging() Migrations { return MustSchema(messaging) }
