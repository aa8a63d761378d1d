-- name: InboxClaim :execrows
-- One row means the message is new to this consumer; zero, already handled.
-- attempt and last_error say how it was handled (after retries or not);
-- body is NULL but for a command (migration 00005).
INSERT INTO inbox (consumer, message_id, message_type, correlation_id, detail, attempt, last_error, body)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (consumer, message_id) DO NOTHING;

-- name: InboxClaimBatch :many
-- Claims several messages in one round trip and returns those new to this
-- consumer. The caller passes distinct ids, sorted, so that two batches
-- sharing messages lock them in the same order and cannot deadlock.
INSERT INTO inbox (consumer, message_id, message_type, correlation_id, detail, attempt, last_error, body)
SELECT @consumer::text, unnest(@message_ids::text[]), unnest(@message_types::text[]),
    unnest(@correlation_ids::text[]), unnest(@details::text[]), unnest(@attempts::smallint[]),
    unnest(@last_errors::text[]), unnest(@bodies::bytea[])
ON CONFLICT (consumer, message_id) DO NOTHING
RETURNING message_id;

-- name: OutboxAdd :exec
INSERT INTO outbox (message_id, message_type, exchange, correlation_id, causation_id, body, created_at, traceparent, tracestate)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (message_id) DO NOTHING;

-- name: OutboxAddBatch :exec
-- OutboxAdd for several messages in one round trip.
INSERT INTO outbox (message_id, message_type, exchange, correlation_id, causation_id, body, created_at, traceparent, tracestate)
SELECT unnest(@message_ids::uuid[]), unnest(@message_types::text[]), unnest(@exchanges::text[]),
    unnest(@correlation_ids::text[]), unnest(@causation_ids::text[]), unnest(@bodies::bytea[]),
    unnest(@created_ats::timestamptz[]), unnest(@traceparents::text[]), unnest(@tracestates::text[])
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
-- Parked rows are not claimed (OutboxPark).
WITH claimed AS (
    SELECT id FROM outbox
    WHERE published_at IS NULL AND parked_at IS NULL AND created_at < @before::timestamptz
    ORDER BY id
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
UPDATE outbox o SET published_at = now()
FROM claimed
WHERE o.id = claimed.id
RETURNING o.id, o.message_id, o.message_type, o.exchange, o.correlation_id, o.causation_id, o.body, o.created_at,
    o.traceparent, o.tracestate;

-- name: OutboxMarkPublished :exec
-- Marks rows that Relay.Dispatch published; a row a relay claimed and
-- published meanwhile keeps its mark, and a parked row stays parked. The
-- conditions are those of the partial index outbox_pending: without them
-- the generic plan of this prepared statement scanned the whole table on
-- every dispatch, a cost that grew with the table.
UPDATE outbox SET published_at = now()
WHERE message_id = ANY(@message_ids::uuid[]) AND published_at IS NULL AND parked_at IS NULL;

-- name: OutboxPark :many
-- Sets rows aside that the broker cannot route, each with its reason, so
-- that the relay no longer claims them (un-parking: see migration 00003).
-- published_at is cleared: a row the calling poll claimed is not published.
-- It returns only the rows it parked, not those parked already, so that
-- each is logged once.
UPDATE outbox o SET parked_at = now(), park_reason = p.reason, published_at = NULL
FROM (SELECT unnest(@message_ids::uuid[]) AS message_id, unnest(@reasons::text[]) AS reason) p
WHERE o.message_id = p.message_id AND o.parked_at IS NULL
RETURNING o.message_id, o.message_type, o.exchange, p.reason::text AS reason;

-- name: OutboxBacklog :one
-- Rows still to publish, the oldest one's time, and parked rows.
SELECT count(*)::bigint AS rows, coalesce(min(created_at), now())::timestamptz AS oldest,
    (SELECT count(*) FROM outbox p WHERE p.parked_at IS NOT NULL)::bigint AS parked
FROM outbox
WHERE published_at IS NULL AND parked_at IS NULL;

-- name: OutboxPrunePublished :execrows
-- Deletes at most @max_rows rows published before @before, found through
-- the index of published rows, oldest first. Unpublished rows, parked ones
-- included, are never pruned. SKIP LOCKED lets the pruners of several
-- instances share the work; ANY(ARRAY(...)) keeps the delete on the
-- primary key (an IN (subquery) may be planned as a scan of the table).
DELETE FROM outbox
WHERE id = ANY(ARRAY(
    SELECT id FROM outbox
    WHERE published_at < @before::timestamptz
    ORDER BY published_at
    LIMIT @max_rows::int
    FOR UPDATE SKIP LOCKED
));

-- name: InboxPrune :execrows
-- Deletes at most @max_rows inbox rows handled before @before, oldest
-- first, through the index on processed_at; like OutboxPrunePublished.
-- The rows are found again by their ctid (inbox rows are never updated,
-- and these are locked): a join on the key may be planned as a scan.
DELETE FROM inbox
WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM inbox
    WHERE processed_at < @before::timestamptz
    ORDER BY processed_at
    LIMIT @max_rows::int
    FOR UPDATE SKIP LOCKED
));

-- name: TimelineReceived :many
SELECT message_id, message_type, detail, processed_at, attempt, last_error, body
FROM inbox
WHERE correlation_id = $1
ORDER BY processed_at;

-- name: TimelinePublished :many
SELECT message_id, message_type, exchange, causation_id, body, created_at, published_at, traceparent
FROM outbox
WHERE correlation_id = $1
ORDER BY created_at;
