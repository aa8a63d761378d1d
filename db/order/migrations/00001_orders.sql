-- +goose Up
CREATE TABLE orders (
    id             uuid        PRIMARY KEY,
    user_id        uuid        NOT NULL,
    total          bigint      NOT NULL CHECK (total > 0),
    currency       text        NOT NULL,
    payment_method text        NOT NULL,
    status         text        NOT NULL
        CHECK (status IN ('PENDING_PAYMENT', 'PAID', 'CANCELLED', 'FAILED')),
    cancel_reason  text,
    payment_id     uuid,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Listing is newest first with id as the tie-breaker (contract §2).
CREATE INDEX orders_created ON orders (created_at DESC, id DESC);
CREATE INDEX orders_user_created ON orders (user_id, created_at DESC, id DESC);
-- The saga-timeout sweep looks only at orders still waiting for payment.
CREATE INDEX orders_pending ON orders (created_at) WHERE status = 'PENDING_PAYMENT';

-- +goose Down
DROP TABLE orders;
