-- PostgreSQL dialect of sqlite_010_holds_and_pause.sql (see there).
CREATE TABLE IF NOT EXISTS tenant_policies (
    tenant text PRIMARY KEY,
    suppressed_action text,
    hold_window_seconds double precision,
    pause_bounce_rate double precision,
    pause_complaint_rate double precision,
    pause_min_messages bigint,
    pause_window_seconds double precision,
    pause_delivery integer,
    paused integer NOT NULL DEFAULT 0,
    delivery_paused integer NOT NULL DEFAULT 0,
    paused_at double precision,
    pause_cause text,
    resumed_at double precision,
    pause_note text NOT NULL DEFAULT ''
);
CREATE OR REPLACE TRIGGER tenant_policies_changed AFTER INSERT OR UPDATE OR DELETE ON tenant_policies
    FOR EACH ROW EXECUTE FUNCTION gateway_tenants_changed();
ALTER TABLE recipients ADD COLUMN IF NOT EXISTS held_until double precision;
CREATE INDEX IF NOT EXISTS recipients_held_until ON recipients (held_until) WHERE held_until IS NOT NULL;
