-- name: InboxClaim :execrows
-- One row means the message is new to this consumer; zero, already handled.
INSERT INTO inbox (consumer, message_id, message_type, correlation_id, detail)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (consumer, message_id) DO NOTHING;

-- name: OutboxAdd :exec
INSERT INTO outbox (message_id, message_type, exchange, correlation_id, causation_id, body, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (message_id) DO NOTHING;

-- name: OutboxClaim :many
-- SKIP LOCKED lets several relays share the table without blocking each other.
SELECT id, message_id, message_type, exchange, correlation_id, causation_id, body, created_at
FROM outbox
WHERE published_at IS NULL
ORDER BY id
LIMIT $1
FOR UPDATE SKIP LOCKED;

-- name: OutboxMarkPublished :exec
UPDATE outbox SET published_at = now() WHERE id = ANY(@ids::bigint[]);

-- name: OutboxBacklog :one
SELECT count(*)::bigint AS rows, coalesce(min(created_at), now())::timestamptz AS oldest
FROM outbox
WHERE published_at IS NULL;

-- name: OutboxPrunePublished :execrows
DELETE FROM outbox WHERE published_at < @before::timestamptz;

-- name: TimelineReceived :many
SELECT message_id, message_type, detail, processed_at
FROM inbox
WHERE correlation_id = $1
ORDER BY processed_at;

-- name: TimelinePublished :many
SELECT message_id, message_type, body, created_at
FROM outbox
WHERE correlation_id = $1
ORDER BY created_at;
