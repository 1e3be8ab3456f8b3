-- Typed reasons (``core.model.Reason``) on every event and suppression. The gateway no
-- longer works a reason out from a reply's words: this migration does it once, for the rows
-- older gateways wrote, and is the one place that reads their replies. (Statements are
-- split on ";\n" for SQLite: no semicolon may end a line inside a statement.)
-- The same steps as postgres_007_typed_reasons.sql.
--
-- 1. Refusals at RCPT were stored as ``intake_refused``: take the check's reason the intake
--    kept in ``details``, when it names one.
UPDATE events SET reason = json_extract(details, '$.reason')
    WHERE type = 'rejected' AND reason = 'intake_refused' AND json_valid(details)
    AND json_extract(details, '$.reason') IN (
        'too_many_recipients', 'invalid', 'typo', 'no_such_domain', 'null_mx', 'dns_tempfail',
        'suppressed', 'quota', 'store_unavailable'
    );

-- 2. Older refusals: the reply sent names the check (``core.replies``), where one reply
--    belongs to one check. 553 5.1.3 and 452 4.5.3 are shared by two checks each: the
--    words of their fixed texts tell them apart. Anything else: ``legacy_unknown``.
UPDATE events SET reason = CASE
    WHEN reply_code = 553 AND enhanced = '5.1.3' AND lower(text) LIKE '%misspelt%' THEN 'typo'
    WHEN reply_code = 553 AND enhanced = '5.1.3' THEN 'invalid'
    WHEN reply_code = 550 AND enhanced = '5.1.2' THEN 'no_such_domain'
    WHEN reply_code = 556 AND enhanced = '5.1.10' THEN 'null_mx'
    WHEN reply_code = 451 AND enhanced = '4.4.3' THEN 'dns_tempfail'
    WHEN reply_code = 550 AND enhanced = '5.7.1' THEN 'suppressed'
    WHEN reply_code = 452 AND enhanced = '4.5.3' AND lower(text) LIKE '%quota%' THEN 'quota'
    WHEN reply_code = 452 AND enhanced = '4.5.3' AND lower(text) LIKE '%too many recipients%'
        THEN 'too_many_recipients'
    WHEN reply_code = 451 AND enhanced = '4.3.0' THEN 'store_unavailable'
    ELSE 'legacy_unknown' END
    WHERE type = 'rejected' AND reason = 'intake_refused';

-- 3. ``queued`` events had no reason.
UPDATE events SET reason = 'queued' WHERE type = 'queued' AND reason = '';

-- 4. A report read by a reader the list does not name: ``report_other``.
UPDATE events SET reason = 'report_other'
    WHERE type = 'report' AND substr(reason, 1, 7) = 'report_' AND reason NOT IN (
    'invalid', 'typo', 'no_such_domain', 'null_mx', 'dns_tempfail', 'suppressed', 'quota',
    'too_many_recipients', 'store_unavailable', 'queued', 'possible_typo',
    'duplicate_message_id', 'accepted', 'transient_failure', 'permanent_failure',
    'queue_lifetime_exceeded', 'report_dsn', 'report_arf', 'report_auto_reply',
    'report_nonstandard', 'report_none', 'report_unparseable', 'report_other', 'repeated_failures',
    'nonexistent_address', 'complaint', 'opt_out', 'manual', 'admin_unblock', 'held_by_admin',
    'released_by_admin', 'deleted_by_admin', 'legacy_unknown'
    );

-- 5. Any other reason no member names: ``legacy_unknown`` (the row keeps its reply and
--    text, so nothing support reads is lost).
UPDATE events SET reason = 'legacy_unknown' WHERE reason NOT IN (
    'invalid', 'typo', 'no_such_domain', 'null_mx', 'dns_tempfail', 'suppressed', 'quota',
    'too_many_recipients', 'store_unavailable', 'queued', 'possible_typo',
    'duplicate_message_id', 'accepted', 'transient_failure', 'permanent_failure',
    'queue_lifetime_exceeded', 'report_dsn', 'report_arf', 'report_auto_reply',
    'report_nonstandard', 'report_none', 'report_unparseable', 'report_other', 'repeated_failures',
    'nonexistent_address', 'complaint', 'opt_out', 'manual', 'admin_unblock', 'held_by_admin',
    'released_by_admin', 'deleted_by_admin', 'legacy_unknown'
);

-- 6. A suppression whose reason is not a suppression reason stays a suppression (the
--    address stays blocked), as ``manual``, its old reason kept in the note.
UPDATE suppressions SET reason = 'manual', note = 'reason before migration 007: ' || reason
    || CASE WHEN note = '' THEN '' ELSE '; ' || note END
    WHERE reason NOT IN (
    'repeated_failures', 'nonexistent_address', 'complaint', 'opt_out', 'manual'
    )
