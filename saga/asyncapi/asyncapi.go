// Package asyncapi writes the AsyncAPI 3 document of ordersaga's messages
// (docs/asyncapi.json) from the message contract (libs/events: exchanges,
// types, payload structs) and saga.conf (who publishes and who consumes
// what). Regenerate it with `go run ./saga/cmd/asyncapi`; its test fails
// when the committed document is stale.
package asyncapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/saga"
)

// Path is the document's place in the repository.
const Path = "docs/asyncapi.json"

type object = map[string]any

// Document is the AsyncAPI 3.0 document, as indented JSON (YAML readers
// take it too).
func Document() ([]byte, error) {
	channels, messages, schemas := object{}, object{}, object{}
	for _, e := range events.Exchanges() {
		chMessages := object{}
		for _, typ := range events.Types() {
			if events.ExchangeOf(typ) != e.Name {
				continue
			}
			p := events.Prototype(typ)
			name := reflect.TypeOf(p).Elem().Name()
			if _, dup := messages[name]; dup {
				return nil, fmt.Errorf("two message types of payload %s", name)
			}
			schemas[name] = schema(reflect.TypeOf(p).Elem(), schemas)
			messages[name] = message(typ, name)
			chMessages[name] = ref("#/components/messages/" + name)
		}
		channels[e.Name] = object{
			"address":     e.Name,
			"title":       e.Name,
			"description": fmt.Sprintf("The %s exchange %s (contract §4); the routing key is the message type.", e.Kind, e.Name),
			"messages":    chMessages,
			"bindings": object{"amqp": object{
				"is":       "routingKey",
				"exchange": object{"name": e.Name, "type": e.Kind, "durable": true, "autoDelete": false, "vhost": "/"},
			}},
		}
	}
	doc := object{
		"asyncapi": "3.0.0",
		"info": object{
			"title":       "ordersaga messages",
			"version":     fmt.Sprintf("%d", events.SchemaVersion),
			"description": "Every message of ordersaga's saga (contract §4-§8), generated from libs/events and saga/saga.conf by `go run ./saga/cmd/asyncapi`. Do not edit by hand.",
			"license":     object{"name": "Apache-2.0"},
		},
		"defaultContentType": "application/json",
		"servers": object{"rabbitmq": object{
			"host": "127.0.0.1:5672", "protocol": "amqp", "protocolVersion": "0-9-1",
			"description": "AMQP_URL (contract §1); every service has its own user (deploy/rabbitmq/definitions.json).",
		}},
		"channels":   channels,
		"operations": operations(),
		"components": object{"messages": messages, "schemas": schemas, "messageTraits": object{"amqp": trait()}},
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func ref(to string) object { return object{"$ref": to} }

// message is the component of message type typ with payload name.
func message(typ, name string) object {
	return object{
		"name":        typ,
		"title":       typ,
		"summary":     fmt.Sprintf("%s: payload %s, routing key and AMQP type %q.", typ, name, typ),
		"contentType": "application/json",
		"payload":     ref("#/components/schemas/" + name),
		"traits":      []any{ref("#/components/messageTraits/amqp")},
		"bindings":    object{"amqp": object{"messageType": typ}},
	}
}

// trait is what every message carries besides its body (contract §4).
func trait() object {
	str := object{"type": "string"}
	return object{
		"headers": object{
			"type": "object",
			"properties": object{
				"x-schema-version": object{"type": "integer", "const": events.SchemaVersion},
				"x-causation-id":   object{"type": "string", "description": "the message_id of the message that caused this one"},
			},
			"required": []string{"x-schema-version"},
		},
		"correlationId": object{
			"description": "the order id of the saga (correlation_id); for product and stock commands the product's",
			"location":    "$message.header#/correlation_id",
		},
		"description": "AMQP properties: message_id (UUID, stable across re-publishes), type (the message type), correlation_id, app_id (the publishing service), timestamp, content_type application/json, persistent delivery.",
		"x-amqp-properties": object{
			"message_id": str, "type": str, "correlation_id": str, "app_id": str,
		},
	}
}

// operations are saga.conf's publishers (send) and work queues (receive).
func operations() object {
	ops := object{}
	for _, e := range events.Exchanges() {
		if pub := saga.Publisher(e.Name); pub != "" {
			ops[pub+".send."+e.Name] = object{
				"action":  "send",
				"channel": ref("#/channels/" + e.Name),
				"summary": fmt.Sprintf("%s publishes to %s (mandatory, confirmed).", pub, e.Name),
			}
		}
	}
	for _, s := range saga.Subscriptions() {
		// A queue may be bound to several exchanges: one operation each.
		var exchanges []string
		byExchange := map[string][]any{}
		for _, typ := range s.Types {
			e := events.ExchangeOf(typ)
			if byExchange[e] == nil {
				exchanges = append(exchanges, e)
			}
			name := reflect.TypeOf(events.Prototype(typ)).Elem().Name()
			byExchange[e] = append(byExchange[e], ref("#/channels/"+e+"/messages/"+name))
		}
		for _, e := range exchanges {
			ops[s.Queue+".receive."+e] = object{
				"action":   "receive",
				"channel":  ref("#/channels/" + e),
				"messages": byExchange[e],
				"summary":  fmt.Sprintf("%s consumes queue %s, bound to %s.", s.Consumer, s.Queue, strings.Join(s.Types, ", ")),
				"bindings": object{"amqp": object{"ack": true}},
			}
		}
	}
	return ops
}

var (
	uuidType = reflect.TypeOf(uuid.UUID{})
	timeType = reflect.TypeOf(time.Time{})
)

// schema is the JSON Schema of t as encoding/json writes it; named structs
// other than the payload itself go into schemas and are referenced.
func schema(t reflect.Type, schemas object) object {
	switch t {
	case uuidType:
		return object{"type": "string", "format": "uuid"}
	case timeType:
		return object{"type": "string", "format": "date-time"}
	}
	switch t.Kind() {
	case reflect.String:
		return object{"type": "string"}
	case reflect.Bool:
		return object{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return object{"type": "integer", "format": "int64"}
	case reflect.Float32, reflect.Float64:
		return object{"type": "number"}
	case reflect.Slice, reflect.Array:
		return object{"type": "array", "items": schema(t.Elem(), schemas)}
	case reflect.Map:
		return object{"type": "object", "additionalProperties": schema(t.Elem(), schemas)}
	case reflect.Pointer:
		s := schema(t.Elem(), schemas)
		return object{"oneOf": []any{s, object{"type": "null"}}}
	case reflect.Struct:
		return structSchema(t, schemas)
	}
	panic(fmt.Sprintf("asyncapi: no schema for %s", t))
}

// structSchema is a struct's object schema: its JSON fields, those of
// embedded structs inlined, required unless omitempty.
func structSchema(t reflect.Type, schemas object) object {
	props, required := object{}, []string{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" || !f.IsExported() && !f.Anonymous {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
				walk(f.Type)
				continue
			}
			if name == "" {
				name = f.Name
			}
			props[name] = fieldSchema(f.Type, schemas)
			if !strings.Contains(opts, "omitempty") && f.Type.Kind() != reflect.Pointer {
				required = append(required, name)
			}
		}
	}
	walk(t)
	return object{"type": "object", "properties": props, "required": required}
}

// fieldSchema is schema, with a named struct of a field (a line type) as a
// component referenced by name.
func fieldSchema(t reflect.Type, schemas object) object {
	inner := t
	for inner.Kind() == reflect.Slice || inner.Kind() == reflect.Pointer {
		inner = inner.Elem()
	}
	if inner.Kind() != reflect.Struct || inner == uuidType || inner == timeType || inner.Name() == "" {
		return schema(t, schemas)
	}
	if _, ok := schemas[inner.Name()]; !ok {
		schemas[inner.Name()] = structSchema(inner, schemas)
	}
	r := ref("#/components/schemas/" + inner.Name())
	if t.Kind() == reflect.Slice {
		return object{"type": "array", "items": r}
	}
	return r
}
