// Package db holds the SQL of ordersaga: each schema owner's goose migrations
// (embedded here, applied by the services at start-up) and the sqlc code
// generated from its queries (orderdb, paymentdb, messagingdb).
package db

import (
	"embed"
	"io/fs"
)

//go:embed order/migrations/*.sql payment/migrations/*.sql messaging/migrations/*.sql
var migrations embed.FS

// Migrations are the migrations of one schema owner, with the name of the
// goose version table that tracks them.
type Migrations struct {
	FS    fs.FS
	Table string
}

func sub(dir, table string) Migrations {
	f, err := fs.Sub(migrations, dir)
	if err != nil {
		// The directories are embedded above; a failure here is a build defect.
		panic(err)
	}
	return Migrations{FS: f, Table: table}
}

// Order is the order service's schema.
func Order() Migrations { return sub("order/migrations", "goose_db_version") }

// Payment is the payment service's schema.
func Payment() Migrations { return sub("payment/migrations", "goose_db_version") }

// Messaging is the outbox and inbox schema that every service database carries.
func Messaging() Migrations { return sub("messaging/migrations", "goose_messaging_version") }
