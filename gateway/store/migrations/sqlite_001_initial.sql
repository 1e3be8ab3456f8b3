-- Initial schema. Times are UNIX epoch seconds (REAL), UTC.
CREATE TABLE tenants (
    name TEXT PRIMARY KEY,
    allowed_sender_domains TEXT NOT NULL DEFAULT '',
    hourly_quota INTEGER,
    daily_quota INTEGER,
    created_at REAL NOT NULL
);

CREATE TABLE credentials (
    username TEXT PRIMARY KEY,
    tenant TEXT NOT NULL REFERENCES tenants(name),
    secret_hash TEXT NOT NULL,
    created_at REAL NOT NULL
);

CREATE TABLE messages (
    queue_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    mail_from TEXT NOT NULL,
    message_id TEXT,
    subject TEXT NOT NULL DEFAULT '',
    size INTEGER NOT NULL,
    received_at REAL NOT NULL,
    client_address TEXT NOT NULL DEFAULT '',
    content BLOB,
    held INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX messages_message_id ON messages (tenant, message_id) WHERE message_id IS NOT NULL;
CREATE INDEX messages_received ON messages (received_at);

-- One row per recipient. due_at is set while the recipient waits for an attempt (queued,
-- deferred) and while it is leased (then it is the lease expiry); NULL once final.
CREATE TABLE recipients (
    id INTEGER PRIMARY KEY,
    queue_id TEXT NOT NULL REFERENCES messages(queue_id) ON DELETE CASCADE,
    tenant TEXT NOT NULL,
    address TEXT NOT NULL,
    status TEXT NOT NULL,
    due_at REAL,
    lease_owner TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    first_attempt_at REAL,
    updated_at REAL NOT NULL,
    category TEXT,
    last_reply TEXT NOT NULL DEFAULT ''
);
CREATE INDEX recipients_due ON recipients (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX recipients_address ON recipients (address, tenant);
CREATE INDEX recipients_queue ON recipients (queue_id);
CREATE INDEX recipients_status ON recipients (status);

CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    recipient_id INTEGER,
    queue_id TEXT,
    tenant TEXT NOT NULL,
    address TEXT NOT NULL,
    type TEXT NOT NULL,
    at REAL NOT NULL,
    category TEXT,
    reply_code INTEGER,
    enhanced TEXT,
    text TEXT NOT NULL DEFAULT '',
    remote_host TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    details TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX events_address ON events (address, at);
CREATE INDEX events_recipient ON events (recipient_id);
CREATE INDEX events_tenant_type_at ON events (tenant, type, at);

CREATE TABLE suppressions (
    tenant TEXT NOT NULL,
    address TEXT NOT NULL,
    reason TEXT NOT NULL,
    since REAL NOT NULL,
    expires_at REAL,
    event_id INTEGER,
    note TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (tenant, address)
);
