-- +goose Up
-- A customer's payments, newest first (the gateway filters their list by
-- user, contract §7).
CREATE INDEX payments_user ON payments (user_id, created_at DESC, id DESC);

-- +goose Down
DROP INDEX payments_user;
