-- name: CreateProduct :execrows
-- Zero rows: the sku exists already; the first create stands.
INSERT INTO products (sku, name, price, currency, on_hand, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, @now, @now)
ON CONFLICT (sku) DO NOTHING;

-- name: GetProduct :one
SELECT * FROM products WHERE sku = $1;

-- name: LockProduct :one
SELECT * FROM products WHERE sku = $1 FOR UPDATE;

-- name: LockProducts :many
-- Rows are locked in sku order (the sort runs below the lock), so
-- concurrent reservations of overlapping products never deadlock.
SELECT * FROM products WHERE sku = ANY(@skus::text[]) ORDER BY sku FOR UPDATE;

-- name: LockSkus :exec
-- Locks the products of skus in sku order, as LockProducts does, without
-- reading them: a consumer's transaction takes every lock its messages will
-- need with it, first (Service.LockStock). Its one result is its error, so
-- it can be sent with the statement after it (uow.Tx.Deferred).
SELECT sku FROM products WHERE sku = ANY(@skus::text[]) ORDER BY sku FOR UPDATE;

-- name: ListProducts :many
SELECT * FROM products ORDER BY sku LIMIT @row_limit OFFSET @row_offset;

-- name: CountProducts :one
SELECT count(*) FROM products;

-- name: MoveStocks :exec
-- Adds to locked products' stock on hand and reserved units, in one
-- statement: each sku gets its on-hand and reserved deltas. The CHECKs
-- refuse any result below zero.
UPDATE products p
SET on_hand = p.on_hand + m.on_hand_delta, reserved = p.reserved + m.reserved_delta, updated_at = now()
FROM (
    SELECT unnest(@skus::text[]) AS sku, unnest(@on_hand_deltas::bigint[]) AS on_hand_delta,
        unnest(@reserved_deltas::bigint[]) AS reserved_delta
) AS m
WHERE p.sku = m.sku;

-- name: InsertAdjustment :execrows
INSERT INTO adjustments (id, sku, delta, status, reason, at)
VALUES ($1, $2, $3, $4, $5, now())
ON CONFLICT (id) DO NOTHING;

-- name: ListAdjustments :many
SELECT * FROM adjustments WHERE sku = @sku
ORDER BY at DESC, id DESC
LIMIT @row_limit OFFSET @row_offset;

-- name: CountAdjustments :one
SELECT count(*) FROM adjustments WHERE sku = @sku;

-- name: LockOrderStock :exec
-- Serialises the handlers of one order's events for the rest of the
-- transaction: without it an order.cancelled handled concurrently with its
-- order.placed could slip between the reservation's early-cancellation
-- check and its insert, and the units would stay held.
SELECT pg_advisory_xact_lock(hashtextextended(@order_id::text, 0));

-- name: InsertReservations :exec
-- Every line of an order's reservation, HELD, in one statement.
INSERT INTO reservations (order_id, sku, quantity, unit_price, status)
SELECT @order_id::uuid, unnest(@skus::text[]), unnest(@quantities::bigint[]), unnest(@unit_prices::bigint[]), 'HELD';

-- name: OrderStockState :one
-- Whether the order was cancelled before it was placed, and whether it is
-- reserved already: what a reservation checks first, in one statement.
SELECT
    EXISTS (SELECT 1 FROM early_cancellations c WHERE c.order_id = @order_id::uuid) AS cancelled,
    EXISTS (SELECT 1 FROM reservations r WHERE r.order_id = @order_id::uuid) AS reserved;

-- name: OrderReservations :many
SELECT * FROM reservations WHERE order_id = $1 ORDER BY sku;

-- name: MovableSkus :many
-- The products whose units the reservations of these orders still hold or
-- have sold: what their order.paid, order.cancelled or order.failed moves.
SELECT DISTINCT sku FROM reservations
WHERE order_id = ANY(@order_ids::uuid[]) AND status IN ('HELD', 'COMMITTED');

-- name: SetReservationStatus :exec
UPDATE reservations SET status = @to_status, updated_at = now()
WHERE order_id = @order_id AND status = @from_status;

-- name: RememberCancellation :exec
INSERT INTO early_cancellations (order_id) VALUES ($1) ON CONFLICT DO NOTHING;

-- name: PruneEarlyCancellations :execrows
-- Forgets, in one short statement, up to max_rows early cancellations
-- remembered before the cut-off, oldest first.
DELETE FROM early_cancellations
WHERE order_id IN (
    SELECT c.order_id FROM early_cancellations c
    WHERE c.at < @before
    ORDER BY c.at
    LIMIT @max_rows
    FOR UPDATE SKIP LOCKED
);
