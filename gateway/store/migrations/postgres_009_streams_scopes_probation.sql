-- PostgreSQL dialect of sqlite_009_streams_scopes_probation.sql (see there).
ALTER TABLE messages ADD COLUMN IF NOT EXISTS stream text NOT NULL DEFAULT 'transactional';

ALTER TABLE tenants ADD COLUMN IF NOT EXISTS probation_seconds double precision;
ALTER TABLE tenants ADD COLUMN IF NOT EXISTS default_stream text;
ALTER TABLE tenants ADD COLUMN IF NOT EXISTS complaint_scope text;
ALTER TABLE credentials ADD COLUMN IF NOT EXISTS default_stream text;

ALTER TABLE suppressions ADD COLUMN IF NOT EXISTS scope text NOT NULL DEFAULT 'all';
ALTER TABLE suppressions DROP CONSTRAINT IF EXISTS suppressions_pkey;
ALTER TABLE suppressions ADD PRIMARY KEY (tenant, address, scope);

CREATE TABLE IF NOT EXISTS probations (
    tenant text NOT NULL,
    address text NOT NULL,
    since double precision NOT NULL,
    until double precision NOT NULL,
    unblock_event_id bigint,
    PRIMARY KEY (tenant, address)
);
