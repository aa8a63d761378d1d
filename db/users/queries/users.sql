-- name: InsertUser :one
-- InsertUser creates a user unless one with the same e-mail exists; no row
-- then.
INSERT INTO users (id, email, name, password_hash, roles, created_at, updated_at)
VALUES (@id, @email, @name, @password_hash, @roles::text[], @now::timestamptz, @now::timestamptz)
ON CONFLICT ((lower(email))) DO NOTHING
RETURNING id, email, name, roles, created_at;

-- name: UserByEmail :one
SELECT id, email, name, password_hash, roles, created_at
FROM users
WHERE lower(email) = lower(@email);

-- name: UserByID :one
SELECT id, email, name, roles, created_at
FROM users
WHERE id = @id;

-- name: ListUsers :many
SELECT id, email, name, roles, created_at
FROM users
ORDER BY created_at DESC, id DESC
LIMIT @lim OFFSET @off;

-- name: CountUsers :one
SELECT count(*) FROM users;

-- name: SetRoles :one
UPDATE users
SET roles = @roles::text[], updated_at = now()
WHERE id = @id
RETURNING id, email, name, roles, created_at;

-- name: LockEmail :exec
-- LockEmail serialises the logins of one e-mail across instances until the
-- transaction ends, so that two cannot both pass the throttle's count.
SELECT pg_advisory_xact_lock(hashtextextended('login:' || @email::text, 0));

-- name: RecentFailures :many
-- RecentFailures lists the failed logins of email since @since, newest first.
SELECT failed_at FROM login_failures
WHERE email = @email AND failed_at > @since::timestamptz
ORDER BY failed_at DESC
LIMIT @lim;

-- name: AddFailure :exec
INSERT INTO login_failures (email, failed_at) VALUES (@email, @at::timestamptz);

-- name: PruneFailures :execrows
DELETE FROM login_failures WHERE failed_at < @before::timestamptz;

-- name: InsertSigningKey :exec
INSERT INTO signing_keys (slot, seed) VALUES (1, @seed) ON CONFLICT DO NOTHING;

-- name: SigningKey :one
SELECT seed FROM signing_keys WHERE slot = 1;
