"""Scans rewritten for speed give the same answers as the forms they replace.

The classifier's literal search (a search per literal start instead of a lookahead at every
position), the marker lines of cut_original (a trie instead of an alternation), the command
literals (each looked for only when a shorter string inside it is present), the delivery-status
line reader (one regex pass instead of a loop over lines) and the lines holding a code hint.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from gateway.bounce import classify, dsn, freetext, mime, parse, rules_file
from gateway.bounce.literals import folded

SPECIALS = "\u0130\u0131\u017f\u212a"


def _random_texts(alphabet: str, count: int, seed: int, longest: int = 60) -> list[str]:
    rng = random.Random(seed)
    return [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(0, longest))) for _ in range(count)
    ]


def _corpus_texts(corpus: Path) -> list[str]:
    texts = []
    for path in sorted((corpus / "emails").rglob("*.eml")):
        for part in mime.parse(path.read_bytes()).walk():
            if not part.children and (
                part.ctype.startswith("text/") or "delivery-status" in part.ctype
            ):
                texts.append(part.text())
    return texts


def _plain_present(index: classify._LiteralIndex, text: str) -> set[str]:
    """Every literal of the index found by a plain substring test: what present() must say."""
    literals = set().union(*index.closure.values(), *index.tails.values())
    return {lit for lit in literals if lit in text}


def test_literal_search_equals_plain_lookups(corpus: Path) -> None:
    index = rules_file.default_rules()._index
    texts = [classify.normalise(t) for t in _corpus_texts(corpus)]
    texts += [t[:300] for t in _corpus_texts(corpus)]
    texts += _random_texts("user unknown mailbox full quota ", 2000, 21)
    # Literals longer than the trie's depth, whole, cut short and run together.
    literals = sorted(set().union(*index.closure.values(), *index.tails.values()))
    rng = random.Random(23)
    for _ in range(500):
        picked = rng.sample(literals, 4)
        texts.append(" ".join(picked))
        texts.append("".join(lit[: rng.randint(1, len(lit))] for lit in picked))
    for text in texts:
        assert index.present(text) == _plain_present(index, text), text


_FORMER_MARKER_LINE = re.compile(rf"\n[^\w\n]*(?:{freetext._MARKER_PHRASES.replace('$', '')})")


def test_marker_trie_equals_alternation(corpus: Path) -> None:
    phrases = freetext._MARKER_PHRASES.replace("$", "").split("|")
    texts = [folded(t) for t in _corpus_texts(corpus)]
    texts += ["\n-- " + p + "\n" + p[:-1] + "\n\n" + p + "x" for p in phrases]
    texts += _random_texts("\n -origmesagfwl:", 3000, 22, 200)
    for text in texts:
        got = [m.start() for m in freetext._MARKER_LINE.finditer(text)]
        assert got == [m.start() for m in _FORMER_MARKER_LINE.finditer(text)], text


def test_command_literals_equal_plain_lookups(corpus: Path) -> None:
    literals = freetext._COMMAND_LITERALS
    strings = sorted(literals | freetext._COMMAND_GATES)
    texts = [folded(t) for t in _corpus_texts(corpus)]
    texts += [" ".join(random.Random(n).sample(strings, 4)) for n in range(300)]
    texts += [s[1:] for s in strings] + [s[:-1] for s in strings] + strings
    for text in texts:
        want = {lit for lit in literals if lit in text}
        got = freetext._command_literals_in(text)
        assert got & literals == want, text
        assert got - literals == {gate for gate in freetext._COMMAND_GATES if gate in text}
    for string, parent in freetext._COMMAND_SEARCH:
        assert not parent or parent in string


_FORMER_FIELD_LINE = re.compile(r"^([A-Za-z][A-Za-z0-9-]{1,40})\s*:\s?(.*)$")


def _former_unfold(text: str) -> list[tuple[str | None, str]]:
    out: list[tuple[str | None, str]] = []
    for raw_line in text.replace("\r\n", "\n").split("\n")[:5000]:
        line = raw_line.rstrip()
        if not line:
            out.append((None, ""))
            continue
        if line[0] in " \t":
            if out and out[-1][0] is not None:
                name, value = out[-1]
                if len(value) < 4000:
                    out[-1] = (name, value + " " + line.strip())
            continue
        match = _FORMER_FIELD_LINE.match(line)
        if match:
            name, value = match.groups()
            out.append((name.lower(), value.strip()))
    return out


def test_dsn_line_reader_equals_line_loop(corpus: Path) -> None:
    texts = _corpus_texts(corpus)
    texts += _random_texts("Ab9-: \t\n\r\x0b\x85\u2028x;", 5000, 23, 80)
    texts += [
        "",
        "\n",
        "A: b\n \n\tc",
        "A: b\n\n c",
        " c\nA: b",
        "A : b \r\n c \r\n",
        "\x0bA: b\n\tc",
        "A" + "b" * 40 + ": x",
        "A" + "b" * 41 + ": x",
        "Status: 5.1.1\n" * 6000,
        "Diagnostic-Code: x\n " + "y" * 5000 + "\n z",
    ]
    for text in texts:
        assert dsn._unfold(text) == _former_unfold(text), text[:200]


def _former_hinted_lines(block: str) -> list[int]:
    hinted: list[int] = []
    line = start = 0
    for match in parse._CODE_HINT.finditer(block):
        line += block.count("\n", start, match.start())
        start = match.start()
        if not hinted or hinted[-1] != line:
            hinted.append(line)
    return hinted


def test_hinted_lines_equal_match_loop(corpus: Path) -> None:
    texts = _corpus_texts(corpus) + _random_texts("45.09 \nx", 3000, 24, 80)
    for text in texts:
        assert parse._hinted_lines(text) == _former_hinted_lines(text), text


def test_special_letters_in_scans() -> None:
    for text in _random_texts(f"aipskOFR ſİıK\nRCPT{SPECIALS}", 500, 25):
        low = folded(text)
        assert freetext._command_literals_in(low) == {
            s for s in freetext._COMMAND_LITERALS | freetext._COMMAND_GATES if s in low
        }


def test_remembered_literals_are_the_scanned_ones() -> None:
    index = rules_file.default_rules()._index
    texts = [
        f"550 5.1.1 <u{n % 7}@example.com>: user unknown, mailbox full {n % 3}" for n in range(40)
    ]
    texts += ["x" * 2500 + " user unknown"]  # too long to be remembered
    for _ in range(3):  # the second and third time from memory, for the short ones
        for text in texts:
            assert index.present(text) == _plain_present(index, text) == index.scan(text)
    assert len(index._seen) <= 512
    assert texts[-1] not in index._seen
