-- name: LockNumbering :exec
-- Takes the numbering's lock: both series' rows, in series order.
SELECT series FROM number_series ORDER BY series FOR UPDATE;

-- name: Clock :one
-- The database's clock now: clock_timestamp(), not now() (the
-- transaction's start), read after LockNumbering returned, so that a
-- document numbered after another one waited for it is issued later.
SELECT clock_timestamp()::timestamptz;

-- name: NextNumber :one
-- The next number of a series and year; call it with the numbering locked.
INSERT INTO number_counters (series, year, last) VALUES (@series, @year, 1)
ON CONFLICT (series, year) DO UPDATE SET last = number_counters.last + 1
RETURNING last;

-- name: InsertInvoice :exec
INSERT INTO invoices (id, number, order_id, user_id, payment_id, currency, lines, total, status, issued_at, seller_name, seller_address)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'ISSUED', $9, $10, $11);

-- name: CreditInvoice :one
UPDATE invoices
SET status = 'CREDITED', credit_number = @credit_number, credit_issued_at = @credit_issued_at
WHERE id = @id AND status = 'ISSUED'
RETURNING id;

-- name: InvoiceOfOrder :one
SELECT id, number, order_id, user_id, payment_id, currency, lines, total, status, issued_at, credit_number, credit_issued_at
FROM invoices WHERE order_id = $1;

-- name: GetInvoice :one
SELECT id, number, order_id, user_id, payment_id, currency, lines, total, status, issued_at, credit_number, credit_issued_at
FROM invoices WHERE id = $1;

-- name: ListInvoices :many
SELECT id, number, order_id, user_id, payment_id, currency, lines, total, status, issued_at, credit_number, credit_issued_at
FROM invoices
WHERE (sqlc.narg(status)::text IS NULL OR status = sqlc.narg(status))
  AND (sqlc.narg(user_id)::uuid IS NULL OR user_id = sqlc.narg(user_id))
ORDER BY issued_at DESC, id DESC
LIMIT @row_limit OFFSET @row_offset;

-- name: CountInvoices :one
SELECT count(*) FROM invoices
WHERE (sqlc.narg(status)::text IS NULL OR status = sqlc.narg(status))
  AND (sqlc.narg(user_id)::uuid IS NULL OR user_id = sqlc.narg(user_id));

-- name: InvoiceDocuments :one
-- What the PDFs of an invoice are rendered from, and their bytes once
-- rendered.
SELECT * FROM invoices WHERE id = $1;

-- name: StoreInvoicePDF :exec
-- The first rendering stands: a concurrent one rendered the same bytes.
UPDATE invoices SET pdf = @pdf WHERE id = @id AND pdf IS NULL;

-- name: StoreCreditNotePDF :exec
UPDATE invoices SET credit_pdf = @credit_pdf WHERE id = @id AND credit_pdf IS NULL AND credit_number IS NOT NULL;

-- name: RememberCancellation :exec
INSERT INTO early_cancellations (order_id) VALUES ($1) ON CONFLICT DO NOTHING;

-- name: ForgetCancellation :execrows
DELETE FROM early_cancellations WHERE order_id = $1;
