-- The webhook endpoints set with the store's set_webhook (table tenant_webhooks) move the
-- tenant directory's counter too, like every other tenant setting (migration 006): each
-- process's directory, which the webhook outbox asks for the tenants with an endpoint, sees
-- a change within about a second.
CREATE TRIGGER IF NOT EXISTS tenant_webhooks_inserted AFTER INSERT ON tenant_webhooks BEGIN UPDATE tenant_generation SET generation = generation + 1; END;
CREATE TRIGGER IF NOT EXISTS tenant_webhooks_updated AFTER UPDATE ON tenant_webhooks BEGIN UPDATE tenant_generation SET generation = generation + 1; END;
CREATE TRIGGER IF NOT EXISTS tenant_webhooks_deleted AFTER DELETE ON tenant_webhooks BEGIN UPDATE tenant_generation SET generation = generation + 1; END
