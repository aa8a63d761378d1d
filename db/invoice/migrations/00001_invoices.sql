-- +goose Up
-- One invoice per paid order (contract §6). A credit note is the
-- cancellation of the whole invoice; its number and date are set once,
-- together, when the order is cancelled after it was paid. The PDFs are
-- rendered once, from the row alone (the seller as it was at issue), on
-- their first fetch, and their bytes kept: every fetch returns the same
-- bytes, and issuing (under the numbering lock) never waits for rendering.
CREATE TABLE invoices (
    id               uuid        PRIMARY KEY,
    number           text        NOT NULL UNIQUE,
    order_id         uuid        NOT NULL UNIQUE,
    user_id          uuid        NOT NULL,
    payment_id       uuid        NOT NULL,
    currency         text        NOT NULL,
    -- [{description, sku, quantity, unitPrice, amount}] as the API shows them.
    lines            jsonb       NOT NULL,
    total            bigint      NOT NULL CHECK (total >= 0),
    status           text        NOT NULL CHECK (status IN ('ISSUED', 'CREDITED')),
    issued_at        timestamptz NOT NULL,
    seller_name      text        NOT NULL,
    seller_address   text        NOT NULL,
    pdf              bytea,
    credit_number    text        UNIQUE,
    credit_issued_at timestamptz,
    credit_pdf       bytea,
    CHECK ((status = 'CREDITED') = (credit_number IS NOT NULL)),
    CHECK ((credit_number IS NULL) = (credit_issued_at IS NULL)),
    CHECK (credit_pdf IS NULL OR credit_number IS NOT NULL)
);

-- Lists are newest first, for everyone or one customer.
CREATE INDEX invoices_issued ON invoices (issued_at DESC, id DESC);
CREATE INDEX invoices_user_issued ON invoices (user_id, issued_at DESC, id DESC);

-- The numbering's lock: every transaction that numbers a document locks
-- both rows (in series order) before it reads the clock, so numbers are
-- taken one transaction at a time, across instances, and a later number
-- never has an earlier issuedAt. Invoices and credit notes share the lock,
-- so two handlers never wait for each other's series in opposite orders.
CREATE TABLE number_series (
    series text PRIMARY KEY CHECK (series IN ('CN', 'INV'))
);
INSERT INTO number_series (series) VALUES ('CN'), ('INV');

-- The last number taken per series and UTC year of issuedAt, advanced in
-- the transaction that stores the document: a rollback gives it back, so
-- the committed numbers are 1..N (never a sequence, which leaves holes).
CREATE TABLE number_counters (
    series text   NOT NULL REFERENCES number_series (series),
    year   int    NOT NULL,
    last   bigint NOT NULL CHECK (last > 0),
    PRIMARY KEY (series, year)
);

-- Paid orders cancelled before their order.paid reached invoice-service:
-- the invoice and its credit note are both issued when it comes.
CREATE TABLE early_cancellations (
    order_id uuid        PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE early_cancellations;
DROP TABLE number_counters;
DROP TABLE number_series;
DROP TABLE invoices;
