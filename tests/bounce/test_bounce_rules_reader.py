"""The packaged rules file's own reader gives what tomllib gives (rules_file.read_packaged)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from gateway.bounce import rules_file

PACKAGED = Path(rules_file.__file__).with_name("rules.toml")


def test_the_packaged_file_reads_as_tomllib_reads_it() -> None:
    text = PACKAGED.read_text(encoding="utf-8")
    assert rules_file._read_subset(text) == tomllib.loads(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "# only a comment\n",
        "[[rule]]\nname = 'a'\n",
        '[[rule]]\nname = "it\'s"\nfallback = true\nreply = [556, 0]\n',
        "[[rule]]\r\nphrases = [\r\n    'a', \"b \\\"c\\\" \\\\ d\", # note\r\n    'e',\r\n]\r\n",
        "[[rule]]\nsequences = [['a', 'b'], ['c']]\nunless = []\n[[rule]]\nname = 'x'\n",
        "[[rule]]\nregex = ['\\b(?:ofr|lpn)\\w{0,8}?416\\b', '#not a comment']\n",
        "[[rule]]\nsequences = [['a[1]', 'b]'], [ '[c' , \"d's\" ],]\nregex = ['x[0-5]']\n",
        "[[rule]]\nphrases = [ # 'a' in a comment, [brackets] too\n 'b' ]\nreply = [5, 0]\n",
    ],
)
def test_texts_inside_the_subset(text: str) -> None:
    assert rules_file._read_subset(text) == tomllib.loads(text)
    assert rules_file.read_packaged(text) == tomllib.loads(text)


@pytest.mark.parametrize(
    "text",
    [
        '[[rule]]\nname = """two\nlines"""\n',
        "[[rule]]\nname = '''raw'''\n",
        '[[rule]]\nname = "tab\\there"\n',
        "[[rule]]\nweight = 1.5\n",
        "[[rule]]\nlimits = { a = 1 }\n",
        "[[rule]]\nnot-commands = ['MAIL']\n",
        "[[ rule ]]\nname = 'spaced header'\n",
        "[meta]\nversion = 2\n",
    ],
)
def test_texts_outside_the_subset_go_to_tomllib(text: str) -> None:
    assert rules_file.read_packaged(text) == tomllib.loads(text)


@pytest.mark.parametrize(
    "text",
    [
        "[[rule]]\nname = 'a'\nname = 'b'\n",  # a key twice
        "[[rule]]\nname = 'a' category = 'b'\n",  # two keys on one line
        "[[rule]]\nphrases = ['a' 'b']\n",  # no comma
        "[[rule]]\nphrases = ['a',\n",  # not closed
        "rule = 1\n[[rule]]\nname = 'a'\n",  # rule both a key and a table
        "[[rule]]\nreply = [0550]\n",  # a leading zero
    ],
)
def test_broken_toml_is_reported_by_tomllib(text: str) -> None:
    with pytest.raises(tomllib.TOMLDecodeError):
        rules_file.read_packaged(text)
