"""Complaints: ARF feedback reports and the other ways receivers say "this recipient objected".

Owns: RFC 5965 Abuse Reporting Format reports (``message/feedback-report``: Feedback-Type,
Original-Rcpt-To, the enclosed original message), Microsoft's JMRP complaint mails (the enclosed
message carries ``X-HmXmrOriginalRecipient``), and unsubscribe requests sent by mail clients
(Apple Mail's ``X-Apple-Unsubscribe``; RFC 2369 ``mailto:`` unsubscribe replies such as
"unsubscribe" or Portuguese "SAIR"). Does not own: delivery failures (``dsn``, ``freetext``).

Every complaint is category ``complaint``; ``feedback_type`` says which kind (``abuse``,
``fraud``, ``opt-out``, ``auth-failure``…). An ``auth-failure`` report is still a complaint; the
policy layer alerts the operator instead of suppressing (docs/architecture.md, "Categories").
"""

from __future__ import annotations

from gateway.bounce.cache import regex
from gateway.bounce.decode import collapse_ws
from gateway.bounce.dsn import address_of
from gateway.bounce.mime import Part
from gateway.bounce.report import BounceReport
from gateway.core.category import Category

# RFC 5965 §7.3 registry plus widely used extensions.
_FEEDBACK_TYPES = frozenset(
    {"abuse", "fraud", "virus", "other", "not-spam", "auth-failure", "dmarc", "opt-out"}
)
_ADDRESS = regex(r"[A-Za-z0-9.!#$%&'*+=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_UNSUBSCRIBE_SUBJECTS = frozenset(
    {"unsubscribe", "sair", "descadastrar", "remover", "cancelar", "remove", "stop", "baja"}
)
_MAX_RECIPIENTS = 200


def is_feedback_report(root: Part) -> bool:
    """Return True when ``root`` is an RFC 5965 report.

    Args:
        root: the parsed message.
    """
    if root.params.get("report-type", "").lower() == "feedback-report":
        return True
    return any(part.ctype == "message/feedback-report" for part in root.walk())


def parse_feedback(root: Part) -> list[BounceReport]:
    """Read an ARF report into one complaint per reported recipient (RFC 5965 §3.1-§3.2).

    Recipients come from ``Original-Rcpt-To`` (or ``Removal-Recipient``); failing those, from the
    To field of the enclosed original message. A report that names none yields a single report
    with ``recipient=None``.

    Args:
        root: the parsed message.
    """
    fields: list[tuple[str, str]] = []
    enclosed: list[Part] = []
    for part in root.walk():
        if part.ctype == "message/feedback-report":
            fields.extend(_fields(part.text()))
        if part.enclosed is not None:
            enclosed.append(part.enclosed)
    if not fields and root.ctype == "text/plain":
        fields = _fields(root.text())  # some senders paste the fields into a text body
    ftype = next((v.lower() for k, v in fields if k == "feedback-type"), "abuse")
    ftype = ftype.split()[0] if ftype.split() else "abuse"
    if ftype not in _FEEDBACK_TYPES:
        ftype = "other"
    recipients: list[str] = []
    for key, value in fields:
        if key in {"original-rcpt-to", "removal-recipient"}:
            addr = address_of(value)
            if addr and "@" in addr and addr not in recipients:
                recipients.append(addr)
    if not recipients:
        for msg in enclosed:
            for addr in _ADDRESS.findall(msg.get("to")):
                if addr.lower() not in recipients:
                    recipients.append(addr.lower())
    source = next((v for k, v in fields if k == "source-ip"), "")
    diagnostic = collapse_ws(f"feedback-type: {ftype} source-ip: {source}".strip())
    targets: list[str | None] = list(recipients[:_MAX_RECIPIENTS]) or [None]
    return [_complaint(addr, ftype, diagnostic) for addr in targets]


def parse_other_complaint(root: Part) -> list[BounceReport]:
    """Read JMRP complaints and client unsubscribe requests; ``[]`` when ``root`` is neither.

    Args:
        root: the parsed message.
    """
    for part in root.walk():
        if not part.carries_message:
            continue
        original = part.enclosed_get("x-hmxmroriginalrecipient")
        if original:
            addr = address_of(original)
            return [_complaint(addr, "abuse", "microsoft jmrp complaint")]
    subject = root.get("subject").strip().lower()
    asked = subject in _UNSUBSCRIBE_SUBJECTS and len(root.body) < 4096
    if asked or root.get("x-apple-unsubscribe").strip().lower() == "true":
        found = _ADDRESS.findall(root.get("from"))
        addr = found[-1].lower() if found else None
        return [_complaint(addr, "opt-out", f"unsubscribe request: {subject}"[:200])]
    return []


def _complaint(recipient: str | None, ftype: str, diagnostic: str) -> BounceReport:
    return BounceReport(
        recipient=recipient,
        action=None,
        status=None,
        reply_code=None,
        diagnostic=diagnostic,
        remote_mta=None,
        kind="arf",
        category=Category.COMPLAINT,
        feedback_type=ftype,
    )


def _fields(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for line in text.replace("\r\n", "\n").split("\n")[:2000]:
        name, sep, value = line.partition(":")
        if sep and name and " " not in name.strip() and len(name) < 60:
            out.append((name.strip().lower(), value.strip()))
    return out
