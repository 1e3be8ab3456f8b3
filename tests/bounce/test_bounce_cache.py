"""gateway.bounce.cache: what start-up derives is kept between processes, never answers wrongly.

The compiled patterns made from the cache equal ``re.compile``'s (``==`` compares flags and
code); an edited ``rules.toml`` is honoured by the next ``gateway bounce classify`` (a copy of
the package, run as a process); a damaged, foreign or unwritable cache only means no cache.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import gateway
from gateway.bounce import cache, freetext, literals
from gateway.bounce.index import LiteralIndex
from gateway.bounce.rules_file import default_rules

# A DSN whose diagnostic no packaged rule names by its odd word.
_DSN = b"""\
From: MAILER-DAEMON@mx.example.net
To: sender@example.com
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

Your message could not be delivered.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; someone@example.org
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <someone@example.org>: user unknown zqxwvlemma

--B--
"""
_FIRST_RULE = """\
[[rule]]
name = 'test-edited'
category = 'spam_blocked'
phrases = ['zqxwvlemma']

"""


@pytest.fixture
def cache_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The cache's places moved into ``tmp_path``, writing allowed, this process's cache
    forgotten before and after."""
    places = [str(tmp_path / "first" / "c.bin"), str(tmp_path / "second" / "c.bin")]
    monkeypatch.setattr(cache, "paths", lambda: list(places))
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    cache.reset()
    yield places
    cache.reset()


def _patterns() -> list[tuple[str, int]]:
    """The package's own patterns and the packaged rules' (a spread of syntax)."""
    rules = default_rules()
    found = {(rx.pattern, rx.flags) for rule in rules.rules for rx in rule.regexes}
    for value in vars(freetext).values():
        if isinstance(value, re.Pattern) and isinstance(value.pattern, str):
            found.add((value.pattern, value.flags))
    found.add((r"(?P<word>\w+)\s+(?P=word)|(?i:x)(?#c)[^\W\d]{2,}?\Z", 0))
    return sorted(found)


def test_patterns_from_the_cache_equal_re_compile(cache_in: list[str]) -> None:
    patterns = _patterns()
    assert len(patterns) > 30
    for pattern, flags in patterns:
        cache.regex(pattern, flags)
    cache.save()
    assert Path(cache_in[0]).is_file()
    cache.reset()
    for pattern, flags in patterns:
        made = cache.regex(pattern, flags)
        expected = re.compile(pattern, flags)
        assert made == expected  # the same pattern, flags and compiled code
        assert (made.groups, made.groupindex) == (expected.groups, expected.groupindex)
    state = cache._state
    assert state is not None
    # Every one came from the file: if re's internals change, this fails (no cache kept).
    assert state.used_patterns >= {(p, int(f)) for p, f in patterns}
    assert not state.dirty


def test_memo_keeps_values_and_finds_them_by_their_inputs(cache_in: list[str]) -> None:
    calls: list[str] = []

    def compute(text: str) -> dict[str, object]:
        calls.append(text)
        return {"rule": [{"name": text, "n": 1, "on": True}]}

    assert cache.memo("t", "a", lambda: compute("a")) == {
        "rule": [{"name": "a", "n": 1, "on": True}]
    }
    cache.save()
    cache.reset()
    assert cache.memo("t", "a", lambda: compute("a"))["rule"] == [{"name": "a", "n": 1, "on": True}]
    assert cache.memo("t", "b", lambda: compute("b"))["rule"] == [{"name": "b", "n": 1, "on": True}]
    assert calls == ["a", "b"]  # "a" came from the file, "b" (other inputs) was computed
    assert literals.required_literals_of(r"user (?:unknown|not found)") == frozenset(
        {"unknown", "not found"}
    )


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "other-python"])
def test_a_damaged_or_foreign_file_is_ignored_and_rewritten(
    cache_in: list[str], damage: str
) -> None:
    cache.regex(r"a(b+)c")
    cache.save()
    path = Path(cache_in[0])
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00not marshal at all" * 10)
    elif damage == "empty":
        path.write_bytes(b"")
    else:  # a file another Python (or other sources) wrote
        import marshal

        header, patterns, values = marshal.loads(data)
        path.write_bytes(marshal.dumps((("other", *header[1:]), patterns, values)))
    cache.reset()
    assert cache.regex(r"a(b+)c").match("abbc") is not None
    state = cache._state
    assert state is not None
    assert state.dirty
    assert not state.patterns.keys() - {(r"a(b+)c", 0)}
    cache.save()
    cache.reset()
    cache.regex(r"a(b+)c")
    assert cache._state is not None
    assert not cache._state.dirty


