"""More speed-ups checked against the plain code they short-cut.

Folding (gateway.bounce.literals) against IGNORECASE, the rewritten status, mbox and header
block patterns against their former forms, the line-jumping text scans (reply codes, addresses,
recipient blocks, SMTP transcripts) against line-by-line loops, the status and reply pattern keys
against the pattern tuples, and the recursive walk against the stack-based one.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from gateway.bounce import autoreply, classify, dsn, freetext, mime, parse, rules_file
from gateway.bounce.literals import Gate, folded
from tests.bounce.test_bounce_fastpaths import _plain_command_in

SPECIALS = "\u0130\u0131\u017f\u212a"  # the non-ASCII letters IGNORECASE equates with ASCII ones


def _eml_blobs(corpus: Path) -> list[bytes]:
    return [path.read_bytes() for path in sorted((corpus / "emails").rglob("*.eml"))]


def _texts(corpus: Path) -> list[str]:
    texts = []
    for blob in _eml_blobs(corpus):
        for part in mime.parse(blob).walk():
            if part.ctype.startswith("text/") and not part.children:
                texts.append(part.text())
    return texts


def _random_texts(alphabet: str, count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(count)]


def test_folding_keeps_positions_and_equals_ignorecase() -> None:
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    low = folded(every)
    assert len(low) == len(every)
    for letter in "abcdefghijklmnopqrstuvwxyz":
        want = [m.start() for m in re.finditer(letter, every, re.IGNORECASE)]
        assert [m.start() for m in re.finditer(letter, low)] == want
    for pattern in (r"\s", r"\w", r"\d", r"\n"):
        want = [m.start() for m in re.finditer(pattern, every)]
        assert [m.start() for m in re.finditer(pattern, low)] == want


def test_gates_on_folded_text_with_special_letters() -> None:
    patterns = [rx for rule in rules_file.default_rules().rules for rx in rule.regexes]
    patterns += [re.compile(pattern, re.IGNORECASE) for pattern, _ in freetext._COMMAND_PATTERNS]
    gates = [Gate(p) for p in patterns]
    for text in _random_texts(f"aipskOFR ſİıK\nRCPT{SPECIALS}", 500, 13):
        for gate in gates:
            assert gate.search(text, folded(text)) == (gate.pattern.search(text) is not None)


def test_command_in_with_special_letters() -> None:
    samples = [
        "İn reply to RCPT TO command",
        "after end of data: 554",
        ">>> MAİL FROM:<a@b>\n<<< 553 no",
        "   ſent: data\n",
        "ſender was rejected",
        ">>> RCPT TO:<a@b>\n>>> DATA",
        "did not like our ſmtp",
    ]
    for text in samples + [t.upper() for t in samples]:
        assert freetext.command_in(text) == _plain_command_in(text), text


def test_command_in_across_blank_lines() -> None:
    # The transcript's leading white space stops at a newline in the fast form: a match across
    # blank lines starts at the last one, and the command found is the same.
    for blank in ("\n", "\n \n", " \n\t\n", "\r\n\r\n"):
        for line in ("sent: data", "in: rcpt to", "  SENT <<< mail from", ">>> data", "data"):
            for text in (blank * 50 + line, "x" + blank * 3 + line + blank + "y"):
                assert freetext.command_in(text) == _plain_command_in(text), repr(text)


_FORMER_STATUS = re.compile(r"(?<![\w.])([245])\.(\d{1,3})\.(\d{1,3})(?!\.?\d)")
_FORMER_REPLY_STATUS = re.compile(r"\b[245]\d\d[ \-'#]{1,3}([245])\.(\d{1,3})\.(\d{1,3})(?!\.?\d)")


def test_status_patterns_equal_former_forms(corpus: Path) -> None:
    texts = _texts(corpus) + _random_texts("2455.0 1-'#x_\n.a\u0663", 5000, 9)
    for text in texts:
        for new, old in ((dsn._STATUS, _FORMER_STATUS), (dsn._REPLY_STATUS, _FORMER_REPLY_STATUS)):
            got, want = new.search(text), old.search(text)
            assert (got and (got.span(), got.groups())) == (want and (want.span(), want.groups()))


_FORMER_REPLY_CODE = re.compile(
    r"(?:^|[\s:;(\[<>\"'=])([245][0-5]\d)(?:[\s\-:;,.)\]]|$)", re.MULTILINE
)


def _plain_reply_code_in(text: str) -> int | None:
    for match in _FORMER_REPLY_CODE.finditer(text[:4000]):
        tail = text[match.end(1) : match.end(1) + 12]
        if tail.startswith(".") and tail[1:2].isdigit():
            continue
        return int(match.group(1))
    return None


def _near_4000(tail: str) -> list[str]:
    return ["x" * (4000 - cut) + tail for cut in range(len(tail) + 2)]


def test_reply_code_in_equals_plain_scan(corpus: Path) -> None:
    texts = _texts(corpus) + _random_texts("2455.0 1-:\n(x\u0663", 5000, 4)
    texts += _random_texts("2455.0 .;=[]\n\t)x", 5000, 14)
    for text in texts + _near_4000(" 550 5.1.1 y") + _near_4000("550"):
        assert freetext.reply_code_in(text) == _plain_reply_code_in(text), text
        # blocks_for searches for the first code: it starts with the same digits.
        got, want = freetext._REPLY_CODE.search(text), _FORMER_REPLY_CODE.search(text)
        assert (got and got.span(1)) == (want and want.span(1)), text


def test_status_of_reads_the_first_4000_characters() -> None:
    for text in _near_4000(" 550 5.1.1 y") + _near_4000(" 5.7.1.2"):
        head = text[:4000]
        match = _FORMER_REPLY_STATUS.search(head) or _FORMER_STATUS.search(head)
        assert dsn.status_of(text) == (".".join(match.groups()) if match else None), text


_FORMER_MBOX_FROM = re.compile(
    rb"^From \S{1,256} {1,4}[A-Z][a-z]{2} [A-Z][a-z]{2} {1,2}\d{1,2} \d\d:\d\d:\d\d \d{4}"
    rb"[^\n]{0,80}\r?\n(?=[A-Za-z][A-Za-z0-9-]{0,60}:)",
    re.MULTILINE,
)


def test_mbox_separator_equals_former_pattern(corpus: Path) -> None:
    line = b"From a@b Mon Jan  1 00:00:00 2024\n"
    blobs = [line + b"To: x\n\nbody\n" + line + b"Subject: y\n\nz", b"xFrom " + line[5:] + b"A: b"]
    for blob in _eml_blobs(corpus):
        blobs += [blob, line + blob, blob + b"\n" + line + blob, b"\r\n" + line + blob]
    for blob in blobs:
        got = [m.span() for m in mime._MBOX_FROM.finditer(blob)]
        assert got == [m.span() for m in _FORMER_MBOX_FROM.finditer(blob)]


_FORMER_PLAIN_BLOCK = re.compile(
    r"[!-9;-~]{1,79}:[^\n]*(?:\n(?:[!-9;-~]{1,79}:[^\n]*|[ \t][^\n]*))*\Z"
)


def test_plain_block_test_equals_former_pattern(corpus: Path) -> None:
    # The plain-block test counts _PLAIN_FIELD's matches against the lines that are no
    # continuation; it must agree with the pattern that described a plain block before.
    blocks = [*_random_texts("ab: \t\n\r-é", 5000, 8), "x" * 79 + ": y", "x" * 80 + ": y"]
    blocks += ["a: b\n", "a: b\n c\n\td", "a: b\n \n", "a: b\nc: d\ne", " a: b", "a: b\n\n c"]
    for blob in _eml_blobs(corpus):
        blocks.append(mime.split_head(blob)[0].decode("utf-8", "replace").replace("\r\n", "\n"))
    for text in blocks:
        fields = mime._plain_fields(text)
        assert (fields is not None) == bool(_FORMER_PLAIN_BLOCK.match(text)), text
        if fields is not None:
            assert fields == mime._parse_header_lines(text)[0], text


def _plain_recipients_in(text: str, exclude: set[str]) -> list[str]:
    found: list[str] = []
    for full_line in text.split("\n"):
        line = full_line[: freetext.MAX_LINE]
        for match in freetext._ADDRESS.finditer(line):
            addr = match.group(1).lower().rstrip(".-")
            if addr in exclude or addr in found or "@" not in addr:
                continue
            before = line[: match.start()]
            lead = freetext._LEAD.match(before)
            if lead is not None:
                if not freetext._is_sender_label(lead.group(1)):
                    found.append(addr)
            elif re.search(freetext._INLINE_RECIPIENT.pattern, before[-60:], re.IGNORECASE):
                found.append(addr)
    return found


def _plain_blocks_mentions(text: str, recipients: list[str]) -> list[set[str]]:
    return [{r for r in recipients if r in line.lower()} for line in text.split("\n")]


def test_recipient_scans_equal_plain_loops(corpus: Path) -> None:
    texts = [*_texts(corpus), "a@b.c\n\nx@y.z", "@\n@@\n", "no address", "ΑΣ a@b.c\nİ x@y.z"]
    for text in texts:
        recipients = _plain_recipients_in(text, set())
        assert freetext.recipients_in(text, set()) == recipients
        rcpts = [*recipients, ""]
        lowered = text.lower().split("\n")
        assert [{r for r in rcpts if r in line} for line in lowered] == _plain_blocks_mentions(
            text, rcpts
        )


def _plain_status_matches(patterns: tuple[tuple[str, str, str], ...], status: str | None) -> bool:
    parts = status.split(".") if status else []
    if len(parts) != 3:
        return False
    return any(all(p in ("*", s) for p, s in zip(pat, parts, strict=True)) for pat in patterns)


def _plain_reply_matches(patterns: tuple[str, ...], code: int | None) -> bool:
    digits = "" if code is None else str(code)
    if len(digits) != 3:
        return False
    return any(all(p in {"x", d} for p, d in zip(pat, digits, strict=True)) for pat in patterns)


def test_status_and_reply_keys_equal_pattern_tuples() -> None:
    rng = random.Random(21)
    statuses = [None, "", "5.1.1", "5.1", "5.1.1.1", "4.*.1", "2.0.0", "x.y.z"]
    statuses += [
        ".".join(rng.choice(["5", "4", "1", "10", "*"]) for _ in range(3)) for _ in range(200)
    ]
    codes = [None, 550, 55, 5500, -55, 421, 250, 599]
    statuses.append("5.7." + "1" * 100)
    rules = rules_file.default_rules().rules
    for rule in rules:
        for status in statuses:
            want = _plain_status_matches(rule.statuses, status)
            assert (not rule._status_set.isdisjoint(classify._status_keys(status))) == want
        for code in codes:
            want = _plain_reply_matches(rule.replies, code)
            assert (not rule._reply_set.isdisjoint(classify._reply_keys(code))) == want


def test_long_envelopes_are_not_kept() -> None:
    rules = rules_file.load_rules()
    rules._allowed.clear()
    long_status = "5.7." + "1" * 100
    want = rules.first_match(classify.Facts(None, long_status, "x"))
    assert rules.first_match(classify.Facts(None, long_status, "x")) is want
    assert want is not None
    assert want.name == "security-policy-status"
    assert not rules._allowed
    rules.first_match(classify.Facts(550, "5.1.1", "x", "RCPT", "failed"))
    assert len(rules._allowed) == 1


def _stack_walk(root: mime.Part) -> list[mime.Part]:
    out: list[mime.Part] = []
    stack = [root]
    while stack:
        part = stack.pop()
        out.append(part)
        stack.extend(reversed(part.children))
    return out


def test_walk_is_depth_first(corpus: Path) -> None:
    def nested(depth: int) -> bytes:
        if depth == 0:
            return b"Content-Type: text/plain\n\nleaf"
        inner = nested(depth - 1)
        return b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n%s\n--b%d\n%s\n--b%d--' % (
            depth,
            depth,
            inner,
            depth,
            inner,
            depth,
        )

    for blob in [nested(3), *_eml_blobs(corpus)]:
        root = mime.parse(blob)
        assert [id(p) for p in root.walk()] == [id(p) for p in _stack_walk(root)]


def _case_variants(phrase: str, rng: random.Random) -> list[str]:
    """The phrase as written, upper-cased, with random letters upper-cased, and with the
    non-ASCII letters IGNORECASE equates with ASCII ones put in (İ ı for i, ſ for s, K for k)."""
    mixed = "".join(c.upper() if rng.random() < 0.5 else c for c in phrase)
    special = phrase.replace("i", rng.choice("\u0130\u0131")).replace("s", "\u017f")
    return [phrase, phrase.upper(), mixed, special.replace("k", "\u212a"), f"x {mixed} y"]


def test_patterns_on_folded_text_find_what_ignorecase_finds() -> None:
    rng = random.Random(31)
    patterns = [
        parse._BOUNCE_FROM,
        parse._BOUNCE_SUBJECT,
        parse._BOUNCE_BODY,
        *(pattern for _, pattern in parse._PROVIDERS),
        autoreply._SUBJECT,
        autoreply._BODY,
        autoreply._BOUNCE_FROM,
        freetext._ORIGINAL_MARKERS,
        freetext._HEADERISH,
        freetext._INLINE_RECIPIENT,
    ]
    for pattern in patterns:
        assert not pattern.flags & re.IGNORECASE
        former = re.compile(pattern.pattern, re.IGNORECASE)
        phrases = [p for p in re.split(r"[|()?:\[\]\\^$*+]", pattern.pattern) if len(p) > 2]
        texts = [v for p in phrases for v in _case_variants(p, rng)]
        texts += _random_texts(f"aeiouskmnrtdl -:<{SPECIALS}AEIOUSK", 300, 32)
        for text in texts:
            got = pattern.search(folded(text))
            want = former.search(text)
            assert (got is None) == (want is None), (pattern.pattern[:40], text)
            if got is not None and want is not None:
                assert got.span() == want.span(), (pattern.pattern[:40], text)
