"""Reading a few header fields from raw message bytes, and building the ones we prepend.

Owns: a bounded, read-only scan of the header block (RFC 5322 §2.2: fields, folding) and
the ``Received:`` line (RFC 5321 §4.4), shared by the intake and the relay's DKIM signer.
The message is never parsed into objects and regenerated: this Python lacks the fixes for
CVE-2023-27043 and CVE-2024-6923, so we only read bytes and prepend our own lines, and no
CR or LF from the peer ever reaches them.
"""

from __future__ import annotations

import re
from email.header import decode_header, make_header

MAX_HEADER_BLOCK = 256 * 1024
_ADDRESS = re.compile(r"^[^@\s<>\"(),;:]+@([A-Za-z0-9.\-]+)$")
_ANGLE = re.compile(r"<([^<>]*)>")


def header_block(raw: bytes) -> bytes:
    """The header block (up to the first empty line), bounded to ``MAX_HEADER_BLOCK``."""
    head = raw[:MAX_HEADER_BLOCK]
    for sep in (b"\r\n\r\n", b"\n\n"):
        end = head.find(sep)
        if end != -1:
            return head[: end + len(sep) // 2]
    return head


def value(head: bytes, name: bytes) -> str | None:
    """The unfolded value of the first field called ``name`` (case-insensitive), or None."""
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    prefix = name.lower() + b":"
    for i, line in enumerate(lines):
        if line[: len(prefix)].lower() != prefix:
            continue
        parts = [line[len(prefix) :]]
        for cont in lines[i + 1 :]:
            if cont[:1] not in (b" ", b"\t"):
                break
            parts.append(cont)
        return b" ".join(p.strip() for p in parts).decode("utf-8", "replace").strip()
    return None


def from_domain(head: bytes) -> str | None:
    """The lower-cased domain of the ``From:`` address, or None when missing or invalid."""
    raw = value(head, b"from")
    if not raw:
        return None
    # Not email.utils.getaddresses: CVE-2023-27043 makes it misparse crafted lists, which is
    # exactly what a sender-domain check must not do. One address, either in angle brackets
    # or alone, with nothing ambiguous around it.
    angles = _ANGLE.findall(raw)
    if len(angles) > 1:
        return None
    candidate = angles[0] if angles else raw
    if angles and ("@" in _ANGLE.sub("", raw.split('"')[-1])):
        return None  # another address outside the brackets
    match = _ADDRESS.match(candidate.strip())
    return match.group(1).lower() if match else None


def subject(head: bytes) -> str:
    """The decoded ``Subject:`` (RFC 2047 words), one line, at most 200 characters."""
    raw = value(head, b"subject")
    if not raw:
        return ""
    try:
        text = str(make_header(decode_header(raw)))
    except (ValueError, LookupError, UnicodeError):
        text = raw
    return " ".join(text.split())[:200]


def received(
    *,
    helo: str,
    peer: str,
    by: str,
    queue_id: str,
    tls: bool,
    auth: bool,
    recipient: str | None,
    when: str,
) -> bytes:
    """Our ``Received:`` field (RFC 5321 §4.4; protocol names from RFC 3848)."""
    protocol = "ESMTP" + ("S" if tls else "") + ("A" if auth else "")
    line = f"Received: from {helo} ([{peer}])\r\n\tby {by} with {protocol} id {queue_id}"
    if recipient is not None:
        line += f"\r\n\tfor <{recipient}>"
    line += f"; {when}\r\n"
    return line.encode("utf-8")
