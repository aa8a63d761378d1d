package db

import (
	"io/fs"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSchemaFindsEveryMigrationsDirectory(t *testing.T) {
	for _, tc := range []struct{ name, table, first string }{
		{"order", "goose_db_version", "00001_orders.sql"},
		{"payment", "goose_db_version", "00001_payments.sql"},
		{"messaging", "goose_messaging_version", "00001_outbox_inbox.sql"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Schema(tc.name)
			require.NoError(t, err)
			assert.Equal(t, tc.table, m.Table)
			files, err := fs.Glob(m.FS, "*.sql")
			require.NoError(t, err)
			assert.Contains(t, files, tc.first, "the schema's files are at its root")
		})
	}
	assert.Equal(t, MustSchema("order"), Order())
	assert.Equal(t, MustSchema("payment"), Payment())
	assert.Equal(t, MustSchema("messaging"), Messaging())
}

func TestSchemaRejectsWhatIsNoSchema(t *testing.T) {
	for name, in := range map[string]string{
		"unknown":        "inventory",
		"empty":          "",
		"dot":            ".",
		"nested":         "order/migrations",
		"escaping":       "../order",
		"sqlc output":    "orderdb",
		"absolute path":  "/order",
		"trailing slash": "order/",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Schema(in)
			assert.Error(t, err)
		})
	}
	assert.Panics(t, func() { MustSchema("inventory") })
}
