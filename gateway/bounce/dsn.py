"""RFC 3464 delivery status fields: the machine-readable half of a DSN.

Owns: reading the ``message/delivery-status`` body (RFC 3464 §2.1) into per-recipient records —
Final-Recipient, Original-Recipient, Action, Status, Remote-MTA, Diagnostic-Code — including the
sloppy variants real MTAs send: fields without the blank line between recipients, DSN fields
pasted into a text/plain body, lower-case field names, ``<>`` around addresses. Does not own: the
human-readable notification text (``freetext``) or classification (``classify``).
"""

from __future__ import annotations

import re

from gateway.bounce.cache import regex
from gateway.bounce.decode import collapse_ws
from gateway.bounce.records import Record

# RFC 3464 §2.3 per-recipient fields we use; anything else is ignored.
_RECIPIENT_FIELDS = frozenset(
    {
        "final-recipient",
        "original-recipient",
        "x-actual-recipient",
        "action",
        "status",
        "remote-mta",
        "diagnostic-code",
        "x-postfix-sender",
    }
)
# The lines of a text, all in one pass (see _unfold): a field "Name: value" (the name a letter,
# then 1 to 40 letters, digits or hyphens; white space may precede the colon; the value is
# stripped later), a line of white space only (no group set), or a continuation (what follows
# its first space or tab, never white space only). Other lines do not match; "\n" is never
# crossed.
_LINE = regex(
    r"^(?:([A-Za-z][A-Za-z0-9-]{1,40})[^\S\n]*:[^\S\n]?([^\n]*)|[^\S\n]*$|[ \t]([^\n]*))",
    re.MULTILINE,
)
_MAX_LINES = 5000
# An RFC 3463 code, not part of a dotted IP address or a version number. Each pattern starts
# with its first digit and checks what precedes it with a look-behind over that digit (rather
# than "(?<![\w.])" or "\b" before it), so the regex engine skips to the digits 2, 4 and 5.
_STATUS = regex(r"([245])(?<![\w.][245])\.(\d{1,3})\.(\d{1,3})(?!\.?\d)")
_REPLY_STATUS = regex(r"[245](?<!\w[245])\d\d[ \-'#]{1,3}([245])\.(\d{1,3})\.(\d{1,3})(?!\.?\d)")
_ACTIONS = frozenset({"failed", "delayed", "delivered", "relayed", "expanded"})
_MAX_RECIPIENTS = 500


class DsnRecord(Record):
    """The fields given for one recipient in a delivery-status body."""

    _FIELDS = (
        "recipient",
        "original",
        "action",
        "status",
        "status_comment",
        "remote_mta",
        "diagnostic_type",
        "diagnostic",
    )
    __slots__ = _FIELDS

    recipient: str | None
    original: str | None
    action: str | None
    status: str | None
    status_comment: str
    remote_mta: str | None
    diagnostic_type: str | None
    diagnostic: str

    def __init__(self) -> None:
        self.recipient = self.original = self.action = self.status = None
        self.remote_mta = self.diagnostic_type = None
        self.status_comment = self.diagnostic = ""


def address_of(value: str) -> str | None:
    """Return the address from an RFC 3464 §2.3.2 ``address-type; address`` value, lower-cased.

    Args:
        value: e.g. ``rfc822; <Kijitora@Example.JP>``.
    """
    _, sep, rest = value.partition(";")
    addr = (rest if sep else value).strip().strip("<>\"' ").strip()
    if "<" in addr and ">" in addr:
        addr = addr[addr.index("<") + 1 : addr.index(">")]
    addr = addr.split()[0] if addr.split() else ""
    return addr.lower() or None


def status_of(value: str) -> str | None:
    """Return the RFC 3463 enhanced status code in ``value``, or ``None``.

    A code that follows an SMTP reply code (``550 5.7.1``, ``550-'5.7.1``) is the remote
    server's own and wins over one a relay put in front of it (RFC 3463 §2, RFC 2034 §4).

    Args:
        value: a Status field value or any diagnostic text.
    """
    # The first 4000 characters are read. A reply-and-status match holds a plain status match
    # (same code, same look-arounds), so text without a plain status code needs no second search.
    plain = _STATUS.search(value, 0, 4000)
    if plain is None:
        return None
    match = _REPLY_STATUS.search(value, 0, 4000) or plain
    return ".".join(match.groups())


