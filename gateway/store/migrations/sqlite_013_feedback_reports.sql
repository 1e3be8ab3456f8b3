-- Feedback-loop reports (issue 16 item 6). ARF reports that arrive at ``bounce.fbl_address``
-- and cannot be attributed to a recipient (no valid return-path token in the enclosed
-- original, and no message with its Message-ID and recipient) are kept here so an operator
-- can see them (``GET /api/v1/feedback-reports``); they never suppress anybody. Bounded:
-- retention deletes rows older than 30 days and keeps at most the newest 10,000
-- (``store.feedback_queries``). No tenant: nothing attributed them to one.
CREATE TABLE IF NOT EXISTS feedback_reports (
    id INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,
    feedback_type TEXT NOT NULL,
    reporter TEXT NOT NULL DEFAULT '',
    source_ip TEXT NOT NULL DEFAULT '',
    original_mail_from TEXT NOT NULL DEFAULT '',
    original_rcpt_to TEXT NOT NULL DEFAULT '',
    original_message_id TEXT NOT NULL DEFAULT '',
    arrival_date TEXT NOT NULL DEFAULT '',
    why TEXT NOT NULL,
    size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_reports_received ON feedback_reports (received_at);
-- Attribution by Message-ID does not know the tenant: look the Message-ID up alone.
CREATE INDEX IF NOT EXISTS messages_message_id_any ON messages (message_id) WHERE message_id IS NOT NULL
