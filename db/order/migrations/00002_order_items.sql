-- +goose Up
-- Orders with items (contract §5): PENDING_STOCK until the inventory has
-- reserved and priced them, so their total is unknown until then.
ALTER TABLE orders ALTER COLUMN total DROP NOT NULL;
ALTER TABLE orders DROP CONSTRAINT orders_total_check;
ALTER TABLE orders ADD CONSTRAINT orders_total_check CHECK (total IS NULL OR total > 0);
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check
    CHECK (status IN ('PENDING_STOCK', 'PENDING_PAYMENT', 'PAID', 'CANCELLED', 'FAILED'));
-- The lines as the API shows them, [{sku, quantity, unitPrice, lineTotal}],
-- with their prices once reserved; NULL for an order placed with a total.
ALTER TABLE orders ADD COLUMN items jsonb;
-- Only a priced order has no total.
ALTER TABLE orders ADD CONSTRAINT orders_priced CHECK (total IS NOT NULL OR status IN ('PENDING_STOCK', 'CANCELLED'));
-- The timeout sweeps look only at orders still waiting, and for how long
-- they have been in their status: an order with items enters
-- PENDING_PAYMENT when its stock is reserved, not when it was placed.
CREATE INDEX orders_pending_stock ON orders (updated_at) WHERE status = 'PENDING_STOCK';
DROP INDEX orders_pending;
CREATE INDEX orders_pending ON orders (updated_at) WHERE status = 'PENDING_PAYMENT';

-- +goose Down
DROP INDEX orders_pending;
CREATE INDEX orders_pending ON orders (created_at) WHERE status = 'PENDING_PAYMENT';
DROP INDEX orders_pending_stock;
DELETE FROM orders WHERE total IS NULL;
ALTER TABLE orders DROP CONSTRAINT orders_priced;
ALTER TABLE orders DROP COLUMN items;
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check
    CHECK (status IN ('PENDING_PAYMENT', 'PAID', 'CANCELLED', 'FAILED'));
ALTER TABLE orders DROP CONSTRAINT orders_total_check;
ALTER TABLE orders ADD CONSTRAINT orders_total_check CHECK (total > 0);
ALTER TABLE orders ALTER COLUMN total SET NOT NULL;
