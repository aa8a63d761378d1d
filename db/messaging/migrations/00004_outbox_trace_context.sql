-- The W3C trace context (traceparent, tracestate) of the span that wrote
-- each outbox row, which the relay publishes the row under, so that a saga
-- stays one trace across the outbox (libs/tracing). Empty when the writer
-- was not traced. A constant default: adding the columns rewrites nothing.

-- +goose Up
ALTER TABLE outbox ADD COLUMN traceparent text NOT NULL DEFAULT '',
    ADD COLUMN tracestate text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE outbox DROP COLUMN tracestate, DROP COLUMN traceparent;
