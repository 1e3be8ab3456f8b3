-- Webhooks: each tenant's endpoint and signing secret, and the durable outbox. PostgreSQL
-- dialect of sqlite_004_webhooks.sql. Times are UNIX epoch seconds, UTC.
CREATE TABLE tenant_webhooks (
    tenant text PRIMARY KEY,
    url text NOT NULL,
    secret text NOT NULL,
    created_at double precision NOT NULL
);

-- One row per event to deliver. state: pending (next_at = when to try; pushed forward while
-- a dispatcher holds it, so a crashed dispatcher's rows come back), delivered, or failed
-- (gave up: attempts exhausted, 410 Gone, or a refused target).
CREATE TABLE webhook_outbox (
    id text PRIMARY KEY,
    tenant text NOT NULL,
    type text NOT NULL,
    body bytea NOT NULL,
    state text NOT NULL DEFAULT 'pending',
    attempts integer NOT NULL DEFAULT 0,
    created_at double precision NOT NULL,
    next_at double precision,
    delivered_at double precision,
    last_error text NOT NULL DEFAULT ''
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_at) WHERE state = 'pending';
CREATE INDEX webhook_outbox_tenant ON webhook_outbox (tenant, created_at);

-- Where the dispatcher finds a tenant's endpoint: tenant_webhooks (store.set_webhook) first,
-- else the webhook_url/webhook_secret the admin API keeps on the tenant (migration 003).
CREATE VIEW webhook_endpoints AS
    SELECT tenant, url, secret FROM tenant_webhooks
    UNION ALL
    SELECT name, webhook_url, webhook_secret FROM tenants
    WHERE webhook_url != '' AND name NOT IN (SELECT tenant FROM tenant_webhooks);
