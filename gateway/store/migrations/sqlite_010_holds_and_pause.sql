-- Hold instead of refuse, and the tenant pause (issue 15 items 2 and 4). (Statements are
-- split on ";\n": each trigger body sits on one line.)
--
-- A tenant's policy settings (NULL: the operator's [policy] default) and its pause, in a
-- table of their own beside ``tenants``; a change moves the tenant directory's counter like
-- every tenant setting (migration 006), so every process sees a pause within a second.
CREATE TABLE IF NOT EXISTS tenant_policies (
    tenant TEXT PRIMARY KEY,
    suppressed_action TEXT,
    hold_window_seconds REAL,
    pause_bounce_rate REAL,
    pause_complaint_rate REAL,
    pause_min_messages INTEGER,
    pause_window_seconds REAL,
    pause_delivery INTEGER,
    paused INTEGER NOT NULL DEFAULT 0,
    -- paused and its deliveries too (pause_delivery resolved when paused): the relay's claim
    -- skips the tenant's recipients while set.
    delivery_paused INTEGER NOT NULL DEFAULT 0,
    paused_at REAL,
    pause_cause TEXT,
    resumed_at REAL,
    pause_note TEXT NOT NULL DEFAULT ''
);
CREATE TRIGGER IF NOT EXISTS tenant_policies_inserted AFTER INSERT ON tenant_policies BEGIN UPDATE tenant_generation SET generation = generation + 1; END;
CREATE TRIGGER IF NOT EXISTS tenant_policies_updated AFTER UPDATE ON tenant_policies BEGIN UPDATE tenant_generation SET generation = generation + 1; END;
CREATE TRIGGER IF NOT EXISTS tenant_policies_deleted AFTER DELETE ON tenant_policies BEGIN UPDATE tenant_generation SET generation = generation + 1; END;
-- A recipient held because its address was suppressed: status ``held``, ``due_at`` NULL
-- (the relay never claims it), ``held_until`` the end of its hold window. An administrator's
-- hold of a message (``messages.held``) leaves ``held_until`` NULL: the two never mix.
ALTER TABLE recipients ADD COLUMN held_until REAL;
CREATE INDEX IF NOT EXISTS recipients_held_until ON recipients (held_until) WHERE held_until IS NOT NULL
