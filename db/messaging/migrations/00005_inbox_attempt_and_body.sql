-- What the console shows of a handled message (issue 15): the attempt that
-- handled it (1 the first time; more after retries through the retry
-- tiers) and the error of the try before it, and, for a command only, its
-- body. Commands are published by the gateway, which keeps no outbox, so
-- the inbox of their consumer is the only place their body can be read;
-- an event's body stays in the outbox of the service that emitted it and
-- is not copied (body NULL). The claim writes them in its one INSERT.
-- Constant defaults: adding the columns rewrites nothing.

-- +goose Up
ALTER TABLE inbox ADD COLUMN attempt smallint NOT NULL DEFAULT 1,
    ADD COLUMN last_error text NOT NULL DEFAULT '',
    ADD COLUMN body bytea;

-- +goose Down
ALTER TABLE inbox DROP COLUMN body, DROP COLUMN last_error, DROP COLUMN attempt;
