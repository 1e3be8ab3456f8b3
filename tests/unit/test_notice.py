"""The bounce notice is a DSN our own parser reads back, with nothing injected in headers."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.bounce import parse_bounce
from gateway.core.model import Category
from gateway.core.notice import FailedRecipient, build_notice

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
ORIGINAL = b"From: <app@sender.example>\r\nSubject: Invoice\r\n\r\nsecret body\r\n"


def _notice(*failed: FailedRecipient) -> bytes:
    return build_notice(
        reporting_mta="gateway.example",
        sender="app@sender.example",
        queue_id="Q1",
        arrival=NOW,
        now=NOW,
        failed=failed,
        original=ORIGINAL,
    )


def test_notice_parses_back_to_the_failed_recipients_and_categories() -> None:
    raw = _notice(
        FailedRecipient("gone@example.com", "5.1.1", "550 5.1.1 user unknown", "mx.example.com"),
        FailedRecipient("full@example.com", "5.2.2", "552 5.2.2 mailbox full", "mx.example.com"),
    )
    reports = {r.recipient: r for r in parse_bounce(raw)}
    assert reports["gone@example.com"].category is Category.NONEXISTENT_ADDRESS
    assert reports["full@example.com"].category is Category.MAILBOX_FULL
    assert reports["gone@example.com"].status == "5.1.1"


def test_notice_attaches_only_the_original_headers() -> None:
    raw = _notice(FailedRecipient("a@example.com", "5.1.1", "550 x", ""))
    assert b"Subject: Invoice" in raw
    assert b"secret body" not in raw
    assert b"To: <app@sender.example>" in raw
    assert b"Auto-Submitted: auto-replied" in raw


def test_remote_text_with_line_breaks_stays_on_one_line() -> None:
    evil = "550 no\r\nBcc: victim@example.net\r\n"
    raw = _notice(FailedRecipient("a@example.com", "5.1.1", evil, "mx\r\nX-Injected: 1"))
    assert b"\r\nBcc:" not in raw
    assert b"\r\nX-Injected" not in raw
    assert b"Diagnostic-Code: smtp; 550 no  Bcc: victim@example.net" in raw
