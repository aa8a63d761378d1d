-- Parking and retention.
--
-- A row that the broker cannot route (returned as unroutable, or for an
-- exchange that does not exist) is parked: parked_at and park_reason are
-- set and the relay no longer claims it, so it cannot hold up the rows
-- behind it. Its published_at stays NULL, so retention never prunes it.
-- An operator un-parks rows, once their route exists, with
--     UPDATE outbox SET parked_at = NULL, park_reason = NULL WHERE parked_at IS NOT NULL;
-- and the relay's next poll publishes them.
--
-- Retention (MESSAGE_RETENTION) prunes published outbox rows and handled
-- inbox rows in small batches, each found through an index by its time.
--
-- The indexes are built CONCURRENTLY, outside a transaction: tables that
-- were never pruned may be large, and a plain CREATE INDEX would hold up
-- every handler's writes until it is done. IF [NOT] EXISTS lets a start
-- that failed half-way be run again.

-- +goose NO TRANSACTION

-- +goose Up
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS parked_at timestamptz, ADD COLUMN IF NOT EXISTS park_reason text;

-- The relay scans only what it may still publish: unpublished and not parked.
CREATE INDEX CONCURRENTLY IF NOT EXISTS outbox_pending ON outbox (id) WHERE published_at IS NULL AND parked_at IS NULL;
DROP INDEX CONCURRENTLY IF EXISTS outbox_unpublished;
CREATE INDEX CONCURRENTLY IF NOT EXISTS outbox_parked ON outbox (id) WHERE parked_at IS NOT NULL;

CREATE INDEX CONCURRENTLY IF NOT EXISTS outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;
CREATE INDEX CONCURRENTLY IF NOT EXISTS inbox_processed ON inbox (processed_at);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS inbox_processed;
DROP INDEX CONCURRENTLY IF EXISTS outbox_published;
CREATE INDEX CONCURRENTLY IF NOT EXISTS outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
DROP INDEX CONCURRENTLY IF EXISTS outbox_parked;
DROP INDEX CONCURRENTLY IF EXISTS outbox_pending;
ALTER TABLE outbox DROP COLUMN IF EXISTS park_reason, DROP COLUMN IF EXISTS parked_at;
