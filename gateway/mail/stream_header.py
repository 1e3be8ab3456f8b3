"""The ``X-Gateway-Stream`` header on raw bytes: read it, and remove it before relaying.

Owns: finding every ``X-Gateway-Stream`` field in the header block (folded lines included)
and cutting them out of the message's bytes, in the header block only. The message is never
parsed and regenerated (CVE-2023-27043, CVE-2024-6923): the other bytes stay as received,
CRLF or bare LF alike. Does not own: what a stream means (``core.streams``) or the reply to
a bad value (``smtp_in.streams``).
"""

from __future__ import annotations

import re

from gateway.core.streams import STREAM_HEADER
from gateway.mail.rawmail import header_block

_NAME = STREAM_HEADER.lower().encode("ascii") + b":"
_LINES = re.compile(rb"[^\n]*\n|[^\n]+")  # lines with their endings; the last may have none


def _fields(head: bytes) -> list[tuple[int, int, bytes]]:
    """(start, end, unfolded value) of each stream field in the header block ``head``."""
    found: list[tuple[int, int, bytes]] = []
    lines = [(m.start(), m.end()) for m in _LINES.finditer(head)]
    i = 0
    while i < len(lines):
        start, end = lines[i]
        line = head[start:end]
        name = line.split(b":", 1)[0].rstrip(b" \t").lower() + b":"
        if b":" in line and name == _NAME:
            parts = [line.split(b":", 1)[1]]
            j = i + 1
            while j < len(lines) and head[lines[j][0] : lines[j][0] + 1] in (b" ", b"\t"):
                parts.append(head[lines[j][0] : lines[j][1]])
                j += 1
            value = b" ".join(p.strip() for p in parts).strip()
            found.append((start, lines[j - 1][1], value))
            i = j
        else:
            i += 1
    return found


def stream_values(raw: bytes) -> list[str]:
    """The values of every ``X-Gateway-Stream`` field of the message (empty: none)."""
    return [v.decode("utf-8", "replace") for _, _, v in _fields(header_block(raw))]


def without_stream_header(raw: bytes) -> bytes:
    """``raw`` without its ``X-Gateway-Stream`` fields (and their folded lines); every other
    byte as received, the body untouched even when it holds the same words."""
    head = header_block(raw)
    found = _fields(head)
    if not found:
        return raw
    kept: list[bytes] = []
    at = 0
    for start, end, _ in found:
        kept.append(head[at:start])
        at = end
    kept.append(head[at:])
    return b"".join(kept) + raw[len(head) :]
