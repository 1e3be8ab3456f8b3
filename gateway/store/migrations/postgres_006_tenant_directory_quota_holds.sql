-- Tenant directory and quota holds: PostgreSQL dialect of
-- sqlite_006_tenant_directory_quota_holds.sql (same tables and meanings; see there).
CREATE TABLE tenant_generation (
    id integer PRIMARY KEY CHECK (id = 1),
    generation bigint NOT NULL
);
INSERT INTO tenant_generation (id, generation) VALUES (1, 1);

CREATE FUNCTION gateway_tenants_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tenant_generation SET generation = generation + 1;
    RETURN NULL;
END $$;
-- Row triggers, as SQLite's: an INSERT … ON CONFLICT DO NOTHING that inserts nothing
-- (every start's ensure_tenant) moves nothing.
CREATE TRIGGER tenants_changed AFTER INSERT OR UPDATE OR DELETE ON tenants
    FOR EACH ROW EXECUTE FUNCTION gateway_tenants_changed();
CREATE TRIGGER credentials_changed AFTER INSERT OR UPDATE OR DELETE ON credentials
    FOR EACH ROW EXECUTE FUNCTION gateway_tenants_changed();
CREATE TRIGGER dkim_keys_changed AFTER INSERT OR UPDATE OR DELETE ON dkim_keys
    FOR EACH ROW EXECUTE FUNCTION gateway_tenants_changed();

CREATE TABLE quota_usage (
    tenant text NOT NULL,
    minute bigint NOT NULL,
    used bigint NOT NULL,
    PRIMARY KEY (tenant, minute)
);
CREATE TABLE quota_holds (
    holder text NOT NULL,
    address text NOT NULL,
    tenant text NOT NULL,
    minute bigint NOT NULL,
    expires_at double precision NOT NULL,
    PRIMARY KEY (holder, address)
);
CREATE INDEX quota_holds_expiry ON quota_holds (tenant, expires_at);
CREATE TABLE quota_tracking (
    tenant text PRIMARY KEY,
    since double precision NOT NULL
);

CREATE FUNCTION gateway_quota_untracked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM quota_tracking WHERE tenant = NEW.name;
    DELETE FROM quota_usage WHERE tenant = NEW.name;
    RETURN NULL;
END $$;
CREATE TRIGGER quota_untracked AFTER UPDATE OF hourly_quota, daily_quota ON tenants
    FOR EACH ROW WHEN (NEW.hourly_quota IS NULL AND NEW.daily_quota IS NULL)
    EXECUTE FUNCTION gateway_quota_untracked();

-- One recipient held for an open transaction, checked against every limit, in one call:
-- SQLite's single writer serialises this in ``store.sqlite_quota``; here an advisory lock
-- per tenant does, and each statement after it reads what was committed before it was
-- taken (READ COMMITTED: a snapshot per statement). Returns NULL when ``p_address`` is
-- held (now or already), else the 0-based index of the first limit it would exceed.
-- ``p_windows`` are in seconds, none longer than ``p_keep`` (the longest window counted).
-- A hold is worth nothing once its session is gone, so its commit does not wait for the
-- WAL flush (synchronous_commit off for this transaction only): the enqueue that settles
-- it commits synchronously, and flushes it with its own.
CREATE FUNCTION gateway_reserve_quota(
    p_tenant text,
    p_holder text,
    p_address text,
    p_now double precision,
    p_expires double precision,
    p_limits bigint[],
    p_windows double precision[],
    p_keep double precision
) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_minute bigint := floor(p_now / 60);
    v_used bigint;
    i integer;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    PERFORM pg_advisory_xact_lock(hashtextextended('gateway quota ' || p_tenant, 0));
    WITH gone AS (
        DELETE FROM quota_holds WHERE tenant = p_tenant AND expires_at <= p_now
        RETURNING minute
    )
    UPDATE quota_usage u SET used = greatest(u.used - g.n, 0)
        FROM (SELECT minute, count(*) AS n FROM gone GROUP BY minute) g
        WHERE u.tenant = p_tenant AND u.minute = g.minute;
    PERFORM 1 FROM quota_holds WHERE holder = p_holder AND address = p_address;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM quota_tracking WHERE tenant = p_tenant) THEN
        DELETE FROM quota_usage WHERE tenant = p_tenant;
        INSERT INTO quota_usage (tenant, minute, used)
            SELECT p_tenant, m, count(*) FROM (
                SELECT floor(at / 60)::bigint AS m FROM events
                WHERE tenant = p_tenant AND type = 'queued' AND at >= p_now - p_keep - 60
                UNION ALL SELECT minute FROM quota_holds WHERE tenant = p_tenant
            ) counted GROUP BY m;
        INSERT INTO quota_tracking (tenant, since) VALUES (p_tenant, p_now);
    END IF;
    DELETE FROM quota_usage
        WHERE tenant = p_tenant AND minute < floor((p_now - p_keep) / 60) - 1;
    FOR i IN 1 .. coalesce(array_length(p_limits, 1), 0) LOOP
        SELECT coalesce(sum(used), 0) INTO v_used FROM quota_usage
            WHERE tenant = p_tenant AND minute >= floor((p_now - p_windows[i]) / 60);
        IF v_used >= p_limits[i] THEN
            RETURN i - 1;
        END IF;
    END LOOP;
    INSERT INTO quota_holds (holder, address, tenant, minute, expires_at)
        VALUES (p_holder, p_address, p_tenant, v_minute, p_expires);
    INSERT INTO quota_usage (tenant, minute, used) VALUES (p_tenant, v_minute, 1)
        ON CONFLICT (tenant, minute) DO UPDATE SET used = quota_usage.used + 1;
    RETURN NULL;
END $$;
