"""Signatures and the SSRF guard: pure functions, tested by tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.core.model import Category, Event, EventType, Status, SuppressionReason
from gateway.observe.events import RecipientChanged
from gateway.observe.webhook_targets import WebhookTargetRefused, check_target
from gateway.observe.webhooks import (
    sign,
    verify_signature,
    webhook_type,
)

SECRET = "s3cret"
BODY = b'{"id":"abc","type":"sent"}'
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
T = int(NOW.timestamp())


def test_signature_round_trip() -> None:
    header = sign(SECRET, BODY, T)
    assert header.startswith(f"t={T},v1=")
    assert verify_signature(SECRET, header, BODY, NOW)


@pytest.mark.parametrize(
    ("secret", "header", "body", "now"),
    [
        ("wrong", sign(SECRET, BODY, T), BODY, NOW),
        (SECRET, sign(SECRET, BODY, T), BODY + b" ", NOW),
        (SECRET, sign(SECRET, BODY, T), BODY, NOW + timedelta(minutes=6)),
        (SECRET, sign(SECRET, BODY, T - 1).replace(f"t={T - 1}", f"t={T}"), BODY, NOW),
        (SECRET, f"t={T}", BODY, NOW),
        (SECRET, "v1=" + "0" * 64, BODY, NOW),
        (SECRET, "", BODY, NOW),
        (SECRET, "garbage", BODY, NOW),
    ],
    ids=["wrong-secret", "tampered-body", "stale", "moved-timestamp", "no-mac", "no-time",
         "empty", "garbage"],
)  # fmt: skip
def test_bad_signatures_fail(secret: str, header: str, body: bytes, now: datetime) -> None:
    assert not verify_signature(secret, header, body, now)


def test_rotation_any_v1_may_match() -> None:
    old = sign("old-secret", BODY, T).rpartition("v1=")[2]
    header = f"{sign(SECRET, BODY, T)},v1={old}"
    assert verify_signature("old-secret", header, BODY, NOW)
    assert verify_signature(SECRET, header, BODY, NOW)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://172.16.5.4/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fe80::1]/hook",
        "http://[fd00::1]/hook",
        "http://0.0.0.0/hook",
        "http://127.1/hook",
        "http://2130706433/hook",
        "http://0x7f.0.0.1/hook",
        "http://localhost/hook",
        "http://api.localhost/hook",
        "ftp://example.com/hook",
        "file:///etc/passwd",
        "not a url",
    ],
)
def test_ssrf_guard_refuses(url: str) -> None:
    with pytest.raises(WebhookTargetRefused):
        check_target(url, allow_private=False)


@pytest.mark.parametrize(
    "url",
    ["https://hooks.example.com/gateway", "http://8.8.8.8/hook", "https://[2001:4860::8888]/h"],
)
def test_ssrf_guard_allows_public_targets(url: str) -> None:
    check_target(url, allow_private=False)


def test_private_targets_allowed_when_configured() -> None:
    check_target("http://127.0.0.1:8080/hook", allow_private=True)
    with pytest.raises(WebhookTargetRefused):
        check_target("ftp://127.0.0.1/", allow_private=True)


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (Event(1, "t", "a@b", EventType.SENT, NOW), "sent"),
        (Event(1, "t", "a@b", EventType.REPORT, NOW, category=Category.COMPLAINT), "complaint"),
        (Event(1, "t", "a@b", EventType.REPORT, NOW, category=Category.DELIVERED), "report"),
        (Event(None, "t", "a@b", EventType.SUPPRESSED, NOW,
               reason=SuppressionReason.OPT_OUT), "opt_out"),
        (Event(None, "t", "a@b", EventType.SUPPRESSED, NOW,
               reason=SuppressionReason.COMPLAINT), "suppressed"),
        (Event(None, "t", "a@b", EventType.UNSUPPRESSED, NOW), "unsuppressed"),
        (Event(None, "t", "a@b", EventType.REJECTED, NOW), "rejected"),
    ],
)  # fmt: skip
def test_webhook_types(event: Event, expected: str) -> None:
    assert webhook_type(RecipientChanged(event, Status.SENT)) == expected
