-- +goose Up
CREATE TABLE products (
    sku        text        PRIMARY KEY,
    name       text        NOT NULL,
    price      bigint      NOT NULL CHECK (price > 0),
    currency   text        NOT NULL,
    -- The last line of defence of contract §9: stock is never negative and
    -- never more is reserved than is on hand, whatever a handler does.
    on_hand    bigint      NOT NULL CHECK (on_hand >= 0),
    reserved   bigint      NOT NULL DEFAULT 0 CHECK (reserved >= 0 AND reserved <= on_hand),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per order and line: all of an order's lines are reserved in one
-- transaction, at the product's price of that moment.
CREATE TABLE reservations (
    order_id   uuid        NOT NULL,
    sku        text        NOT NULL REFERENCES products (sku),
    quantity   bigint      NOT NULL CHECK (quantity > 0),
    unit_price bigint      NOT NULL CHECK (unit_price > 0),
    status     text        NOT NULL
        CHECK (status IN ('HELD', 'COMMITTED', 'RELEASED', 'RETURNED')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, sku)
);

CREATE TABLE adjustments (
    id     uuid        PRIMARY KEY,
    sku    text        NOT NULL REFERENCES products (sku),
    delta  bigint      NOT NULL CHECK (delta <> 0),
    status text        NOT NULL CHECK (status IN ('APPLIED', 'REFUSED')),
    reason text,
    at     timestamptz NOT NULL DEFAULT now()
);

-- A product's adjustments are listed newest first.
CREATE INDEX adjustments_sku_at ON adjustments (sku, at DESC, id DESC);

-- Orders cancelled before their order.placed reached the inventory: such an
-- order is never reserved (contract §5).
CREATE TABLE early_cancellations (
    order_id uuid        PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE early_cancellations;
DROP TABLE adjustments;
DROP TABLE reservations;
DROP TABLE products;
