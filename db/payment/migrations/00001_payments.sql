-- +goose Up
CREATE TABLE payments (
    id             uuid        PRIMARY KEY,
    -- At most one payment per order (contract §3), enforced here.
    order_id       uuid        NOT NULL UNIQUE,
    user_id        uuid        NOT NULL,
    amount         bigint      NOT NULL CHECK (amount > 0),
    currency       text        NOT NULL,
    payment_method text        NOT NULL,
    status         text        NOT NULL
        CHECK (status IN ('PROCESSING', 'APPROVED', 'DECLINED', 'FAILED', 'CANCELLED', 'REFUNDED')),
    reason         text,
    -- When the simulated gateway answers; survives a crash during the wait.
    decide_at      timestamptz NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX payments_created ON payments (created_at DESC, id DESC);
CREATE INDEX payments_due ON payments (decide_at) WHERE status = 'PROCESSING';

-- A cancellation that arrived before its order.created: remembered so that
-- the order is never charged when order.created comes.
CREATE TABLE early_cancellations (
    order_id     uuid        PRIMARY KEY,
    reason       text        NOT NULL,
    cancelled_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE early_cancellations;
DROP TABLE payments;
