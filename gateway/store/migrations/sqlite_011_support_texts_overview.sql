-- Support answers and the overview (issue 16 items 1, 3, 4 and 5).
--
-- A tenant's own words for the customer messages, per language: its company name, support
-- channel, the sender address(es) to add to contacts and, optionally, its own message
-- templates (``core.tenant_texts`` validates them when they are saved). One row per
-- (tenant, language, key); a language without rows uses the shipped texts.
CREATE TABLE IF NOT EXISTS tenant_texts (
    tenant TEXT NOT NULL,
    lang TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (tenant, lang, key)
);
-- A tenant's sending activity (last message accepted, messages per day): one range of
-- this index per tenant instead of every message of the period.
CREATE INDEX IF NOT EXISTS messages_tenant_received ON messages (tenant, received_at);
-- Message search by Message-ID across every tenant (the older index leads with the tenant).
CREATE INDEX IF NOT EXISTS messages_message_id_any ON messages (message_id) WHERE message_id IS NOT NULL;
-- The overview's failures per destination and the activity's refusals per day, by type.
CREATE INDEX IF NOT EXISTS events_type_at ON events (type, at);
