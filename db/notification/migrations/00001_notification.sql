-- +goose Up
-- The address directory, built from user.registered alone (contract §8): the
-- service never asks users-service.
CREATE TABLE addresses (
    user_id    uuid        PRIMARY KEY,
    email      text        NOT NULL,
    name       text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The e-mail log: one row per order and kind (contract §8, §9). A consumer
-- writes it PENDING in its unit of work (like an outbox row); the sender
-- loop leases due rows, sends outside any transaction, and records the
-- outcome.
CREATE TABLE notifications (
    id              uuid        PRIMARY KEY,
    order_id        uuid        NOT NULL,
    user_id         uuid,
    kind            text        NOT NULL CHECK (kind IN ('ORDER_CONFIRMED', 'ORDER_CANCELLED', 'PAYMENT_FAILED')),
    recipient       text        NOT NULL,
    recipient_name  text        NOT NULL DEFAULT '',
    subject         text        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('PENDING', 'SENT', 'FAILED', 'SKIPPED')),
    attempts        integer     NOT NULL DEFAULT 0,
    error           text,
    sent_at         timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- What the templates need (invoice number, total, reason…), as the
    -- triggering event carried it.
    facts           jsonb       NOT NULL DEFAULT '{}',
    -- The PDF attached, fetched by reference at send time: 'invoice' or
    -- 'credit-note' of invoice_id, or none.
    attachment      text        CHECK (attachment IN ('invoice', 'credit-note')),
    invoice_id      uuid,
    -- When the sender may try next, and until when a sender holds it.
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    leased_until    timestamptz,
    UNIQUE (order_id, kind)
);

CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'PENDING';
CREATE INDEX notifications_created ON notifications (created_at DESC, id DESC);
CREATE INDEX notifications_user ON notifications (user_id, created_at DESC);

-- +goose Down
DROP TABLE notifications;
DROP TABLE addresses;
