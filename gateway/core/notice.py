"""The classic bounce notice: an RFC 3464 delivery status notification to the sender.

Owns: building the bytes of a ``multipart/report; report-type=delivery-status`` message
for recipients that finally failed, for tenants whose applications read bounces by mail
instead of webhooks. Pure: strings and bytes in, bytes out.

Nothing from the remote side is copied into a header: remote reply text only appears in
the body (``Diagnostic-Code``, folded to one line), addresses are ones we validated at
intake, and the original message is attached as headers only (``text/rfc822-headers``,
RFC 3462) — its bytes as stored, never re-serialised.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from email.utils import format_datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

_MAX_ORIGINAL_HEADERS = 64 * 1024


@dataclass(frozen=True, slots=True)
class FailedRecipient:
    """One recipient to report on."""

    address: str
    status: str  # enhanced code, e.g. "5.1.1"
    diagnostic: str  # e.g. "smtp; 550 5.1.1 user unknown"
    remote_mta: str
    expired: bool = False


def _clean(text: str, limit: int = 900) -> str:
    """One line, printable ASCII or UTF-8 without control characters, bounded."""
    return "".join(ch if ch >= " " and ch != "\x7f" else " " for ch in text)[:limit].strip()


def build_notice(
    *,
    reporting_mta: str,
    sender: str,
    queue_id: str,
    arrival: datetime,
    now: datetime,
    failed: Sequence[FailedRecipient],
    original: bytes,
) -> bytes:
    """The DSN's bytes (CRLF line ends), to be queued with a null reverse-path.

    Args:
        reporting_mta: our host name (``smtp.hostname``).
        sender: the original envelope sender, the notice's recipient.
        queue_id: the failed message's queue id.
        arrival: when we accepted the message.
        now: the notice's date.
        failed: the recipients that finally failed.
        original: the original message as stored; only its header block is attached.
    """
    boundary = f"=_report_{secrets.token_hex(12)}"
    lines_human = [
        "This is the mail gateway at " + _clean(reporting_mta, 255) + ".",
        "",
        "Your message could not be delivered to the following recipient(s):",
        "",
    ]
    for rcpt in failed:
        why = "gave up after the maximum queue lifetime" if rcpt.expired else "refused"
        lines_human.append(f"  <{_clean(rcpt.address, 320)}>: {why}")
        lines_human.append(f"    {_clean(rcpt.diagnostic, 400)}")
    lines_human += ["", f"Queue id: {_clean(queue_id, 64)}"]
    per_message = [
        f"Reporting-MTA: dns; {_clean(reporting_mta, 255)}",
        f"X-Gateway-Queue-ID: {_clean(queue_id, 64)}",
        f"Arrival-Date: {format_datetime(arrival)}",
    ]
    per_recipient: list[str] = []
    for rcpt in failed:
        per_recipient += [
            "",
            f"Final-Recipient: rfc822; {_clean(rcpt.address, 320)}",
            "Action: failed",
            f"Status: {_clean(rcpt.status, 16) or '5.0.0'}",
        ]
        if rcpt.remote_mta:
            per_recipient.append(f"Remote-MTA: dns; {_clean(rcpt.remote_mta, 255)}")
        per_recipient.append(f"Diagnostic-Code: smtp; {_clean(rcpt.diagnostic)}")
    head_end = original.find(b"\r\n\r\n")
    original_headers = original[: head_end + 2 if head_end != -1 else _MAX_ORIGINAL_HEADERS]
    original_headers = original_headers[:_MAX_ORIGINAL_HEADERS]
    header = [
        f"From: Mail Delivery System <MAILER-DAEMON@{_clean(reporting_mta, 255)}>",
        f"To: <{_clean(sender, 320)}>",
        "Subject: Undelivered Mail Returned to Sender",
        f"Date: {format_datetime(now)}",
        f"Message-ID: <{secrets.token_hex(16)}@{_clean(reporting_mta, 255)}>",
        "Auto-Submitted: auto-replied",  # RFC 3834 §5: never answered automatically
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
    ]
    parts = [
        "\r\n".join(header),
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "",
        "\r\n".join(lines_human),
        "",
        f"--{boundary}",
        "Content-Type: message/delivery-status",
        "",
        "\r\n".join(per_message + per_recipient),
        "",
        f"--{boundary}",
        "Content-Type: text/rfc822-headers",
        "",
    ]
    body = "\r\n".join(parts).encode("utf-8") + b"\r\n"
    tail = f"\r\n--{boundary}--\r\n".encode()
    return body + original_headers.rstrip(b"\r\n") + b"\r\n" + tail
