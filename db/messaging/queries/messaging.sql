-- name: InboxClaim :execrows
-- One row means the message is new to this consumer; zero, already handled.
INSERT INTO inbox (consumer, message_id, message_type, correlation_id, detail)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (consumer, message_id) DO NOTHING;

-- name: InboxClaimBatch :many
-- Claims several messages in one round trip and returns those new to this
-- consumer. The caller passes distinct ids, sorted, so that two batches
-- sharing messages lock them in the same order and cannot deadlock.
INSERT INTO inbox (consumer, message_id, message_type, correlation_id, detail)
SELECT @consumer::text, unnest(@message_ids::text[]), unnest(@message_types::text[]),
    unnest(@correlation_ids::text[]), unnest(@details::text[])
ON CONFLICT (consumer, message_id) DO NOTHING
RETURNING message_id;

-- name: OutboxAdd :exec
INSERT INTO outbox (message_id, message_type, exchange, correlation_id, causation_id, body, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (message_id) DO NOTHING;

-- name: OutboxAddBatch :exec
-- OutboxAdd for several messages in one round trip.
INSERT INTO outbox (message_id, message_type, exchange, correlation_id, causation_id, body, created_at)
SELECT unnest(@message_ids::uuid[]), unnest(@message_types::text[]), unnest(@exchanges::text[]),
    unnest(@correlation_ids::text[]), unnest(@causation_ids::text[]), unnest(@bodies::bytea[]),
    unnest(@created_ats::timestamptz[])
ON CONFLICT (message_id) DO NOTHING;

-- name: OutboxClaim :many
-- Claims and marks a batch in one statement. The relay publishes the rows
-- before it commits and rolls back if that fails, so "published" is only
-- ever true of confirmed rows; meanwhile the row locks make other relays
-- skip them (SKIP LOCKED), so several relays share the table.
-- The CTE keeps the plan on the partial index of unpublished rows however
-- large the table of published ones grows (an IN (subquery) was planned as
-- a scan of the whole table at some sizes).
-- Rows written after @before are left to the dispatch of the instance that
-- wrote them (Relay.Dispatch), which normally publishes them at once.
WITH claimed AS (
    SELECT id FROM outbox
    WHERE published_at IS NULL AND created_at < @before::timestamptz
    ORDER BY id
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
UPDATE outbox o SET published_at = now()
FROM claimed
WHERE o.id = claimed.id
RETURNING o.id, o.message_id, o.message_type, o.exchange, o.correlation_id, o.causation_id, o.body, o.created_at;

-- name: OutboxMarkPublished :exec
-- Marks rows that Relay.Dispatch published; a row a relay claimed and
-- published meanwhile keeps its mark.
UPDATE outbox SET published_at = now()
WHERE message_id = ANY(@message_ids::uuid[]) AND published_at IS NULL;

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
