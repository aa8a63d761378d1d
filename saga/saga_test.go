package saga

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParticipantsAreUniqueAndComplete(t *testing.T) {
	ps := Participants()
	require.NotEmpty(t, ps, "saga.conf lists participants")
	o, ok := Lookup("order-service")
	require.True(t, ok)
	assert.Equal(t, "ORDER_SERVICE_URL", o.URLVar())
	assert.Equal(t, "http://127.0.0.1:3001", o.DefaultURL())
	assert.Equal(t, "/api/orders/42/timeline", o.TimelinePath("42"))
	_, ok = Lookup("gateway")
	assert.False(t, ok, "the gateway publishes but is no participant")
	// users-service takes no part in an order's saga: no timeline.
	u, ok := Lookup("users-service")
	require.True(t, ok)
	assert.False(t, u.HasTimeline())
	assert.Empty(t, u.TimelinePath("42"))
	assert.True(t, o.HasTimeline())
	assert.Equal(t, o.Timeline, o.MergedTimeline())
	// notification-service keeps a timeline for the console only.
	n, ok := Lookup("notification-service")
	require.True(t, ok)
	assert.Equal(t, "/api/notifications/order/42/timeline", n.TimelinePath("42"))
	assert.Equal(t, NoTimeline, n.MergedTimeline(), "the gateway leaves notification-service's timeline out")
}

func TestParseReadsTimelines(t *testing.T) {
	for _, tc := range []struct {
		name, timeline string
		has, merged    bool
		path           string
	}{
		{"a path", "/api/x/{id}/timeline", true, true, "/api/x/42/timeline"},
		{"the id last", "/x/{id}", true, true, "/x/42"},
		{"none", "-", false, false, ""},
		{"unmerged", "/x/{id} unmerged", true, false, "/x/42"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parse("participant a 1 db " + tc.timeline + "\n")
			require.NoError(t, err)
			require.Len(t, got.participants, 1)
			p := got.participants[0]
			assert.Equal(t, strings.TrimSuffix(tc.timeline, " unmerged"), p.Timeline)
			assert.Equal(t, tc.has, p.HasTimeline())
			assert.Equal(t, tc.merged, p.MergedTimeline() != NoTimeline, "the gateway merges it")
			assert.Equal(t, !tc.merged && tc.has, p.Unmerged)
			assert.Equal(t, tc.path, p.TimelinePath("42"))
		})
	}
}

func TestParseRejectsMalformedLines(t *testing.T) {
	const ok = "participant a 1 db /t/{id}\n"
	for _, tc := range []struct{ name, in, err string }{
		{"unknown line kind", ok + "consume a a.x order.created\n", `saga.conf:2: unknown line kind "consume"`},
		{"participant with two fields", "participant a 1\n", "saga.conf:1: want participant NAME PORT DATABASE TIMELINE"},
		{"participant with six fields", "participant a 1 db /t/{id} unmerged x\n", "saga.conf:1: want participant"},
		{"unknown flag", "participant a 1 db /t/{id} x\n", `saga.conf:1: bad flag "x"`},
		{"unmerged without a timeline", "participant a 1 db - unmerged\n", `saga.conf:1: bad flag "unmerged"`},
		{"bad port", "participant a x db /t/{id}\n", `saga.conf:1: bad port "x"`},
		{"port zero", "participant a 0 db /t/{id}\n", "bad port"},
		{"upper-case name", "participant Order 1 db /t/{id}\n", `bad name "Order"`},
		{"name with a slash", "participant a/b 1 db /t/{id}\n", "bad name"},
		{"database with a dash", "participant a 1 my-db /t/{id}\n", `bad database "my-db"`},
		{"timeline without id", "participant a 1 db /t\n", "bad timeline"},
		{"timeline relative", "participant a 1 db t/{id}\n", "bad timeline"},
		{"timeline with id twice", "participant a 1 db /t/{id}/{id}\n", "bad timeline"},
		{"timeline of two dashes", "participant a 1 db --\n", `bad timeline "--"`},
		{"timeline a dash in a path", "participant a 1 db /-\n", "bad timeline"},
		{"participant twice", ok + "\n# x\nparticipant a 2 db2 /t/{id}\n", "saga.conf:4: participant a already on line 1"},
		{"port twice", ok + "participant b 1 db2 /t/{id}\n", "saga.conf:2: port 1 already on line 1"},
		{"database twice", ok + "participant b 2 db /t/{id}\n", "saga.conf:2: database db already on line 1"},
		{"consumes without types", "consumes a a.x\n", "saga.conf:1: want consumes NAME QUEUE TYPE..."},
		{"queue of another consumer", "consumes a b.x order.created\n", `saga.conf:1: bad queue "b.x": want a.<source>`},
		{"queue without source", "consumes a a. order.created\n", `bad queue "a."`},
		{"unknown type", "consumes a a.x order.shipped\n", `saga.conf:1: a.x binds "order.shipped", not a message type`},
		{"wildcard", "consumes a a.x order.*\n", `binds "order.*"`},
		{"type twice", "consumes a a.x order.created order.created\n", "a.x binds order.created twice"},
		{"queue twice", "consumes a a.x order.created\nconsumes a a.x order.paid\n", "saga.conf:2: queue a.x already on line 1"},
		{"publishes without exchange", "publishes a\n", "saga.conf:1: want publishes NAME EXCHANGE..."},
		{"unknown exchange", "publishes a orders.evnts\n", `saga.conf:1: "orders.evnts" is not an exchange`},
		{"two publishers of one exchange", "publishes a orders.events\npublishes b orders.events\n", "saga.conf:2: publisher of orders.events already on line 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(tc.in)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.err)
		})
	}
}

func TestParseReadsTheLines(t *testing.T) {
	got, err := parse(`# a comment
participant inventory-service	3003 inventory /api/stock/{id}/timeline # trailing comment

publishes inventory-service payments.events
consumes inventory-service inventory-service.order-events order.created order.cancelled
# a consumer not deployed yet: its producer declares its queue
consumes notification-service notification-service.order-events order.paid
`)
	require.NoError(t, err)
	assert.Equal(t, []Participant{{Name: "inventory-service", Port: 3003, Database: "inventory", Timeline: "/api/stock/{id}/timeline"}}, got.participants)
	assert.Equal(t, map[string]string{"payments.events": "inventory-service"}, got.publishers)
	assert.Equal(t, []Subscription{
		{"inventory-service", "inventory-service.order-events", []string{"order.created", "order.cancelled"}},
		{"notification-service", "notification-service.order-events", []string{"order.paid"}},
	}, got.subscriptions)
}
