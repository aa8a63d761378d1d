package asyncapi_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/saga"
	"github.com/ordersaga/ordersaga/saga/asyncapi"
)

// TestDocumentIsCurrent fails when docs/asyncapi.json is not what the
// message contract generates: a message type, field or consumer changed
// without regenerating it.
func TestDocumentIsCurrent(t *testing.T) {
	want, err := asyncapi.Document()
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join("..", "..", asyncapi.Path))
	require.NoError(t, err, "the document is missing: go run ./saga/cmd/asyncapi")
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: run `go run ./saga/cmd/asyncapi` from the repository's root and commit it", asyncapi.Path)
	}
}

// TestDocumentCoversTheRegistry: every message type of libs/events is a
// message of the document, on its exchange's channel, with every JSON field
// of its payload; every queue of saga.conf receives its types.
func TestDocumentCoversTheRegistry(t *testing.T) {
	raw, err := asyncapi.Document()
	require.NoError(t, err)
	var doc struct {
		AsyncAPI string `json:"asyncapi"`
		Channels map[string]struct {
			Address  string                       `json:"address"`
			Messages map[string]map[string]string `json:"messages"`
		} `json:"channels"`
		Operations map[string]struct {
			Action   string              `json:"action"`
			Messages []map[string]string `json:"messages"`
		} `json:"operations"`
		Components struct {
			Messages map[string]struct {
				Name    string            `json:"name"`
				Payload map[string]string `json:"payload"`
			} `json:"messages"`
			Schemas map[string]struct {
				Properties map[string]any `json:"properties"`
				Required   []string       `json:"required"`
			} `json:"schemas"`
		} `json:"components"`
	}
	require.NoError(t, json.Unmarshal(raw, &doc))
	assert.Equal(t, "3.0.0", doc.AsyncAPI)
	byType := map[string]string{} // message type → component name
	for name, m := range doc.Components.Messages {
		byType[m.Name] = name
	}
	for _, typ := range events.Types() {
		name, ok := byType[typ]
		if !assert.True(t, ok, "message type %s is not in the document", typ) {
			continue
		}
		ch := doc.Channels[events.ExchangeOf(typ)]
		assert.Contains(t, ch.Messages, name, "%s on channel %s", typ, events.ExchangeOf(typ))
		// The fields a zero payload has are those never omitted: the
		// required ones.
		fields := jsonFields(t, events.Prototype(typ))
		sc := doc.Components.Schemas[name]
		for _, f := range fields {
			assert.Contains(t, sc.Properties, f, "%s: field %s", typ, f)
		}
		required := append([]string(nil), sc.Required...)
		sort.Strings(required)
		assert.Equal(t, fields, required, "%s: the required fields", typ)
	}
	assert.Len(t, doc.Components.Messages, len(events.Types()), "no message outside the registry")
	received := map[string]int{}
	for _, op := range doc.Operations {
		if op.Action == "receive" {
			for range op.Messages {
				received["any"]++
			}
		}
	}
	want := 0
	for _, s := range saga.Subscriptions() {
		want += len(s.Types)
	}
	assert.Equal(t, want, received["any"], "every binding of saga.conf is a received message")
}

// jsonFields are the top-level JSON field names of a zero payload, sorted.
func jsonFields(t *testing.T, p events.Payload) []string {
	t.Helper()
	b, err := json.Marshal(p)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
