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

from gateway.bounce.cache import regex
from gateway.bounce.decode import decode_header, decode_text, decode_transfer
from gateway.bounce.records import Record

MAX_BYTES = 4 * 1024 * 1024  # bounces are small; anything past this is not read
MAX_HEADER_BYTES = 128 * 1024  # per header block
MAX_HEADER_FIELDS = 1000
MAX_DEPTH = 8
MAX_PARTS = 100
MAX_MESSAGES = 20  # messages read from one mbox-style input

# An mbox separator: "From <sender> <asctime date>" at the start of a line, followed by a header
# field. The look-behind after "From " says what "^" would before it (the start of the input
# or a newline), and lets the regex engine jump from one "From " to the next.
_MBOX_FROM = re.compile(
    rb"From (?<![^\n]From )\S{1,256} {1,4}[A-Z][a-z]{2} [A-Z][a-z]{2} {1,2}\d{1,2}"
    rb" \d\d:\d\d:\d\d \d{4}[^\n]{0,80}\r?\n(?=[A-Za-z][A-Za-z0-9-]{0,60}:)"
)


class Budget(Record):
    """Work left for one message; shared by every part so the totals are bounded."""

    _FIELDS = ("parts", "exceeded")
    __slots__ = _FIELDS

    def __init__(self, parts: int = MAX_PARTS, exceeded: bool = False) -> None:
        self.parts = parts
        self.exceeded = exceeded


class Part(Record):
    """One MIME entity: its header fields, its content type and either a body or children."""

    _FIELDS = ("headers", "ctype", "params", "body", "children", "carries_message")
    __slots__ = (*_FIELDS, "_enclosed", "_inner_head")

    def __init__(
        self,
        headers: list[tuple[str, str]],
        ctype: str,
        params: dict[str, str],
        body: bytes,
        children: list[Part] | None = None,
        carries_message: bool = False,
    ) -> None:
        self.headers = headers
        self.ctype = ctype
        self.params = params
        self.body = body
        self.children: list[Part] = [] if children is None else children
        # For message/rfc822 (and text/rfc822-headers): whether the body is an enclosed
        # message. Its header fields are read only when asked for (see :attr:`enclosed`), as
        # most bounces never look at the returned original's headers.
        self.carries_message = carries_message
        self._enclosed: Part | None = None
        self._inner_head: bytes | None = None

    @property
    def enclosed(self) -> Part | None:
        """The enclosed message's header fields and body (``None`` unless it carries one)."""
        if not self.carries_message:
            return None
        if self._enclosed is None:
            head, body = self._split_inner()
            fields, _ = parse_headers(head)
            self._enclosed = Part(headers=fields, ctype="message/rfc822", params={}, body=body)
        return self._enclosed

    def enclosed_get(self, name: str) -> str:
        """Return ``self.enclosed.get(name)`` ("" without an enclosed message), cheaply.

        A field name is ASCII, so when its bytes do not occur (ASCII case-insensitively) in the
        enclosed header block the field is absent and the block need not be parsed.

        Args:
            name: the field name, lower case.
        """
        if not self.carries_message:
            return ""
        if self._enclosed is None:
            if self._inner_head is None:
                self._inner_head = self._split_inner()[0].lower()
            if name.encode("ascii") not in self._inner_head:
                return ""
        enclosed = self.enclosed
        return enclosed.get(name) if enclosed is not None else ""

    def _split_inner(self) -> tuple[bytes, bytes]:
        inner = decode_transfer(self.body, _first(self.headers, "content-transfer-encoding"))
        return split_head(inner.lstrip(b"\r\n"))

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
        out = [self]
        for child in self.children:  # recursion is bounded: parse stops at MAX_DEPTH
            if child.children:
                out.extend(child.walk())
            else:
                out.append(child)
        return out


