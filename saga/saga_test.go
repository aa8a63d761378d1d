package saga

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParticipantsAreUniqueAndComplete(t *testing.T) {
	ps := Participants()
	require.NotEmpty(t, ps, "the table lists participants")
	names, ports, dbs := map[string]bool{}, map[int]bool{}, map[string]bool{}
	for _, p := range ps {
		assert.False(t, names[p.Name], "name %s listed once", p.Name)
		assert.False(t, ports[p.Port], "port %d used once", p.Port)
		assert.False(t, dbs[p.Database], "database %s used once", p.Database)
		names[p.Name], ports[p.Port], dbs[p.Database] = true, true, true
	}
	o, ok := Lookup("order-service")
	require.True(t, ok)
	assert.Equal(t, "ORDER_SERVICE_URL", o.URLVar())
	assert.Equal(t, "http://127.0.0.1:3001", o.DefaultURL())
	assert.Equal(t, "/api/orders/42/timeline", o.TimelinePath("42"))
}

func TestParseRejectsMalformedLines(t *testing.T) {
	for name, in := range map[string]string{
		"two columns":          "a 1\n",
		"three columns":        "a 1 db\n",
		"bad port":             "a x db /t/{id}\n",
		"port zero":            "a 0 db /t/{id}\n",
		"upper-case name":      "Order 1 db /t/{id}\n",
		"name with a slash":    "a/b 1 db /t/{id}\n",
		"database with a dash": "a 1 my-db /t/{id}\n",
		"timeline without id":  "a 1 db /t\n",
		"timeline relative":    "a 1 db t/{id}\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parse(in)
			assert.Error(t, err)
		})
	}
}

func TestParseReadsTheColumns(t *testing.T) {
	ps, err := parse("# a comment\n\ninventory-service\t3003\tinventory\t/api/stock/{id}/timeline\n")
	require.NoError(t, err)
	assert.Equal(t, []Participant{{Name: "inventory-service", Port: 3003, Database: "inventory", Timeline: "/api/stock/{id}/timeline"}}, ps)
	assert.Equal(t, "INVENTORY_SERVICE_URL", ps[0].URLVar())
}
