-- name: CreateOrder :execrows
-- Zero rows: the order exists already; the first command's content wins.
INSERT INTO orders (id, user_id, total, currency, payment_method, items, status, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, @status, @now, @now)
ON CONFLICT (id) DO NOTHING;

-- name: PriceOrder :one
-- An order waiting for stock, reserved: its prices and total, and on to
-- payment.
UPDATE orders
SET status = 'PENDING_PAYMENT', total = @total, items = @items, item_names = @item_names, updated_at = now()
WHERE id = @id AND status = 'PENDING_STOCK'
RETURNING *;

-- name: GetOrder :one
SELECT * FROM orders WHERE id = $1;

-- name: LockOrder :one
SELECT * FROM orders WHERE id = $1 FOR UPDATE;

-- name: TransitionOrder :one
-- The WHERE on status is the state machine's guard: a stale or reordered
-- event cannot move an order out of a status it is no longer in.
UPDATE orders
SET status = @to_status,
    cancel_reason = sqlc.narg(cancel_reason),
    payment_id = coalesce(sqlc.narg(payment_id), payment_id),
    updated_at = now()
WHERE id = @id AND status = @from_status
RETURNING *;

-- name: ListOrders :many
SELECT * FROM orders
WHERE (sqlc.narg(status)::text IS NULL OR status = sqlc.narg(status))
  AND (sqlc.narg(user_id)::uuid IS NULL OR user_id = sqlc.narg(user_id))
ORDER BY created_at DESC, id DESC
LIMIT @row_limit OFFSET @row_offset;

-- name: CountOrders :one
SELECT count(*) FROM orders
WHERE (sqlc.narg(status)::text IS NULL OR status = sqlc.narg(status))
  AND (sqlc.narg(user_id)::uuid IS NULL OR user_id = sqlc.narg(user_id));

-- name: ClaimOverdueOrders :many
-- Overdue: in status since before @before (an order's updated_at is when it
-- entered its status). SKIP LOCKED: several order-service instances sweep
-- without double work.
SELECT * FROM orders
WHERE status = @status AND updated_at < @before::timestamptz
ORDER BY updated_at
LIMIT @row_limit
FOR UPDATE SKIP LOCKED;
