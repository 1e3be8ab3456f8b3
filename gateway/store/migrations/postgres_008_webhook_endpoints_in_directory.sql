-- PostgreSQL dialect of sqlite_008_webhook_endpoints_in_directory.sql (see there).
CREATE OR REPLACE TRIGGER tenant_webhooks_changed AFTER INSERT OR UPDATE OR DELETE ON tenant_webhooks
    FOR EACH ROW EXECUTE FUNCTION gateway_tenants_changed();
