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
}

func TestParseRejectsMalformedLines(t *testing.T) {
	for name, in := range map[string]string{
		"two columns": "a 1\n",
		"bad port":    "a x db\n",
		"port zero":   "a 0 db\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parse(in)
			assert.Error(t, err)
		})
	}
}
