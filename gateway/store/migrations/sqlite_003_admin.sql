-- Admin API: per-tenant settings and the audit trail of admin actions.
-- (Statements are split on ";\n": no semicolon may end a line inside a statement.)
ALTER TABLE tenants ADD COLUMN list_unsubscribe INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN bounce_notice INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN webhook_url TEXT NOT NULL DEFAULT '';
ALTER TABLE tenants ADD COLUMN webhook_secret TEXT NOT NULL DEFAULT '';
-- Policy overrides: NULL means "use [policy] from the config".
ALTER TABLE tenants ADD COLUMN failure_threshold INTEGER;
ALTER TABLE tenants ADD COLUMN failure_window_seconds REAL;

-- Who did what through the admin API. ``actor`` is the first 8 hex digits of the sha256 of
-- the token used; ``target`` never holds an erased address in clear (its hash instead).
CREATE TABLE admin_audit (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX admin_audit_at ON admin_audit (at);

CREATE INDEX events_queue ON events (queue_id);
CREATE INDEX events_at ON events (at);
CREATE INDEX recipients_updated ON recipients (updated_at);
