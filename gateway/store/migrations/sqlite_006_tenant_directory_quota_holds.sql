-- Tenant directory and quota holds. (Statements are split on ";\n": no semicolon may end a
-- line inside a statement, so each trigger body sits on one line.)
--
-- One counter for every change to tenants, their credentials and their DKIM keys, bumped by
-- triggers in the transaction of the change itself, whoever writes (the admin API, the CLI,
-- another process): each process's tenant directory (``gateway.tenants``) reads it about
-- once a second and reloads when it moved.
CREATE TABLE tenant_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
);
INSERT INTO tenant_generation (id, generation) VALUES (1, 1);
CREATE TRIGGER tenants_inserted AFTER INSERT ON tenants BEGIN UPDATE tenant_generation SET generation = generation + 1; END;
CREATE TRIGGER tenants_updated AFTER UPDATE ON tenants BEGIN UPDATE tenant_generation SET generation = generation + 1; END;
CREATE TRIGGER tenants_deleted AFTER DELETE ON tenants BEGIN UPDATE tenant_generation SET generation = generation + 1; END;
CREATE TRIGGER credentials_inserted AFTER INSERT ON credentials BEGIN UPDATE tenant_generation SET generation = generation + 1; END;
CREATE TRIGGER credentials_updated AFTER UPDATE ON credentials BEGIN UPDATE tenant_generation SET generation = generation + 1; END;
CREATE TRIGGER credentials_deleted AFTER DELETE ON credentials BEGIN UPDATE tenant_generation SET generation = generation + 1; END;
CREATE TRIGGER dkim_keys_inserted AFTER INSERT ON dkim_keys BEGIN UPDATE tenant_generation SET generation = generation + 1; END;
CREATE TRIGGER dkim_keys_updated AFTER UPDATE ON dkim_keys BEGIN UPDATE tenant_generation SET generation = generation + 1; END;
CREATE TRIGGER dkim_keys_deleted AFTER DELETE ON dkim_keys BEGIN UPDATE tenant_generation SET generation = generation + 1; END;

-- Quotas counted per minute. ``used`` is the tenant's recipients of that minute (epoch
-- seconds // 60): held at RCPT by a transaction still open, or queued. A hold is taken in
-- the same write as the count it is checked against, so sessions and processes never
-- accept more than the quota together. Kept only for a tenant with a quota, from its first
-- hold on (``quota_tracking``, seeded then from the ``queued`` events of the last day and
-- the holds of transactions still open).
CREATE TABLE quota_usage (
    tenant TEXT NOT NULL,
    minute INTEGER NOT NULL,
    used INTEGER NOT NULL,
    PRIMARY KEY (tenant, minute)
);
-- One row per recipient held by an open transaction (``holder``): settled by the enqueue
-- of its message, given back when the transaction ends without one, or when it expires
-- (its session died with its process).
CREATE TABLE quota_holds (
    holder TEXT NOT NULL,
    address TEXT NOT NULL,
    tenant TEXT NOT NULL,
    minute INTEGER NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (holder, address)
);
CREATE INDEX quota_holds_expiry ON quota_holds (tenant, expires_at);
CREATE TABLE quota_tracking (
    tenant TEXT PRIMARY KEY,
    since REAL NOT NULL
);
-- A tenant left without quotas stops being counted; a quota set again is seeded afresh.
CREATE TRIGGER quota_untracked AFTER UPDATE OF hourly_quota, daily_quota ON tenants WHEN new.hourly_quota IS NULL AND new.daily_quota IS NULL BEGIN DELETE FROM quota_tracking WHERE tenant = new.name; DELETE FROM quota_usage WHERE tenant = new.name; END
