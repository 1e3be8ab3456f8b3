-- The recipient as the client gave it at RCPT (issue 14 item 7): local parts are
-- case-sensitive on the wire (RFC 5321 §2.4), so the relay sends ``RCPT TO`` with this form.
-- ``address`` (lower-cased, the canonical form) stays the key of every look-up: suppressions,
-- policy, history, the admin API. Empty when the two are the same (and for rows queued before
-- this migration, which go out as before). Written at intake, read only by the relay's claim.
ALTER TABLE recipients ADD COLUMN rcpt_to text NOT NULL DEFAULT ''
