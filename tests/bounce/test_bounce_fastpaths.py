"""The speed-ups give the same answers as the plain code they short-cut.

Rules.first_match (literal index, candidate rules, regex pre-checks) against Rule.matches over
every rule; the regex literal pre-check (gateway.bounce.literals) against plain searches;
command_in against the sequential regex searches; the MIME fast paths against their slow forms.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from gateway.bounce import freetext, mime, parse_bounce
from gateway.bounce.classify import Facts, Rule, Rules, normalise
from gateway.bounce.literals import Gate, folded, required_literals
from gateway.bounce.rules_file import default_rules, load_rules

SAMPLES = [
    "550 5.1.1 <a@example.com>: Recipient address rejected: User unknown in local recipient table",
    "552 5.2.2 Mailbox FULL; over quota",
    "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org",
    "550 OFR_416 [OFR_416] Adresse d au moins un destinataire invalide",
    "550 5.7.1 AUP#In-1310 rejected; see spectrum.net",
    "421 4.7.0 IP 192.0.2.9 is Listed on a blocklist",
    "Our IP address was BLOCKED by the receiver",
    "ſorry, the ip was denied",  # non-ASCII: no pre-check
    "İP denied by policy",
    "unknown user docomo after end of data",
    "in reply to RCPT TO command: 550 no such user",
    ">>> DATA\n<<< 554 5.7.1 rejected as spam",
    "   Sent <<< MAIL FROM:<a@example.com>\n 553 sender rejected",
    "while talking to mx.example.com.:\n>>> <<< 554 go away",
    "(state 14) something failed",
    "Messages from 192.0.2.4 temporarily deferred",
    "",
]


def _corpus_texts(corpus: Path) -> list[str]:
    texts: list[str] = []
    for path in sorted((corpus / "emails").glob("*.eml"))[:120]:
        for report in parse_bounce(path.read_bytes()):
            texts.append(report.diagnostic)
    return texts


def _reference_first_match(rules: Rules, facts: Facts, *, with_fallbacks: bool) -> Rule | None:
    for rule in rules.rules:
        if rule.fallback and not with_fallbacks:
            continue
        if rule.matches(facts):
            return rule
    return None


def _variants(texts: list[str]) -> list[str]:
    out: list[str] = []
    for text in texts:
        out += [text, normalise(text), text.upper(), normalise(text)[::-1]]
    return out


def _check_rules(rules: Rules, texts: list[str]) -> None:
    for text in _variants(texts):
        for status, reply, command in [
            ("5.1.1", 550, "RCPT"),
            ("4.2.2", 452, None),
            (None, None, "DATA"),
        ]:
            facts = Facts(reply, status, text, command, "failed", None)
            for fallbacks in (True, False):
                want = _reference_first_match(rules, facts, with_fallbacks=fallbacks)
                got = rules.first_match(facts, with_fallbacks=fallbacks)
                assert got is want, (text, status, fallbacks)


def test_first_match_equals_plain_rule_scan(corpus: Path) -> None:
    _check_rules(default_rules(), SAMPLES + _corpus_texts(corpus))


def test_first_match_equals_plain_scan_with_local_rules(tmp_path: Path) -> None:
    local = tmp_path / "local.toml"
    local.write_text(
        """
[[rule]]
name = "dup-regex"
category = "spam_blocked"
regex = ['\\bip\\b.{0,60}\\b(?:block|listed|reject|denied|banned)', '(ab)\\1']

[[rule]]
name = "no-literal"
category = "mailbox_full"
regex = ['\\d{3}x']

[[rule]]
name = "prefix-phrases"
category = "receiving_problem"
phrases = ["user", "user unknown"]
unless = ["use"]
sequences = [["ove", "quota"]]
""",
        encoding="utf-8",
    )
    _check_rules(load_rules(local), [*SAMPLES, "abab 123x", "over quota", "user unknownish"])


def test_literal_index_finds_overlapping_and_prefix_literals() -> None:
    rules = Rules(
        (
            Rule(
                name="a",
                category=default_rules().rules[0].category,
                source="t",
                phrases=("abc",),
                textual=True,
            ),
            Rule(
                name="b",
                category=default_rules().rules[0].category,
                source="t",
                phrases=("bcd", "ab"),
                textual=True,
            ),
        )
    )
    hit = rules.first_match(Facts(None, None, "xabcdx"))
    assert hit is not None
    assert hit.name == "a"
    assert rules.first_match(Facts(None, None, "xbcdx")) is rules.rules[1]
    assert rules.first_match(Facts(None, None, "xabx")) is rules.rules[1]
    assert rules.first_match(Facts(None, None, "xacx")) is None


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"\b(?:ofr|lpn)\w{0,8}?(?:104|505)\b", {"ofr", "lpn"}),
        (r"aup#\w{0,3}-?1530\b", {"aup#"}),
        (r"a|\d+", None),
        (r"(?:x)?", None),
        (r"(?:hello){2,}", {"hello"}),
        (r"\d\d", None),
    ],
)
def test_required_literals(pattern: str, expected: set[str] | None) -> None:
    found = required_literals(re.compile(pattern, re.IGNORECASE))
    assert (set(found) if found is not None else None) == expected


def test_gate_never_rejects_a_match() -> None:
    rng = random.Random(7)
    alphabet = "abcOFRLPNaup#-1054 ſİ\n"
    patterns = [rx for rule in default_rules().rules for rx in rule.regexes]
    patterns += [re.compile(pattern, re.IGNORECASE) for pattern, _ in freetext._COMMAND_PATTERNS]
    gates = [Gate(p) for p in patterns]
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(300)]
    texts += [*SAMPLES, "xx OFR_416 yy", "AUP#IN-1530 x", "LPN00 426"]
    for text in texts:
        folded_text = folded(text)
        for gate in gates:
            assert gate.search(text, folded_text) == (gate.pattern.search(text) is not None)


def _plain_command_in(text: str) -> str | None:
    for pattern, command in freetext._COMMAND_PATTERNS:
        if re.search(pattern, text, re.IGNORECASE):
            return command
    last = None
    transcript = re.compile(freetext._TRANSCRIPT_PATTERN, freetext._TRANSCRIPT_FLAGS)
    for match in transcript.finditer(text):
        word = (match.group(1) or match.group(2) or "").lower()
        last = (
            "CONN"
            if word in {"ehlo", "helo"}
            else {"mail from": "MAIL", "rcpt to": "RCPT", "data": "DATA"}.get(word)
        )
    return last


def test_command_in_equals_plain_search(corpus: Path) -> None:
    texts = SAMPLES + _corpus_texts(corpus)
    for text in texts + [t.upper() for t in texts]:
        assert freetext.command_in(text) == _plain_command_in(text), text


def test_split_params_fast_path() -> None:
    assert mime.parse_content_type(
        'multipart/report; report-type=delivery-status; boundary="a;b"'
    ) == (
        "multipart/report",
        {"report-type": "delivery-status", "boundary": "a;b"},
    )
    assert mime.parse_content_type("text/plain; charset=utf-8;; format=flowed") == (
        "text/plain",
        {"charset": "utf-8", "format": "flowed"},
    )


def test_split_mbox_without_separator_is_one_message() -> None:
    raw = b"Subject: x\n\nFrom here on, nothing\n"
    assert mime.split_mbox(raw) == [raw]
    two = (
        b"From a@b Mon Jan  1 00:00:00 2024\nSubject: 1\n\nx\n"
        b"From a@b Mon Jan  1 00:00:01 2024\nSubject: 2\n\ny\n"
    )
    assert len(mime.split_mbox(two)) == 2
