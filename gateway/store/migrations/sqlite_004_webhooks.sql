-- Webhooks: each tenant's endpoint and signing secret, and the durable outbox.
-- (Statements are split on ";\n": no semicolon may end a line inside a statement.)
-- Times are UNIX epoch seconds (REAL), UTC.
CREATE TABLE tenant_webhooks (
    tenant TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_at REAL NOT NULL
);

-- One row per event to deliver. state: pending (next_at = when to try; pushed forward while
-- a dispatcher holds it, so a crashed dispatcher's rows come back), delivered, or failed
-- (gave up: attempts exhausted, 410 Gone, or a refused target).
CREATE TABLE webhook_outbox (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    type TEXT NOT NULL,
    body BLOB NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    next_at REAL,
    delivered_at REAL,
    last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_at) WHERE state = 'pending';
CREATE INDEX webhook_outbox_tenant ON webhook_outbox (tenant, created_at);

-- Where the dispatcher finds a tenant's endpoint: tenant_webhooks (store.set_webhook) first,
-- else the webhook_url/webhook_secret the admin API keeps on the tenant (migration 003).
CREATE VIEW webhook_endpoints AS
    SELECT tenant, url, secret FROM tenant_webhooks
    UNION ALL
    SELECT name, webhook_url, webhook_secret FROM tenants
    WHERE webhook_url != '' AND name NOT IN (SELECT tenant FROM tenant_webhooks)
