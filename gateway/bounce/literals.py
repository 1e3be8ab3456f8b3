"""Cheap exact pre-checks for regular expressions: literals that every match must contain.

Owns: :func:`required_literals`, which reads a compiled pattern's parse tree and returns a few
lower-case ASCII strings such that any text the pattern matches contains at least one of them,
and :class:`Gate`, which skips a regex search when none of them is present. The pre-check only
ever says "cannot match"; when it passes, the regex itself decides, so results are unchanged.
Also :func:`trie_pattern`, one regex finding the longest of many literals at a position.

Texts are compared in their :func:`folded` form: lower-cased, with the four non-ASCII letters
that ``re.IGNORECASE`` equates with ASCII ones (``İ`` and ``ı`` with ``i``, ``ſ`` with ``s``, the
Kelvin sign with ``k``; see the ``re`` documentation) replaced by those. A character of a text
then matches an ASCII pattern character case-insensitively exactly when its folded form equals
that character's lower-case form, so a literal of a match is always found in the folded text.
"""

from __future__ import annotations

import re

# The regex parser's own tables (private and untyped: the bounce tests fail if they change).
from re import _constants as _sre  # type: ignore[attr-defined]  # private module
from re import _parser  # type: ignore[attr-defined]  # private module

from gateway.bounce.cache import memo

MIN_LITERAL = 2  # shorter literals are too common to save a search

Trie = dict[str, "Trie"]  # one character -> the rest ("" marks a literal's end)


def required_literals(pattern: re.Pattern[str]) -> frozenset[str] | None:
    """Return lower-case literals, one of which occurs in every match, or ``None`` if unknown.

    Args:
        pattern: a compiled pattern (its flags are honoured when parsing).
    """
    return required_literals_of(pattern.pattern, pattern.flags)


def required_literals_of(pattern: str, flags: int = 0) -> frozenset[str] | None:
    """:func:`required_literals` of a pattern not compiled (compiling costs start-up time).

    Args:
        pattern: the regular expression.
        flags: its ``re`` flags.
    """
    # Kept between processes (gateway.bounce.cache): parsing each pattern is start-up time.
    return memo("literals", (pattern, int(flags)), lambda: _required_literals(pattern, flags))


def _required_literals(pattern: str, flags: int) -> frozenset[str] | None:
    try:
        tree = _parser.parse(pattern, flags)
    except Exception:  # an analysis failure only means "no pre-check"
        return None
    found = _of_sequence(list(tree))
    if not found or min(len(lit) for lit in found) < MIN_LITERAL:
        return None
    return frozenset(found)


def _of_sequence(items: list[tuple[object, object]]) -> set[str] | None:
    """Best requirement of a concatenation: every item must match, so any one item's will do."""
    best: set[str] | None = None
    run: list[str] = []

    def consider(candidate: set[str] | None) -> None:
        nonlocal best
        if candidate and (best is None or _strength(candidate) > _strength(best)):
            best = candidate

    for op, av in items:
        if op is _sre.LITERAL and isinstance(av, int) and chr(av).isascii():
            run.append(chr(av).lower())
            continue
        if run:
            consider({"".join(run)})
            run = []
        consider(_of_item(op, av))
    if run:
        consider({"".join(run)})
    return best


def _of_item(op: object, av: object) -> set[str] | None:
    if op is _sre.SUBPATTERN and isinstance(av, tuple):
        return _of_sequence(list(av[-1]))
    if op is _sre.BRANCH and isinstance(av, tuple):
        union: set[str] = set()
        for alternative in av[1]:
            part = _of_sequence(list(alternative))
            if not part:
                return None  # this alternative needs no literal, so the branch needs none
            union |= part
        return union
    if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, _sre.POSSESSIVE_REPEAT) and isinstance(av, tuple):
        low, _high, body = av
        return _of_sequence(list(body)) if low >= 1 else None
    if op is _sre.ATOMIC_GROUP:
        return _of_sequence(list(av))  # type: ignore[call-overload]  # av: the parser's untyped list
    return None


def _strength(literals: set[str]) -> tuple[int, int]:
    """Prefer requirements whose shortest literal is long, then those with fewer literals."""
    return min(len(lit) for lit in literals), -len(literals)


class Gate:
    """A compiled pattern with its literal pre-check: :meth:`search` answers like ``search``."""

    __slots__ = ("literals", "pattern")

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern
        self.literals = required_literals(pattern)

    def may_match(self, text: str, folded_text: str) -> bool:
        """Return False only when ``pattern`` cannot match ``text``.

        Args:
            text: the text to search.
            folded_text: ``folded(text)``.
        """
        if self.literals is None:
            return True
        return any(lit in folded_text for lit in self.literals)

    def search(self, text: str, folded_text: str) -> bool:
        """Return whether ``pattern`` matches somewhere in ``text``.

        Args:
            text: the text to search.
            folded_text: ``folded(text)``.
        """
        return self.may_match(text, folded_text) and self.pattern.search(text) is not None


# The only non-ASCII characters that re.IGNORECASE matches with ASCII letters.
_TO_ASCII = (("\u0130", "i"), ("\u0131", "i"), ("\u017f", "s"), ("\u212a", "k"))


def folded(text: str) -> str:
    """Return ``text`` lower-cased for literal pre-checks (see the module docstring).

    Folding maps each character to exactly one character, keeps white space, word characters
    and digits what they were, and maps only ASCII letters and those four letters to ASCII
    letters; so positions in the folded text are positions in ``text``.

    Args:
        text: any text.
    """
    if not text.isascii():
        for char, ascii_char in _TO_ASCII:
            text = text.replace(char, ascii_char)  # far cheaper than str.translate
    return text.lower()


def trie_pattern(literals: set[str] | frozenset[str]) -> str:
    """Return a regex matching, at a position, the longest of ``literals`` that starts there.

    The literals are laid out as a trie: each branch starts with a different character, so the
    regex engine tries at most one of them at each step instead of every literal in turn.

    Args:
        literals: non-empty strings.
    """
    ordered = tuple(sorted(literals))  # sorted: the same pattern in every process
    return memo("trie", ordered, lambda: _trie_pattern(ordered))


def _trie_pattern(ordered: tuple[str, ...]) -> str:
    trie: Trie = {}
    for lit in ordered:
        node = trie
        for char in lit:
            node = node.setdefault(char, {})
        node[""] = {}
    return _node_pattern(trie)


def _node_pattern(node: Trie) -> str:
    branches = [re.escape(char) + _node_pattern(child) for char, child in node.items() if char]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    # Children start with distinct characters, so at most one can go on; a greedy optional
    # prefers the longer literal and falls back to the one ending here.
    return f"(?:{body})?" if "" in node else body
