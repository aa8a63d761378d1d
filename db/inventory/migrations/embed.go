// Package migrations embeds the inventory service's goose migrations.
package migrations

import "embed"

// FS holds the migrations, at its root.
//
//go:embed *.sql
var FS embed.FS
