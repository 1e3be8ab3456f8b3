-- DKIM keys per tenant and signing domain (the From: header's domain).
CREATE TABLE dkim_keys (
    tenant text NOT NULL,
    domain text NOT NULL,
    selector text NOT NULL,
    algorithm text NOT NULL,
    private_key_pem bytea NOT NULL,
    created_at double precision NOT NULL,
    PRIMARY KEY (tenant, domain)
);
