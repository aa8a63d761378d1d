-- The transactional outbox and the inbox (idempotency keys) that every
-- service database carries. Owned by libs/outbox and libs/inbox; applied with
-- its own goose version table so that it versions apart from the service's.

-- +goose Up
CREATE TABLE outbox (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id     uuid        NOT NULL UNIQUE,
    message_type   text        NOT NULL,
    exchange       text        NOT NULL,
    correlation_id text        NOT NULL,
    causation_id   text        NOT NULL DEFAULT '',
    -- bytea, not jsonb: the relay must publish the exact bytes that were written.
    body           bytea       NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    published_at   timestamptz
);

-- The relay only ever scans what is still to be published.
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_correlation ON outbox (correlation_id);

-- +goose StatementBegin
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Delivered on commit only, and once per transaction however many rows.
    PERFORM pg_notify('outbox', '');
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

CREATE TABLE inbox (
    consumer       text        NOT NULL,
    message_id     text        NOT NULL,
    message_type   text        NOT NULL,
    correlation_id text        NOT NULL,
    detail         text        NOT NULL DEFAULT '',
    processed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);

CREATE INDEX inbox_correlation ON inbox (correlation_id);

-- +goose Down
DROP TABLE inbox;
DROP TRIGGER outbox_notify ON outbox;
DROP FUNCTION outbox_notify();
DROP TABLE outbox;
