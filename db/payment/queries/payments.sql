-- name: CreatePayment :execrows
-- Zero rows: the order has a payment already, or was cancelled before its
-- order.created arrived (an early cancellation) and must not be charged.
INSERT INTO payments (id, order_id, user_id, amount, currency, payment_method, status, reason, decide_at, created_at, updated_at)
SELECT @id, @order_id, @user_id, @amount, @currency, @payment_method, @status, sqlc.narg(reason), @decide_at::timestamptz, @now::timestamptz, @now::timestamptz
WHERE NOT EXISTS (SELECT 1 FROM early_cancellations WHERE order_id = @order_id)
ON CONFLICT (order_id) DO NOTHING;

-- name: CreateCancelledPayment :execrows
-- The payment of an order cancelled before its order.created: recorded as
-- CANCELLED, never charged.
INSERT INTO payments (id, order_id, user_id, amount, currency, payment_method, status, reason, decide_at, created_at, updated_at)
VALUES (@id, @order_id, @user_id, @amount, @currency, @payment_method, 'CANCELLED', @reason, @now::timestamptz, @now::timestamptz, @now::timestamptz)
ON CONFLICT (order_id) DO NOTHING;

-- name: GetPayment :one
SELECT * FROM payments WHERE id = $1;

-- name: GetPaymentByOrder :one
SELECT * FROM payments WHERE order_id = $1;

-- name: LockPaymentByOrder :one
SELECT * FROM payments WHERE order_id = $1 FOR UPDATE;

-- name: TransitionPayment :one
-- The WHERE on status is the state machine's guard.
UPDATE payments
SET status = @to_status, reason = sqlc.narg(reason), updated_at = now()
WHERE id = @id AND status = @from_status
RETURNING *;

-- name: ClaimDuePayments :many
SELECT * FROM payments
WHERE status = 'PROCESSING' AND decide_at <= @now::timestamptz
ORDER BY decide_at
LIMIT @row_limit
FOR UPDATE SKIP LOCKED;

-- name: DecidePayments :many
-- Settles several PROCESSING payments in one round trip; an empty reason
-- is none. The status guard is the state machine's, as in TransitionPayment.
UPDATE payments p
SET status = d.status, reason = nullif(d.reason, ''), updated_at = now()
FROM (
    SELECT unnest(@ids::uuid[]) AS id, unnest(@statuses::text[]) AS status, unnest(@reasons::text[]) AS reason
) d
WHERE p.id = d.id AND p.status = 'PROCESSING'
RETURNING p.*;

-- name: NextDue :one
SELECT decide_at FROM payments WHERE status = 'PROCESSING' ORDER BY decide_at LIMIT 1;

-- name: AddEarlyCancellation :exec
INSERT INTO early_cancellations (order_id, reason) VALUES ($1, $2)
ON CONFLICT (order_id) DO NOTHING;

-- name: GetEarlyCancellation :one
SELECT * FROM early_cancellations WHERE order_id = $1;

-- name: ListPayments :many
SELECT * FROM payments
WHERE (sqlc.narg(status)::text IS NULL OR status = sqlc.narg(status))
  AND (sqlc.narg(user_id)::uuid IS NULL OR user_id = sqlc.narg(user_id))
ORDER BY created_at DESC, id DESC
LIMIT @row_limit OFFSET @row_offset;

-- name: CountPayments :one
SELECT count(*) FROM payments
WHERE (sqlc.narg(status)::text IS NULL OR status = sqlc.narg(status))
  AND (sqlc.narg(user_id)::uuid IS NULL OR user_id = sqlc.narg(user_id));

-- name: PaymentStats :many
-- The sum is numeric and may exceed bigint: it saturates rather than fail
-- the whole answer.
SELECT status, count(*)::bigint AS count,
       least(coalesce(sum(amount), 0), 9223372036854775807)::bigint AS total_amount
FROM payments
GROUP BY status
ORDER BY status;

-- name: LockOrderPayments :exec
-- Serialises the handlers of one order's events for the rest of the
-- transaction. Without it an order.cancelled handled concurrently with its
-- order.created could slip between the creation's early-cancellation check
-- and its insert, and the order would be charged after all.
SELECT pg_advisory_xact_lock(hashtextextended(@order_id::text, 0));
