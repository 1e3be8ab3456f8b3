"""A small, bounded, read-only MIME reader for bounce messages.

Owns: splitting raw bytes into header fields and a tree of parts (RFC 5322 §2.2 header fields,
RFC 2045/2046 content types and multipart boundaries), with hard limits on input size, header
size, nesting depth and number of parts so that hostile input costs bounded work. Does not own:
charset decoding (``decode``) or the meaning of any part (``dsn``, ``arf``, ``freetext``).

Why not :mod:`email`: the stdlib parser is recursive (deep nesting hits the recursion limit),
has no caps on parts or header size, and regenerating messages is out of bounds here anyway. This
reader never builds more than ``MAX_PARTS`` parts and never descends past ``MAX_DEPTH``.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

from gateway.bounce.decode import decode_header, decode_text, decode_transfer

MAX_BYTES = 4 * 1024 * 1024  # bounces are small; anything past this is not read
MAX_HEADER_BYTES = 128 * 1024  # per header block
MAX_HEADER_FIELDS = 1000
MAX_DEPTH = 8
MAX_PARTS = 100
MAX_MESSAGES = 20  # messages read from one mbox-style input

# An mbox separator: "From <sender> <asctime date>" followed by a header field.
_MBOX_FROM = re.compile(
    rb"^From \S{1,256} {1,4}[A-Z][a-z]{2} [A-Z][a-z]{2} {1,2}\d{1,2} \d\d:\d\d:\d\d \d{4}"
    rb"[^\n]{0,80}\r?\n(?=[A-Za-z][A-Za-z0-9-]{0,60}:)",
    re.MULTILINE,
)


@dataclass(slots=True)
class Budget:
    """Work left for one message; shared by every part so the totals are bounded."""

    parts: int = MAX_PARTS
    exceeded: bool = False


@dataclass(slots=True)
class Part:
    """One MIME entity: its header fields, its content type and either a body or children."""

    headers: list[tuple[str, str]]
    ctype: str
    params: dict[str, str]
    body: bytes
    children: list[Part] = field(default_factory=list)
    # For message/rfc822 (and text/rfc822-headers): the enclosed message's own header fields.
    enclosed: Part | None = None

    def get(self, name: str, default: str = "") -> str:
        """Return the first header field called ``name`` (case-insensitive), decoded.

        Args:
            name: the field name.
            default: returned when the field is absent.
        """
        key = name.lower()
        for fname, value in self.headers:
            if fname == key:
                return decode_header(value)
        return default

    def get_all(self, name: str) -> list[str]:
        """Return every header field called ``name``, decoded.

        Args:
            name: the field name.
        """
        key = name.lower()
        return [decode_header(v) for f, v in self.headers if f == key]

    def text(self) -> str:
        """Return the body, transfer-decoded and charset-decoded (never raises)."""
        data = decode_transfer(self.body, self.get("content-transfer-encoding"))
        return decode_text(data, self.params.get("charset"))

    def walk(self) -> list[Part]:
        """Return this part and every descendant (not enclosed messages), depth first."""
        out: list[Part] = []
        stack = [self]
        while stack:
            part = stack.pop()
            out.append(part)
            stack.extend(reversed(part.children))
        return out


def split_head(raw: bytes) -> tuple[bytes, bytes]:
    """Split raw bytes into the header block and the body at the first empty line.

    Args:
        raw: a message or a MIME part.
    """
    if raw.startswith((b"\r\n", b"\n")):
        return b"", raw[2:] if raw.startswith(b"\r\n") else raw[1:]
    window = raw[: MAX_HEADER_BYTES + 4]
    cut_lf = window.find(b"\n\n")
    cut_crlf = window.find(b"\r\n\r\n")
    cands = [(c, 2) for c in (cut_lf,) if c >= 0] + [(c, 4) for c in (cut_crlf,) if c >= 0]
    if not cands:
        if len(raw) > MAX_HEADER_BYTES:
            return raw[:MAX_HEADER_BYTES], raw[MAX_HEADER_BYTES:]
        return raw, b""
    cut, width = min(cands)
    return raw[:cut], raw[cut + width :]


def parse_headers(block: bytes) -> tuple[list[tuple[str, str]], bytes]:
    """Parse an RFC 5322 header block into (lower-cased name, unfolded value) pairs.

    A line that is neither a field nor a continuation ends the header block; what follows it is
    returned as leftover body text (lenient, as mail readers are).

    Args:
        block: the bytes before the first empty line.
    """
    fields: list[tuple[str, str]] = []
    text = block.decode("utf-8", errors="replace")
    lines = text.replace("\r\n", "\n").split("\n")
    for index, line in enumerate(lines):
        if line[:1] in {" ", "\t"} and fields:
            # RFC 5322 §2.2.3: unfolding joins continuation lines.
            name, value = fields[-1]
            if len(value) < MAX_HEADER_BYTES:
                fields[-1] = (name, value + " " + line.strip())
            continue
        name, sep, value = line.partition(":")
        if sep and name and len(name) < 80 and name.isascii():
            name = name.strip()
            if " " not in name:
                if len(fields) < MAX_HEADER_FIELDS:
                    fields.append((name.lower(), value.strip()))
                continue
        if index == 0 and line.startswith("From "):
            continue  # mbox separator line
        if fields and fields[-1][1].endswith(";") and "=" in line and ":" not in line:
            # A parameter continuation someone forgot to indent (seen in the wild).
            name, value = fields[-1]
            fields[-1] = (name, value + " " + line.strip())
            continue
        if not line.strip():
            continue
        rest = "\n".join(lines[index:])
        return fields, rest.encode("utf-8", errors="replace")
    return fields, b""


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """Split a Content-Type value into a lower-cased type and its parameters (RFC 2045 §5.1).

    Args:
        value: the field value, e.g. ``multipart/report; report-type=delivery-status``.
    """
    pieces = _split_params(value)
    ctype = pieces[0].strip().lower() if pieces else ""
    if "/" not in ctype:
        ctype = "text/plain"
    params: dict[str, str] = {}
    for piece in pieces[1:]:
        key, sep, val = piece.partition("=")
        if not sep:
            continue
        val = val.strip()
        if len(val) >= 2 and val[0] == '"' and val[-1] == '"':
            val = val[1:-1]
        params[key.strip().lower()] = val
    return ctype, params


def _split_params(value: str) -> list[str]:
    if '"' not in value:
        return value[:4096].split(";")  # nothing quoted: every ";" separates
    out: list[str] = []
    current: list[str] = []
    quoted = False
    for char in value[:4096]:
        if char == '"':
            quoted = not quoted
        if char == ";" and not quoted:
            out.append("".join(current))
            current = []
            continue
        current.append(char)
    out.append("".join(current))
    return out


def parse(raw: bytes, budget: Budget | None = None, depth: int = 0) -> Part:
    """Parse a message or a MIME part into a :class:`Part` tree, within the work budget.

    Args:
        raw: the bytes of the entity (headers, empty line, body).
        budget: the shared work budget; a fresh one is made for a top-level call.
        depth: the nesting level of this entity.
    """
    if budget is None:
        budget = Budget()
        if len(raw) > MAX_BYTES:
            raw = raw[:MAX_BYTES]
            budget.exceeded = True
    head, body = split_head(raw)
    headers, leftover = parse_headers(head)
    if leftover:
        body = leftover + b"\n\n" + body
    ctype, params = parse_content_type(_first(headers, "content-type"))
    if not _first(headers, "content-type"):
        ctype = "text/plain"
    part = Part(headers=headers, ctype=ctype, params=params, body=body)
    budget.parts -= 1
    if budget.parts < 0 or depth >= MAX_DEPTH:
        budget.exceeded = True
        return part
    if ctype.startswith("multipart/"):
        boundary = params.get("boundary", "")
        pieces = split_multipart(body, boundary) if boundary else None
        if pieces is None:
            # A multipart without a usable boundary: read the body as plain text, as mail
            # readers do, rather than dropping it.
            part.ctype = "text/plain"
            return part
        for piece in pieces:
            if budget.parts <= 0:
                budget.exceeded = True
                break
            part.children.append(parse(piece, budget, depth + 1))
    elif ctype in {"message/rfc822", "message/global", "text/rfc822-headers"}:
        inner = decode_transfer(body, _first(headers, "content-transfer-encoding"))
        inner_head, inner_body = split_head(inner.lstrip(b"\r\n"))
        inner_fields, _ = parse_headers(inner_head)
        part.enclosed = Part(
            headers=inner_fields, ctype="message/rfc822", params={}, body=inner_body
        )
    return part


def split_multipart(body: bytes, boundary: str) -> list[bytes] | None:
    """Split a multipart body on its boundary (RFC 2046 §5.1.1); ``None`` if none is found.

    A missing close delimiter is tolerated: the last part runs to the end of the body.

    Args:
        body: the multipart body.
        boundary: the boundary parameter, without the leading dashes.
    """
    delim = b"--" + boundary.encode("utf-8", errors="replace")
    positions: list[int] = []
    start = 0
    while len(positions) <= MAX_PARTS:
        idx = body.find(delim, start)
        if idx < 0:
            break
        if idx == 0 or body[idx - 1 : idx] == b"\n":
            positions.append(idx)
        start = idx + len(delim)
    if not positions:
        return None
    pieces: list[bytes] = []
    for n, pos in enumerate(positions):
        after = pos + len(delim)
        if body[after : after + 2] == b"--":
            break  # close delimiter
        line_end = body.find(b"\n", after)
        if line_end < 0:
            break
        end = positions[n + 1] if n + 1 < len(positions) else len(body)
        chunk = body[line_end + 1 : end]
        if chunk.endswith(b"\r\n"):
            chunk = chunk[:-2]
        elif chunk.endswith(b"\n"):
            chunk = chunk[:-1]
        pieces.append(chunk)
    return pieces


def _first(headers: list[tuple[str, str]], name: str) -> str:
    for fname, value in headers:
        if fname == name:
            return value
    return ""


def split_mbox(raw: bytes) -> list[bytes]:
    """Split input holding several messages in mbox form into the messages.

    Mail saved from a mailbox often keeps the ``From sender date`` separator lines; a file can
    hold several bounces. Input without separators is returned as the only message.

    Args:
        raw: the input bytes.
    """
    if b"From " not in raw[:MAX_BYTES]:
        return [raw]  # no separator can match (a cheap test before the line-anchored regex)
    starts = [m.start() for m in _MBOX_FROM.finditer(raw[:MAX_BYTES])][: MAX_MESSAGES + 1]
    if not starts or (len(starts) == 1 and not raw[: starts[0]].strip()):
        return [raw]
    bounds = [0, *starts, len(raw)] if starts[0] > 0 else [*starts, len(raw)]
    chunks = [raw[a:b] for a, b in itertools.pairwise(bounds)]
    return [chunk for chunk in chunks if chunk.strip()][:MAX_MESSAGES]
