package compose

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/saga"
)

// definitions is the part of a RabbitMQ definitions file that ordersaga
// writes (deploy/rabbitmq/definitions.json).
type definitions struct {
	VHosts []struct {
		Name string `json:"name"`
	} `json:"vhosts"`
	Users []struct {
		Name     string   `json:"name"`
		Password string   `json:"password"`
		Tags     []string `json:"tags"`
	} `json:"users"`
	Permissions []permission `json:"permissions"`
	Exchanges   []struct {
		Name       string         `json:"name"`
		VHost      string         `json:"vhost"`
		Type       string         `json:"type"`
		Durable    bool           `json:"durable"`
		AutoDelete bool           `json:"auto_delete"`
		Internal   bool           `json:"internal"`
		Arguments  map[string]any `json:"arguments"`
	} `json:"exchanges"`
}

type permission struct {
	User      string `json:"user"`
	VHost     string `json:"vhost"`
	Configure string `json:"configure"`
	Write     string `json:"write"`
	Read      string `json:"read"`
}

func readDefinitions(t *testing.T, root string) (definitions, map[string]any) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "deploy/rabbitmq/definitions.json"))
	require.NoError(t, err)
	var defs definitions
	require.NoError(t, json.Unmarshal(raw, &defs), "definitions.json parses")
	var doc map[string]any
	require.NoError(t, json.Unmarshal(raw, &doc))
	return defs, doc
}

func (d definitions) password(user string) (string, bool) {
	for _, u := range d.Users {
		if u.Name == user {
			return u.Password, true
		}
	}
	return "", false
}

func (d definitions) permission(user string) (permission, bool) {
	for _, p := range d.Permissions {
		if p.User == user {
			return p, true
		}
	}
	return permission{}, false
}

// services are those that declare a part of the topology at start-up
// (their main.go): the gateway and every participant.
func services() []string {
	names := []string{"gateway"}
	for _, p := range saga.Participants() {
		names = append(names, p.Name)
	}
	return names
}

// rights are the resource names on which a broker user needs each
// permission to do what its service does, derived from the topology it
// declares (RabbitMQ's authorisation table: declaring a queue with a
// dead-letter exchange needs read on the queue and write on the exchange,
// binding needs write on the queue and read on the exchange).
type rights struct{ configure, write, read map[string]bool }

func needs(t events.Topology) rights {
	r := rights{map[string]bool{}, map[string]bool{}, map[string]bool{}}
	for _, e := range t.Exchanges {
		if !e.IfMissing {
			r.configure[e.Name] = true // declares it
			r.write[e.Name] = true     // publishes to it
		}
	}
	for _, q := range t.Queues {
		// Another's queue is only checked, unless its consumer is not
		// deployed yet: its producer then declares it in full (saga.conf).
		if consumer, _, _ := strings.Cut(q.Name, "."); q.IfMissing && slices.Contains(services(), consumer) {
			continue
		}
		r.configure[q.Name] = true
		r.configure[events.DeadLetterQueue(q.Name)] = true
		r.read[q.Name] = true  // consumes it; its dead-letter exchange
		r.write[q.Name] = true // binds it
		// Its own and its retry queues' dead-letter exchange is the
		// default one, which is also how the consumer republishes to the
		// retry tiers and the dead-letter queue.
		r.write["amq.default"] = true
		for i := range rabbit.RetryDelays {
			r.configure[rabbit.RetryQueue(q.Name, i)] = true
			r.read[rabbit.RetryQueue(q.Name, i)] = true
		}
		for _, b := range q.Bindings {
			r.read[b.Exchange] = true
		}
	}
	return r
}

// resources are the names a permission could be asked about: every
// exchange and queue of the saga, the broker's own exchanges (the default
// exchange is checked as amq.default, never as ""), and look-alikes that a
// loose pattern would let in.
func resources() []string {
	names := []string{"amq.default", "amq.direct", "amq.topic", "amq.fanout", "amq.headers", "amq.match",
		"amq.rabbitmq.trace", "x", "orders", "orders.commands.x", "xorders.events", "payments.events.dlq",
		"order-service", "order-service.other", "order-service.commands.other", "order-service.commands.dlq.x",
		"payment-service.order-events.retry.1s.x", "gateway", "gateway.commands"}
	for _, e := range saga.Topology().Exchanges {
		names = append(names, e.Name)
	}
	for _, q := range saga.Topology().Queues {
		names = append(names, q.Name, events.DeadLetterQueue(q.Name))
		for i := range rabbit.RetryDelays {
			names = append(names, rabbit.RetryQueue(q.Name, i))
		}
	}
	return names
}

