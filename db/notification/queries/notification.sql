-- name: UpsertAddress :exec
-- UpsertAddress keeps the latest address of a user.
INSERT INTO addresses (user_id, email, name, updated_at)
VALUES (@user_id, @email, @name, now())
ON CONFLICT (user_id) DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name, updated_at = now();

-- name: AddressOf :one
SELECT user_id, email, name FROM addresses WHERE user_id = @user_id;

-- name: InsertNotification :execrows
-- InsertNotification records an e-mail unless its order and kind have one:
-- zero rows then (a redelivery, or the other trigger of a cancellation).
INSERT INTO notifications (id, order_id, user_id, kind, recipient, recipient_name, subject, status, error, facts, attachment, invoice_id)
VALUES (@id, @order_id, sqlc.narg(user_id), @kind, @recipient, @recipient_name, @subject, @status, sqlc.narg(error), @facts, sqlc.narg(attachment), sqlc.narg(invoice_id))
ON CONFLICT (order_id, kind) DO NOTHING;

-- name: ClaimDue :many
-- ClaimDue leases up to lim due PENDING e-mails for lease_seconds: a
-- sender that dies holding them lets them be claimed again once the lease
-- ran out (the crash window of contract §8).
UPDATE notifications n
SET leased_until = now() + make_interval(secs => @lease_seconds::float8)
FROM (
    SELECT id FROM notifications
    WHERE status = 'PENDING' AND next_attempt_at <= now()
      AND (leased_until IS NULL OR leased_until < now())
    ORDER BY next_attempt_at, id
    LIMIT @lim
    FOR UPDATE SKIP LOCKED
) due
WHERE n.id = due.id
RETURNING n.*;

-- name: MarkSent :execrows
UPDATE notifications
SET status = 'SENT', sent_at = now(), attempts = attempts + 1, error = NULL, leased_until = NULL
WHERE id = @id AND status = 'PENDING';

-- name: MarkFailed :execrows
UPDATE notifications
SET status = 'FAILED', attempts = attempts + 1, error = @error, leased_until = NULL
WHERE id = @id AND status = 'PENDING';

-- name: MarkRetry :execrows
-- MarkRetry spends an attempt and schedules the next.
UPDATE notifications
SET attempts = attempts + 1, error = @error, leased_until = NULL,
    next_attempt_at = now() + make_interval(secs => @delay_seconds::float8)
WHERE id = @id AND status = 'PENDING';

-- name: Release :exec
-- Release gives leased e-mails back without spending an attempt: the
-- server was unreachable, or the sender stopped before trying them.
UPDATE notifications SET leased_until = NULL
WHERE id = ANY(@ids::uuid[]) AND status = 'PENDING';

-- name: ListNotifications :many
SELECT * FROM notifications
WHERE (sqlc.narg(user_id)::uuid IS NULL OR user_id = sqlc.narg(user_id))
  AND (sqlc.narg(order_id)::uuid IS NULL OR order_id = sqlc.narg(order_id))
  AND (sqlc.narg(status)::text IS NULL OR status = sqlc.narg(status))
ORDER BY created_at DESC, id DESC
LIMIT @lim OFFSET @off;

-- name: CountNotifications :one
SELECT count(*) FROM notifications
WHERE (sqlc.narg(user_id)::uuid IS NULL OR user_id = sqlc.narg(user_id))
  AND (sqlc.narg(order_id)::uuid IS NULL OR order_id = sqlc.narg(order_id))
  AND (sqlc.narg(status)::text IS NULL OR status = sqlc.narg(status));

-- name: CountPending :one
SELECT count(*) FROM notifications WHERE status = 'PENDING';
