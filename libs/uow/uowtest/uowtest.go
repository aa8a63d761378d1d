// Package uowtest helps the tests of the services whose handlers run in
// units of work (package uow): the delivery a consumer would hand a
// handler, and what the handlers wrote to the outbox.
package uowtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/rabbit"
)

// Delivery is payload as a consumer receives it at its first attempt, in
// the saga that correlationID names.
func Delivery(t testing.TB, correlationID string, payload events.Payload) rabbit.Delivery {
	t.Helper()
	m, err := events.NewMessage(payload, correlationID)
	if err != nil {
		t.Fatalf("message of %T: %v", payload, err)
	}
	return rabbit.Delivery{MessageID: m.ID.String(), Type: m.Type, CorrelationID: m.CorrelationID,
		Timestamp: m.Timestamp, Body: m.Body, Attempt: 1}
}

// Emitted lists the types of the messages written to the outbox of pool in
// the saga that correlationID names, in the order they were written.
func Emitted(t testing.TB, pool *pgxpool.Pool, correlationID string) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), "SELECT message_type FROM outbox WHERE correlation_id = $1 ORDER BY id", correlationID)
	if err != nil {
		t.Fatalf("read the outbox: %v", err)
	}
	defer rows.Close()
	var types []string
	for rows.Next() {
		var typ string
		if err := rows.Scan(&typ); err != nil {
			t.Fatalf("read the outbox: %v", err)
		}
		types = append(types, typ)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read the outbox: %v", err)
	}
	return types
}
