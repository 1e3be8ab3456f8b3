"""The MIME and text fast paths give the same answers as the plain code they short-cut.

parse_headers' regex path against the line-by-line reader, split_head and _split_params against
their former forms, lazily parsed attached messages against eager parsing, and the pre-checks in
_server_words, cut_original and status_of against the plain searches.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from gateway.bounce import dsn, freetext, mime, parse
from gateway.bounce.decode import decode_header, decode_transfer

EDGE_BLOCKS = [
    b"",
    b"Subject: x",
    b"Subject:",
    b"Subject:\n continued",
    b"Subject: a\n \n\tb",
    b"Subject: a\r\nX-Y: b\r\n\tc",
    b"From a@b Mon Jan  1 00:00:00 2024\nSubject: x",
    b"From a@b Mon Jan  1 00:00:00 2024\n\tcontinued\nSubject: x",
    b"From a@b Mon Jan  1 00:00:00 2024",
    b"From a@b Mon Jan  1 00:00:00 2024\nFrom b@c Mon Jan  1 00:00:00 2024\nTo: y",
    b"From : not mbox\nTo: y",
    b"From x\nTo: y",
    b"Subject : spaced name\nTo: a@b",
    b"Foo\tBar: tab in name",
    b"Content-Type: multipart/report;\nboundary=abc",
    b"Subject: x\nnot a header line\nTo: y",
    b"Subject: x\n\nTo: y",
    b"\n\tleading continuation\nSubject: x",
    b"S\xc3\xa9: non-ascii name\nTo: y",
    b"Subject: caf\xc3\xa9 \xff\nTo: \x1cy\x1c",
    b"Subject: x\r",
    b"Subject: x\rY: z",
    b"To: a\n" * 1200,
    b"X" * 79 + b": long name\n" + b"Y" * 80 + b": too long",
    b"Subject: " + b"v" * 70000,
]


def _eml_blobs(corpus: Path) -> list[bytes]:
    return [path.read_bytes() for path in sorted((corpus / "emails").rglob("*.eml"))]


def _mutations(blob: bytes, rng: random.Random) -> list[bytes]:
    out = [blob, blob.replace(b"\r\n", b"\n"), blob.replace(b"\n", b"\r\n")]
    for _ in range(3):
        cut = rng.randrange(len(blob) + 1)
        out.append(blob[:cut])
        out.append(blob[:cut] + b"\n \n" + blob[cut:])
        out.append(blob[:cut] + b'";\r\r\n' + blob[cut:])
    return out


def _header_blocks(corpus: Path) -> list[bytes]:
    rng = random.Random(11)
    blocks = list(EDGE_BLOCKS)
    for blob in _eml_blobs(corpus):
        for variant in _mutations(blob, rng):
            blocks.append(mime.split_head(variant)[0])
    return blocks


def test_parse_headers_equals_line_reader(corpus: Path) -> None:
    for block in _header_blocks(corpus):
        text = block.decode("utf-8", errors="replace").replace("\r\n", "\n")
        assert mime.parse_headers(block) == mime._parse_header_lines(text), block[:200]


def _plain_split_head(raw: bytes) -> tuple[bytes, bytes]:
    if raw.startswith((b"\r\n", b"\n")):
        return b"", raw[2:] if raw.startswith(b"\r\n") else raw[1:]
    window = raw[: mime.MAX_HEADER_BYTES + 4]
    cut_lf = window.find(b"\n\n")
    cut_crlf = window.find(b"\r\n\r\n")
    cands = [(c, 2) for c in (cut_lf,) if c >= 0] + [(c, 4) for c in (cut_crlf,) if c >= 0]
    if not cands:
        if len(raw) > mime.MAX_HEADER_BYTES:
            return raw[: mime.MAX_HEADER_BYTES], raw[mime.MAX_HEADER_BYTES :]
        return raw, b""
    cut, width = min(cands)
    return raw[:cut], raw[cut + width :]


def test_split_head_equals_plain_form(corpus: Path) -> None:
    rng = random.Random(5)
    limit = mime.MAX_HEADER_BYTES
    samples = [
        b"a\r\n\r\nb",
        b"a\n\r\n\r\nb",
        b"a\r\n\nb",
        b"a\r\n\r\n\nb",
        b"\nx",
        b"\r\nx",
        b"x" * (limit + 10),
        b"x" * (limit - 1) + b"\r\n\r\ny",
        b"x" * limit + b"\r\n\r\ny",
        b"x" * (limit + 1) + b"\n\ny",
        b"x" * (limit + 2) + b"\n\ny",
        b"x" * (limit + 3) + b"\n\ny",
    ]
    for _ in range(2000):
        samples.append(bytes(rng.choice(b"ab\r\n") for _ in range(rng.randint(0, 12))))
    for blob in _eml_blobs(corpus):
        samples += _mutations(blob, rng)
    for raw in samples:
        assert mime.split_head(raw) == _plain_split_head(raw), raw[:80]


def _plain_split_params(value: str) -> list[str]:
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


def test_split_params_equals_char_loop() -> None:
    rng = random.Random(3)
    values = ['a; b="x;y"; c', '"', '";"', 'a;"b', ';";";', "", 'x="' + "y;" * 3000 + '"']
    values += [
        "".join(rng.choice('ab;"= ') for _ in range(rng.randint(0, 20))) for _ in range(3000)
    ]
    for value in values:
        assert mime._split_params(value) == _plain_split_params(value), value


def _eager_enclosed(part: mime.Part) -> tuple[list[tuple[str, str]], bytes]:
    inner = decode_transfer(part.body, mime._first(part.headers, "content-transfer-encoding"))
    head, body = mime.split_head(inner.lstrip(b"\r\n"))
    text = head.decode("utf-8", "replace").replace("\r\n", "\n")
    return mime._parse_header_lines(text)[0], body


def test_lazy_enclosed_equals_eager_parse(corpus: Path) -> None:
    names = ["x-hmxmroriginalrecipient", "to", "cc", "content-type", "subject", "nonesuch"]
    carriers = 0
    for blob in _eml_blobs(corpus):
        for part in mime.parse(blob).walk():
            if not part.carries_message:
                assert part.enclosed is None
                assert part.enclosed_get("to") == ""
                continue
            carriers += 1
            fields, body = _eager_enclosed(part)
            for name in names:  # the cheap lookup, before the headers are parsed
                want = next((decode_header(v) for k, v in fields if k == name), "")
                assert part.enclosed_get(name) == want
            enclosed = part.enclosed
            assert enclosed is not None
            assert (enclosed.headers, enclosed.body) == (fields, body)
    assert carriers > 20


def _plain_server_words(block: str, *, strict: bool = False) -> str:
    lines = block.split("\n")
    keep: list[str] = []
    for index, line in enumerate(lines):
        code = freetext.reply_code_in(line)
        status = dsn.status_of(line)
        if (code is not None and code >= 400) or (status is not None and status[0] != "2"):
            keep.extend(lines[max(0, index - 1) : index + 3])
    if keep:
        return "\n".join(dict.fromkeys(keep))
    return "" if strict else block


def _texts(corpus: Path) -> list[str]:
    texts = [
        "550 5.1.1 no\n220 ok 5.0.0\n",
        "2.1.5 ok\n4.4.7 delayed",
        "version 5.10.3 and 550.5",
        "reply 55\u0663 with an Arabic-Indic digit",
        "\u0664\u0665\u0660 unicode digits, 5.\u0661.1",
        "ſorry: original message follows\nx",
        "",
    ]
    for blob in _eml_blobs(corpus):
        root = mime.parse(blob)
        for part in root.walk():
            if part.ctype.startswith("text/") and not part.children:
                texts.append(part.text())
    return texts


def test_server_words_equals_plain_scan(corpus: Path) -> None:
    for text in _texts(corpus):
        for strict in (True, False):
            assert parse._server_words(text, strict=strict) == _plain_server_words(
                text, strict=strict
            )


def _plain_cut_original(text: str) -> str:
    lines = text[: freetext.MAX_TEXT].split("\n")
    seen_address = False
    # The former patterns: the module's, read case-insensitively in the text itself.
    headerish = re.compile(freetext._HEADERISH.pattern, re.IGNORECASE)
    markers = re.compile(freetext._ORIGINAL_MARKERS.pattern, re.IGNORECASE)
    for index, line in enumerate(lines):
        if index and markers.match(line[:200]):
            return "\n".join(lines[:index])
        if (
            seen_address
            and headerish.match(line[:200])
            and index + 1 < len(lines)
            and (headerish.match(lines[index + 1][:200]) or lines[index + 1][:1] in " \t")
            and not lines[index + 1].strip().startswith("<")
        ):
            return "\n".join(lines[:index])
        seen_address = seen_address or "@" in line
    return "\n".join(lines)


def test_cut_original_equals_plain_scan(corpus: Path) -> None:
    extra = [
        "a@b\n" + "x" * 250 + "original message follows",
        "x\n" + "y" * 190 + " original message",
        "Original message\nfirst line is never a marker",
        "x\n  ---- Original Message ----\ny",
        "x\nORIGINAL MESSAGE FOLLOWS\ny",
        "a@b\nTo: x\n",
        "a@b\nTo: x\n\nrest",
        "a@b\nTo:\rx\nFrom: y",
        "a@b\nX-Foo: 1\n <x@y>",
        "a@b\n" + "-" * 184 + "original message\nmore",
        "a@b\n" + "-" * 184 + "original message",
        "a@b\n" + "X-" + "y" * 196 + ": v\nTo: z",
        "a@b\n\u2028To: x\nFrom: y",
        "x\n\t-=*| Original Message",
    ]
    for text in _texts(corpus) + extra:
        variants = (text, text.upper(), re.sub("s", "ſ", text), re.sub("i", "\u0130", text))
        for variant in variants:
            assert freetext.cut_original(variant) == _plain_cut_original(variant)


def _plain_status_of(value: str) -> str | None:
    match = dsn._REPLY_STATUS.search(value[:4000]) or dsn._STATUS.search(value[:4000])
    return ".".join(match.groups()) if match else None


def test_status_of_equals_plain_search(corpus: Path) -> None:
    rng = random.Random(9)
    texts = _texts(corpus)
    texts += [
        "".join(rng.choice("2455.0 1-'#x\n") for _ in range(rng.randint(0, 30)))
        for _ in range(5000)
    ]
    texts += ["550 5.1.1", "550-'5.7.1 x 4.4.7", "1.5.1.1", "5.1.1.", "5.1.12", "550 #5.1.1 9"]
    for text in texts:
        for line in [text, *text.split("\n")]:
            assert dsn.status_of(line) == _plain_status_of(line), line