def split_head(raw: bytes) -> tuple[bytes, bytes]:
    """Split raw bytes into the header block and the body at the first empty line.

    Args:
        raw: a message or a MIME part.
    """
    if raw.startswith((b"\r\n", b"\n")):
        return b"", raw[2:] if raw.startswith(b"\r\n") else raw[1:]
    # Both separators are looked for in the first MAX_HEADER_BYTES + 4 bytes; the earlier wins.
    # A CRLF separator that starts before the LF one ends by cut_lf + 3, so no further search.
    limit = MAX_HEADER_BYTES + 4
    cut_lf = raw.find(b"\n\n", 0, limit)
    cut_crlf = raw.find(b"\r\n\r\n", 0, limit if cut_lf < 0 else min(limit, cut_lf + 3))
    if cut_crlf >= 0:
        return raw[:cut_crlf], raw[cut_crlf + 4 :]
    if cut_lf >= 0:
        return raw[:cut_lf], raw[cut_lf + 2 :]
    if len(raw) > MAX_HEADER_BYTES:
        return raw[:MAX_HEADER_BYTES], raw[MAX_HEADER_BYTES:]
    return raw, b""


def parse_headers(block: bytes) -> tuple[list[tuple[str, str]], bytes]:
    """Parse an RFC 5322 header block into (lower-cased name, unfolded value) pairs.

    A line that is neither a field nor a continuation ends the header block; what follows it is
    returned as leftover body text (lenient, as mail readers are).

    Args:
        block: the bytes before the first empty line.
    """
    text = block.decode("utf-8", "replace").replace("\r\n", "\n")
    if len(text) < _FAST_MAX_CHARS:
        plain = text
        if text.startswith("From ") and _is_mbox_line(text.partition("\n")[0]):
            plain = text.partition("\n")[2]  # the line reader skips it, too
        fields = _plain_fields(plain)
        if fields is not None:
            return fields, b""
    return _parse_header_lines(text)


def _is_mbox_line(line: str) -> bool:
    """Whether the line reader skips ``line`` (starting "From ") as the first line of a block."""
    name, sep, _ = line.partition(":")
    return not sep or name.strip() != "From"


# A plain header block: made only of "Name: value" lines (the name printable ASCII without a
# colon, shorter than 80) and indented continuations, the first line a field, which is what
# almost every MTA writes. For such a block parse_headers' line loop never reaches its lenient
# branches, so the fields can be read with one regex pass. The size bound keeps the loop's
# per-value and field-count caps out of reach (a value is shorter than the block; there are
# fewer lines than MAX_HEADER_FIELDS). A block is plain when its first line starts a field and
# so does every other line that is not a continuation (see _plain_fields).
_PLAIN_FIELD = regex(r"^([!-9;-~]{1,79}):([^\n]*(?:\n[ \t][^\n]*)*)", re.MULTILINE)
_FAST_MAX_CHARS = 64 * 1024


def _plain_fields(text: str) -> list[tuple[str, str]] | None:
    """The fields of ``text`` when it is a plain block (as the line reader reads them), else
    ``None``.

    _PLAIN_FIELD matches exactly the lines that are no continuation and start a field, each with
    its continuations (a value never swallows such a line, a name never starts with white
    space); so the block is plain when it matches as often as there are lines that are no
    continuation (the first line is one, whatever it starts with).
    """
    newlines = text.count("\n")
    if newlines >= MAX_HEADER_FIELDS:
        return None
    found = _PLAIN_FIELD.findall(text)
    if len(found) != newlines + 1 - text.count("\n ") - text.count("\n\t"):
        return None
    return [(name.lower(), _unfold(raw) if "\n" in raw else raw.strip()) for name, raw in found]


def _unfold(raw: str) -> str:
    return " ".join(map(str.strip, raw.split("\n")))


def _parse_header_lines(text: str) -> tuple[list[tuple[str, str]], bytes]:
    """The line-by-line reader behind :func:`parse_headers` (any block, however odd)."""
    fields: list[tuple[str, str]] = []
    lines = text.split("\n")
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
    # Quotes alternate: the text between the 2k-th and (2k+1)-th quote is unquoted, and only
    # there does ";" separate. The quotes themselves stay in the pieces.
    out: list[str] = []
    current = ""
    for index, segment in enumerate(value[:4096].split('"')):
        if index:
            current += '"'
        if index % 2:
            current += segment
            continue
        first, *rest = segment.split(";")
        current += first
        for piece in rest:
            out.append(current)
            current = piece
    out.append(current)
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
    content_type = _first(headers, "content-type")
    ctype, params = parse_content_type(content_type)
    if not content_type:
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
        part.carries_message = True  # its header fields are parsed on demand
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
