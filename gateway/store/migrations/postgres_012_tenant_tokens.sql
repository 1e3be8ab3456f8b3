-- PostgreSQL dialect of sqlite_012_tenant_tokens.sql (see there).
CREATE TABLE IF NOT EXISTS tenant_tokens (
    token_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    access TEXT NOT NULL CHECK (access IN ('read', 'write')),
    digest TEXT NOT NULL UNIQUE,
    note TEXT NOT NULL DEFAULT '',
    created_at DOUBLE PRECISION NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS tenant_tokens_tenant ON tenant_tokens (tenant, created_at);