// TestBrokerDefinitions checks deploy/rabbitmq against the compose file and
// the code: a user per service, permissions that grant exactly what its
// declared topology needs, and the saga's exchanges.
func TestBrokerDefinitions(t *testing.T) {
	p := load(t)
	root := filepath.Dir(p.ComposeFiles[0])
	defs, _ := readDefinitions(t, root)

	require.Len(t, defs.VHosts, 1)
	assert.Equal(t, "/", defs.VHosts[0].Name, "the one vhost the services' AMQP_URLs name")
	_, guest := defs.password("guest")
	assert.False(t, guest, "no guest user")
	for _, perm := range defs.Permissions {
		assert.Equal(t, "/", perm.VHost, "permission of %s", perm.User)
		_, ok := defs.password(perm.User)
		assert.True(t, ok, "permission of %s is for a defined user", perm.User)
	}

	admin, ok := defs.permission("admin")
	require.True(t, ok, "an operator user for sagactl and the management UI")
	assert.Equal(t, permission{User: "admin", VHost: "/", Configure: ".*", Write: ".*", Read: ".*"}, admin)
	for _, u := range defs.Users {
		if u.Name == "admin" {
			assert.Equal(t, []string{"administrator"}, u.Tags)
		} else {
			assert.Empty(t, u.Tags, "%s has no management access", u.Name)
		}
	}

	for _, service := range services() {
		t.Run(service, func(t *testing.T) {
			s, err := p.GetService(service)
			require.NoError(t, err)
			u, err := url.Parse(*s.Environment["AMQP_URL"])
			require.NoError(t, err)
			want, ok := defs.password(service)
			require.True(t, ok, "definitions.json has a user %s", service)
			got, _ := u.User.Password()
			assert.Equal(t, want, got, "%s's AMQP_URL has its user's password", service)
			assert.Contains(t, []string{"", "/"}, u.Path, "%s's AMQP_URL names the default vhost", service)

			main, err := os.ReadFile(filepath.Join(root, "apps", service, "main.go"))
			require.NoError(t, err)
			assert.Contains(t, string(main), `saga.TopologyOf("`+service+`")`, "%s declares its own part of the topology", service)

			perm, ok := defs.permission(service)
			require.True(t, ok, "%s has permissions", service)
			need := needs(saga.TopologyOf(service))
			for _, c := range []struct {
				kind    string
				pattern string
				need    map[string]bool
			}{{"configure", perm.Configure, need.configure}, {"write", perm.Write, need.write}, {"read", perm.Read, need.read}} {
				// RabbitMQ matches the pattern anywhere in the name, as
				// MatchString does: a pattern must be anchored.
				re, err := regexp.Compile(c.pattern)
				require.NoError(t, err, "%s %s pattern", service, c.kind)
				var granted, needed []string
				for _, name := range resources() {
					if re.MatchString(name) {
						granted = append(granted, name)
					}
					if c.need[name] {
						needed = append(needed, name)
					}
				}
				assert.Equal(t, needed, granted, "%s: %s permission granted on exactly what its topology needs", service, c.kind)
				for name := range c.need {
					assert.True(t, slices.Contains(resources(), name), "%s is among the names checked", name)
				}
			}
		})
	}

	want := map[string]string{}
	for _, e := range saga.Topology().Exchanges {
		want[e.Name] = e.Kind
	}
	got := map[string]string{}
	for _, e := range defs.Exchanges {
		got[e.Name] = e.Type
		assert.Equal(t, "/", e.VHost)
		assert.True(t, e.Durable && !e.AutoDelete && !e.Internal && len(e.Arguments) == 0,
			"%s is declared as rabbit.Declare declares it, or a service's declare would be refused as inequivalent", e.Name)
	}
	assert.Equal(t, want, got, "the saga's exchanges exist from the start, so no service needs rights on another's")
}

// TestBrokerConfiguration checks the files mounted into the rabbitmq
// container.
func TestBrokerConfiguration(t *testing.T) {
	p := load(t)
	root := filepath.Dir(p.ComposeFiles[0])
	mq, err := p.GetService("rabbitmq")
	require.NoError(t, err)
	mounts := map[string]string{}
	for _, v := range mq.Volumes {
		if v.Type == types.VolumeTypeBind {
			rel, err := filepath.Rel(root, v.Source)
			require.NoError(t, err)
			mounts[v.Target] = filepath.ToSlash(rel)
			_, err = os.Stat(v.Source)
			assert.NoError(t, err, "mounted file %s exists", rel)
			assert.True(t, v.ReadOnly, "%s is mounted read-only", rel)
		}
	}
	// conf.d files are read after the image's 10-defaults.conf and win.
	assert.Equal(t, "deploy/rabbitmq/rabbitmq.conf", mounts["/etc/rabbitmq/conf.d/20-ordersaga.conf"])
	assert.Equal(t, "deploy/rabbitmq/definitions.json", mounts["/etc/rabbitmq/definitions.json"])
	assert.Equal(t, "deploy/rabbitmq/enabled_plugins", mounts["/etc/rabbitmq/enabled_plugins"])

	conf, err := os.ReadFile(filepath.Join(root, "deploy/rabbitmq/rabbitmq.conf"))
	require.NoError(t, err)
	settings := map[string]string{}
	for _, line := range strings.Split(string(conf), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(strings.TrimSpace(line), "#") {
			settings[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	assert.Equal(t, "/etc/rabbitmq/definitions.json", settings["load_definitions"], "the definitions are loaded at boot")
	assert.Equal(t, "true", settings["loopback_users.guest"], "a leftover guest cannot log in over the network")

	plugins, err := os.ReadFile(filepath.Join(root, "deploy/rabbitmq/enabled_plugins"))
	require.NoError(t, err)
	assert.Equal(t, "[rabbitmq_management,rabbitmq_prometheus].", strings.TrimSpace(string(plugins)))
}
