-- Tenant-scoped admin tokens (issue 16 item 2). A token is shown once when it is made; only
-- the SHA-256 of it is kept (``digest``, hex). A token is 32 random bytes, so a plain hash
-- is enough (no key stretching: nothing to guess). A revoked token keeps its row, for the
-- audit trail's ``actor``, with ``revoked_at`` set.
CREATE TABLE IF NOT EXISTS tenant_tokens (
    token_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    access TEXT NOT NULL CHECK (access IN ('read', 'write')),
    digest TEXT NOT NULL UNIQUE,
    note TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at REAL
);
CREATE INDEX IF NOT EXISTS tenant_tokens_tenant ON tenant_tokens (tenant, created_at);
