-- Streams, suppression scopes and unblock on probation (issue 15 items 1 and 3).
-- (Statements are split on ";\n": no semicolon may end a line inside a statement.)
--
-- 1. A message's stream: ``transactional`` (invoices, receipts) or ``marketing``.
ALTER TABLE messages ADD COLUMN stream TEXT NOT NULL DEFAULT 'transactional';

-- 2. Tenant settings; NULL means "the config's default": ``probation_seconds`` (how long an
--    unblock's probation lasts, ``[policy] probation``), ``default_stream`` (a message's stream
--    without a header or a credential default: ``transactional``), ``complaint_scope``
--    (``stream``: a complaint suppresses its message's stream; ``all``: every stream).
ALTER TABLE tenants ADD COLUMN probation_seconds REAL;
ALTER TABLE tenants ADD COLUMN default_stream TEXT;
ALTER TABLE tenants ADD COLUMN complaint_scope TEXT;
-- A login's default stream (NULL: the tenant's).
ALTER TABLE credentials ADD COLUMN default_stream TEXT;

-- 3. A suppression's scope: ``all``, ``marketing`` or ``transactional``. One row per scope: a
--    marketing opt-out and an ``all`` hard bounce of one address coexist, and lifting one
--    leaves the other. SQLite cannot change a primary key in place: the table is rebuilt,
--    its rows copied with their scope (``all`` for the rows before this migration). Every
--    step may run again (the store skips an ADD COLUMN whose column is there; the copy
--    keeps each row's scope).
ALTER TABLE suppressions ADD COLUMN scope TEXT NOT NULL DEFAULT 'all';
CREATE TABLE IF NOT EXISTS suppressions_scoped (
    tenant TEXT NOT NULL,
    address TEXT NOT NULL,
    reason TEXT NOT NULL,
    since REAL NOT NULL,
    expires_at REAL,
    event_id INTEGER,
    note TEXT NOT NULL DEFAULT '',
    scope TEXT NOT NULL DEFAULT 'all',
    PRIMARY KEY (tenant, address, scope)
);
INSERT OR REPLACE INTO suppressions_scoped (tenant, address, reason, since, expires_at, event_id, note, scope)
    SELECT tenant, address, reason, since, expires_at, event_id, note, scope FROM suppressions;
DROP TABLE suppressions;
ALTER TABLE suppressions_scoped RENAME TO suppressions;

-- 4. Probations: the last unblock of each (tenant, address), until when it runs, and the
--    ``unsuppressed`` event that started it (the one a ``probation_failure`` ends). A re-block
--    ends it (any suppression since ``since``); a new unblock replaces it.
CREATE TABLE IF NOT EXISTS probations (
    tenant TEXT NOT NULL,
    address TEXT NOT NULL,
    since REAL NOT NULL,
    until REAL NOT NULL,
    unblock_event_id INTEGER,
    PRIMARY KEY (tenant, address)
)