def parse_fields(text: str) -> list[DsnRecord]:
    """Read per-recipient DSN records from delivery-status text (RFC 3464 §2.2-§2.3).

    Records are separated by blank lines or, when an MTA omits them, by a second
    Final-Recipient. A record without any recipient field is dropped.

    Args:
        text: the decoded body of a message/delivery-status part, or text that embeds one.
    """
    records: list[DsnRecord] = []
    current = DsnRecord()
    seen_recipient_field = False
    for name, value in _unfold(text):
        if name is None:
            if seen_recipient_field:
                records.append(current)
                current = DsnRecord()
                seen_recipient_field = False
            continue
        if name not in _RECIPIENT_FIELDS:
            continue
        # A second Final-Recipient or Original-Recipient starts the next recipient when an MTA
        # leaves out the blank line between recipients (RFC 3464 §2.1).
        starts_new = (name == "final-recipient" and current.recipient is not None) or (
            name == "original-recipient" and current.original is not None
        )
        if starts_new:
            records.append(current)
            current = DsnRecord()
        seen_recipient_field = True
        _apply(current, name, value)
        if len(records) >= _MAX_RECIPIENTS:
            break
    if seen_recipient_field:
        records.append(current)
    out = []
    for rec in records:
        if rec.original is not None and not _plausible(rec.recipient):
            # e.g. "Final-Recipient: rfc822; @smtp.example.net:user@server" (a source route).
            rec.recipient = rec.original
        if rec.recipient is not None:
            out.append(rec)
    return out


def _plausible(addr: str | None) -> bool:
    if not addr or addr.startswith("@") or addr.count("@") != 1:
        return False
    return "." in addr.rpartition("@")[2]


def _apply(rec: DsnRecord, name: str, value: str) -> None:
    if name == "final-recipient":
        rec.recipient = address_of(value)
    elif name == "original-recipient":
        rec.original = address_of(value)
    elif name == "x-actual-recipient" and rec.recipient is None:
        rec.recipient = address_of(value)
    elif name == "action":
        action = value.strip().split(" ")[0].lower().strip("();")
        rec.action = action if action in _ACTIONS else None
    elif name == "status":
        rec.status = status_of(value)
        # "Status: 5.2.1 (mailbox disabled, not accepting messages)": the reporting MTA's words.
        if "(" in value:
            rec.status_comment = collapse_ws(value[value.index("(") :], 200)
    elif name == "remote-mta":
        host = address_of(value)
        rec.remote_mta = host.strip("[]") if host else None
    elif name == "diagnostic-code":
        kind, sep, rest = value.partition(";")
        if sep and len(kind) < 20:
            rec.diagnostic_type = kind.strip().upper()
            rec.diagnostic = collapse_ws(rest)
        else:
            rec.diagnostic = collapse_ws(value)


def _unfold(text: str) -> list[tuple[str | None, str]]:
    """Return (field name, unfolded value) pairs; ``(None, "")`` marks a blank line.

    Of the first _MAX_LINES lines, a line of white space only is blank, a line starting with a
    space or tab continues the field before it (unless a blank line came between), a field line
    (see _LINE) starts a field, and any other line is skipped.
    """
    text = text.replace("\r\n", "\n")
    if text.count("\n") >= _MAX_LINES:
        text = "\n".join(text.split("\n", _MAX_LINES)[:_MAX_LINES])
    out: list[tuple[str | None, str]] = []
    for name, value, rest in _LINE.findall(text):
        if name:
            out.append((name.lower(), value.strip()))
        elif not rest:  # blank
            out.append((None, ""))
        elif out and out[-1][0] is not None:
            field, so_far = out[-1]
            if len(so_far) < 4000:
                out[-1] = (field, so_far + " " + rest.strip())
    return out


def has_fields(text: str) -> bool:
    """Return True when ``text`` carries DSN per-recipient fields (used for text bodies).

    Args:
        text: decoded text of any part.
    """
    lowered = text.lower()
    return "final-recipient:" in lowered or (
        "original-recipient:" in lowered and "action:" in lowered
    )
