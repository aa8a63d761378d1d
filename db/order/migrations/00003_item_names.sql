-- +goose Up
-- The product names of an order's lines as the inventory reserved them
-- ({sku: name}), for order.paid, which carries what an invoice needs
-- (contract §6); NULL for an order placed with a total, or priced by an
-- inventory older than the names.
ALTER TABLE orders ADD COLUMN item_names jsonb;

-- +goose Down
ALTER TABLE orders DROP COLUMN item_names;