def test_unwritable_first_place_falls_back_to_the_second(cache_in: list[str]) -> None:
    Path(cache_in[0]).parent.parent.joinpath("first").write_text("a file, not a folder")
    cache.regex(r"x+y")
    cache.save()
    assert Path(cache_in[1]).is_file()
    cache.reset()
    cache.regex(r"x+y")
    assert cache._state is not None
    assert not cache._state.dirty


def test_nothing_written_when_python_writes_no_bytecode(
    cache_in: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    cache.regex(r"q+r")
    cache.save()
    assert not any(Path(place).exists() for place in cache_in)


def _classify(copy: Path, eml: Path) -> dict[str, object]:
    env = {
        k: v for k, v in os.environ.items() if k not in {"PYTHONDONTWRITEBYTECODE", "PYTHONPATH"}
    }
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "bounce", "classify", str(eml)],
        cwd=copy,  # the copy's gateway package comes first on sys.path
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    line: dict[str, object] = json.loads(done.stdout.splitlines()[0])
    return line


def test_an_edited_rules_file_is_honoured(tmp_path: Path) -> None:
    """The whole command, three processes on a copy of the package: the cache is written by
    the first, the rules file is edited, and the next two answer with the edited rules."""
    copy = tmp_path / "copy"
    package = Path(gateway.__file__).parent
    shutil.copytree(package, copy / "gateway", ignore=shutil.ignore_patterns("__pycache__"))
    eml = tmp_path / "dsn.eml"
    eml.write_bytes(_DSN)
    kept = copy / "gateway" / "bounce" / "__pycache__" / cache.paths()[0].rsplit(os.sep, 1)[1]

    first = _classify(copy, eml)
    assert (first["recipient"], first["category"]) == ("someone@example.org", "nonexistent_address")
    assert kept.is_file()  # the copy wrote its cache beside its own bytecode
    written = kept.stat().st_mtime_ns
    assert _classify(copy, eml)["category"] == "nonexistent_address"  # read from the cache
    assert kept.stat().st_mtime_ns == written  # a run that computed nothing wrote nothing

    rules = copy / "gateway" / "bounce" / "rules.toml"
    text = rules.read_text(encoding="utf-8")
    head, sep, rest = text.partition("\n[[rule]]\n")  # before the first rule
    rules.write_text(head + "\n" + _FIRST_RULE + sep + rest, encoding="utf-8")
    assert _classify(copy, eml)["category"] == "spam_blocked"
    assert _classify(copy, eml)["category"] == "spam_blocked"

    rules.write_text(text, encoding="utf-8")  # and back
    assert _classify(copy, eml)["category"] == "nonexistent_address"


def test_the_literal_index_from_the_cache_is_the_one_built(cache_in: list[str]) -> None:
    rules = default_rules().rules
    built = LiteralIndex(rules)  # an empty cache: built here, then written
    cache.save()
    cache.reset()
    kept = LiteralIndex(rules)
    state = cache._state
    assert state is not None
    assert not state.dirty  # everything came from the file
    for name in ("always", "regex_rules", "triggers", "closure", "tails", "finder"):
        assert getattr(kept, name) == getattr(built, name), name
    assert kept.gates.keys() == built.gates.keys()
    text = "550 5.1.1 <a@b.c>: recipient address rejected: user unknown in virtual mailbox table"
    assert kept.present(text) == built.present(text) != set()
