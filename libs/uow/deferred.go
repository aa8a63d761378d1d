package uow

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DBTX is what sqlc's generated queries run on.
type DBTX interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
	Query(context.Context, string, ...any) (pgx.Rows, error)
	QueryRow(context.Context, string, ...any) pgx.Row
}

// Deferred returns the transaction as a DBTX whose Exec is held back: the
// statement is queued, and the queue is sent in one round trip with the next
// statement that runs on the transaction (a query, an Exec of the Tx itself,
// a batch), or before the commit. Statements run in the order they were
// issued, as without it; a handler that issues several statements whose
// results it does not read saves a round trip for each, and with it the
// time its transaction holds its row locks.
//
// Only for statements whose one result is their error (sqlc's :exec): the
// CommandTag returned is empty, so a statement whose rows affected are
// read (:execrows) must go through the Tx. A queued statement's error is
// returned by the statement it was sent with, so it may surface in a later
// step of a batch; the batch then fails, and each of its messages is
// handled again in a transaction of its own, where it is its own.
func (t *Tx) Deferred() DBTX { return deferred{t} }

type deferred struct{ t *Tx }

func (d deferred) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if d.t.pending == nil {
		d.t.pending = &pgx.Batch{}
	}
	d.t.pending.Queue(sql, args...)
	return pgconn.CommandTag{}, nil
}

func (d deferred) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return d.t.Query(ctx, sql, args...)
}

func (d deferred) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return d.t.QueryRow(ctx, sql, args...)
}

// send sends the queued statements followed by sql (none when sql is ""),
// reads the queued statements' results, and returns the batch positioned
// at sql's result, which the caller reads and then closes.
func (t *Tx) send(ctx context.Context, sql string, args ...any) (pgx.BatchResults, error) {
	b := t.pending
	t.pending = nil
	n := b.Len()
	if sql != "" {
		b.Queue(sql, args...)
	}
	br := t.Tx.SendBatch(ctx, b)
	for i := range n {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return nil, fmt.Errorf("deferred statement %d of %d: %w", i+1, n, err)
		}
	}
	return br, nil
}

// sendPending sends the queued statements, if any, on their own.
func (t *Tx) sendPending(ctx context.Context) error {
	if t.pending == nil {
		return nil
	}
	br, err := t.send(ctx, "")
	if err != nil {
		return err
	}
	return br.Close()
}

// Exec runs sql, after what Deferred queued, in the same round trip.
func (t *Tx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if t.pending == nil {
		return t.Tx.Exec(ctx, sql, args...)
	}
	br, err := t.send(ctx, sql, args...)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, err
}

// Query runs sql, after what Deferred queued, in the same round trip.
func (t *Tx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if t.pending == nil {
		return t.Tx.Query(ctx, sql, args...)
	}
	br, err := t.send(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		_ = br.Close()
		return nil, err
	}
	return &batchRows{Rows: rows, br: br}, nil
}

// QueryRow runs sql, after what Deferred queued, in the same round trip.
func (t *Tx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if t.pending == nil {
		return t.Tx.QueryRow(ctx, sql, args...)
	}
	rows, err := t.Query(ctx, sql, args...)
	return batchRow{rows: rows, err: err}
}

// SendBatch sends what Deferred queued first.
func (t *Tx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if err := t.sendPending(ctx); err != nil {
		return failedBatch{err}
	}
	return t.Tx.SendBatch(ctx, b)
}

// CopyFrom sends what Deferred queued first.
func (t *Tx) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	if err := t.sendPending(ctx); err != nil {
		return 0, err
	}
	return t.Tx.CopyFrom(ctx, table, columns, src)
}

// Begin (a savepoint) sends what Deferred queued first.
func (t *Tx) Begin(ctx context.Context) (pgx.Tx, error) {
	if err := t.sendPending(ctx); err != nil {
		return nil, err
	}
	return t.Tx.Begin(ctx)
}

// batchRows are a query's rows read from a batch, which closing them
// closes.
type batchRows struct {
	pgx.Rows
	br  pgx.BatchResults
	err error
}

func (r *batchRows) Close() {
	r.Rows.Close()
	if r.br != nil {
		r.err = r.br.Close()
		r.br = nil
	}
}

func (r *batchRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}

// batchRow is QueryRow's row read from a batch, as pgx's own: no row is
// pgx.ErrNoRows.
type batchRow struct {
	rows pgx.Rows
	err  error
}

func (r batchRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}

// failedBatch is the results of a batch that was not sent.
type failedBatch struct{ err error }

func (f failedBatch) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, f.err }
func (f failedBatch) Query() (pgx.Rows, error)         { return nil, f.err }
func (f failedBatch) QueryRow() pgx.Row                { return batchRow{err: f.err} }
func (f failedBatch) Close() error                     { return f.err }
func (f failedBatch) Tx() pgx.Tx                       { return nil }
