-- Webhooks from the events log (transactional outbox). PostgreSQL dialect of
-- sqlite_005_webhook_cursor.sql, with one difference: identity values are handed out at
-- insert, not at commit, so an event with a lower id may commit after one with a higher
-- id. Each event therefore records the id of the transaction that wrote it (``tx``), and
-- the writer reads, in (tx, id) order, only events whose transaction is older than every
-- transaction still running (pg_snapshot_xmin): no event can appear behind the cursor.
-- Events written before this migration have no ``tx`` and are never read (they were the
-- in-memory outbox's).
ALTER TABLE events ADD COLUMN tx xid8;
ALTER TABLE events ALTER COLUMN tx SET DEFAULT pg_current_xact_id();
CREATE INDEX events_tx ON events (tx, id);

CREATE TABLE webhook_cursor (
    id integer PRIMARY KEY CHECK (id = 1),
    last_tx xid8 NOT NULL,
    last_event_id bigint NOT NULL,
    salt text NOT NULL
);
INSERT INTO webhook_cursor (id, last_tx, last_event_id, salt)
    VALUES (1, '0'::xid8, 0, md5(random()::text || clock_timestamp()::text));
