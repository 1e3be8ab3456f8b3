-- DKIM keys per tenant and signing domain (the From: header's domain).
CREATE TABLE dkim_keys (
    tenant TEXT NOT NULL,
    domain TEXT NOT NULL,
    selector TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    private_key_pem BLOB NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (tenant, domain)
);
