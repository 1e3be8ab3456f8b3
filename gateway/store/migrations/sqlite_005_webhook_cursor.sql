-- Webhooks from the events log (transactional outbox): the outbox writer reads the events
-- after ``last_event_id``, writes their outbox rows and moves the cursor in one
-- transaction, so a crash between an event's commit and its outbox row loses nothing.
-- (Statements are split on ";\n": no semicolon may end a line inside a statement.)
-- One row. ``salt``, random per database, goes into the webhook ids derived from event ids,
-- so two databases never send the same id for different events.
CREATE TABLE webhook_cursor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_event_id INTEGER NOT NULL,
    salt TEXT NOT NULL
);

-- Events already in the log were the in-memory outbox's: start after them.
INSERT INTO webhook_cursor (id, last_event_id, salt)
    SELECT 1, coalesce(max(id), 0), lower(hex(randomblob(16))) FROM events
