"""Feedback-loop reports read for attribution: who sent the original, and which message.

Owns: reading, from a complaint sent to the feedback-loop address (RFC 5965 ARF, as Yahoo's
CFL and most providers send it; Microsoft's JMRP, which encloses the original with
``X-HmXmrOriginalRecipient``), what attributing it needs: the return paths of ours the
enclosed original carries (``Original-Mail-From``, the original's ``Return-Path`` and any
other header naming an address at the bounce domain), the original's Message-ID, the
reported recipients, and who reports. Does not own: the per-recipient complaint records
(``arf``, through ``parse_bounce``), checking a token's signature (``core.verp``) or looking
messages up (``smtp_in.feedback_loop``).

Pure: bytes in, a record out, no I/O; bounded in the addresses it collects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.bounce import mime
from gateway.bounce.arf import is_feedback_report
from gateway.bounce.decode import decode_header
from gateway.bounce.dsn import address_of

_MAX_ADDRESSES = 20
_FEEDBACK_TYPES = frozenset(
    {"abuse", "fraud", "virus", "other", "not-spam", "auth-failure", "dmarc", "opt-out"}
)
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


@dataclass(frozen=True, slots=True)
class FeedbackLoopReport:
    """What a feedback-loop report says about the original it complains about.

    Attributes:
        feedback_type: the ARF ``Feedback-Type`` (``abuse`` for JMRP), lower case.
        recipients: the reported recipients, lower case: ``Original-Rcpt-To`` (or
            ``Removal-Recipient``), else JMRP's ``X-HmXmrOriginalRecipient``, else the
            enclosed original's To.
        return_paths: addresses at the bounce domain the original carries, most telling
            first (``Original-Mail-From``, ``Return-Path``, then any other header field).
        message_id: the enclosed original's Message-ID, angle brackets kept ("" if none).
        original_mail_from: ``Original-Mail-From``, else the original's Return-Path.
        reporter: the ARF ``User-Agent``, else the domain of the report's From.
        source_ip: the ARF ``Source-IP``.
        arrival_date: the ARF ``Arrival-Date`` (or ``Received-Date``), as written.
    """

    feedback_type: str
    recipients: tuple[str, ...]
    return_paths: tuple[str, ...]
    message_id: str
    original_mail_from: str
    reporter: str
    source_ip: str
    arrival_date: str


def read_feedback(raw: bytes, bounce_domain: str) -> FeedbackLoopReport | None:
    """Read a complaint report for attribution; ``None`` when ``raw`` is not one.

    Args:
        raw: the report as received.
        bounce_domain: our bounce domain (``bounce.domain``): only addresses there are
            collected as return paths.
    """
    root = mime.parse(raw)
    originals = [p.enclosed for p in root.walk() if p.carries_message and p.enclosed is not None]
    jmrp = next(
        (o.get("x-hmxmroriginalrecipient") for o in originals if o.get("x-hmxmroriginalrecipient")),
        "",
    )
    if not is_feedback_report(root) and not jmrp:
        return None
    fields: dict[str, list[str]] = {}
    for part in root.walk():
        if part.ctype == "message/feedback-report":
            head, _ = mime.parse_headers(part.text().encode("utf-8", "replace") + b"\n\n")
            for name, value in head:
                fields.setdefault(name, []).append(decode_header(value).strip())
    ftype = (fields.get("feedback-type") or ["abuse"])[0].lower().split()
    feedback_type = ftype[0] if ftype and ftype[0] in _FEEDBACK_TYPES else "other"
    original = originals[0] if originals else None

    recipients: list[str] = []
    reported = fields.get("original-rcpt-to", []) + fields.get("removal-recipient", [])
    for value in [*reported, jmrp]:
        _add(recipients, address_of(value) if value else None)
    if not recipients and original is not None:
        for value in original.get_all("to"):
            for found in _ADDRESS.findall(value):
                _add(recipients, found)

    domain = bounce_domain.lower().rstrip(".")
    ours: list[str] = []
    mail_from = (fields.get("original-mail-from") or [""])[0]
    return_path = original.get("return-path") if original is not None else ""
    for value in (mail_from, return_path):
        _add_ours(ours, value, domain)
    if original is not None:
        for _, value in original.headers:
            _add_ours(ours, value, domain)

    sender = _ADDRESS.findall(root.get("from"))
    reporter = (fields.get("user-agent") or [""])[0] or (
        sender[-1].rpartition("@")[2].lower() if sender else ""
    )
    return FeedbackLoopReport(
        feedback_type="abuse" if jmrp and not fields else feedback_type,
        recipients=tuple(recipients),
        return_paths=tuple(ours),
        message_id=(original.get("message-id").strip() if original is not None else ""),
        original_mail_from=address_of(mail_from or return_path) or "",
        reporter=reporter[:200],
        source_ip=(fields.get("source-ip") or [""])[0][:64],
        arrival_date=(fields.get("arrival-date") or fields.get("received-date") or [""])[0][:100],
    )


def _add(found: list[str], address: str | None) -> None:
    if address and "@" in address and len(found) < _MAX_ADDRESSES:
        address = address.lower()
        if address not in found:
            found.append(address)


def _add_ours(found: list[str], value: str, domain: str) -> None:
    """Signed return paths (``<local>+<token>@domain``) in ``value``; not the unsubscribe
    addresses (``u+…``) a List-Unsubscribe field of the original carries."""
    for address in _ADDRESS.findall(decode_header(value) if value else ""):
        local, _, at = address.rpartition("@")
        if at.lower().rstrip(".") == domain and "+" in local and not local.lower().startswith("u+"):
            _add(found, address)
