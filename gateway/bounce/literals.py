"""Cheap exact pre-checks for regular expressions: literals that every match must contain.

Owns: :func:`required_literals`, which reads a compiled pattern's parse tree and returns a few
lower-case ASCII strings such that any text the pattern matches contains at least one of them,
and :class:`Gate`, which skips a regex search when none of them is present. The pre-check only
ever says "cannot match"; when it passes, the regex itself decides, so results are unchanged.

Lower-casing is only a sound comparison for ASCII text: under ``re.IGNORECASE`` some non-ASCII
characters match ASCII letters (``ſ`` matches ``s``, ``İ`` matches ``i``), so a non-ASCII text
always gets the full search.
"""

from __future__ import annotations

import re
from re import _constants as _sre  # type: ignore[attr-defined]
from re import _parser  # type: ignore[attr-defined]

MIN_LITERAL = 2  # shorter literals are too common to save a search


def required_literals(pattern: re.Pattern[str]) -> frozenset[str] | None:
    """Return lower-case literals, one of which occurs in every match, or ``None`` if unknown.

    Args:
        pattern: a compiled pattern (its flags are honoured when parsing).
    """
    try:
        tree = _parser.parse(pattern.pattern, pattern.flags)
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
        return _of_sequence(list(av))  # type: ignore[call-overload]
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

    def may_match(self, text: str, lowered: str | None) -> bool:
        """Return False only when ``pattern`` cannot match ``text``.

        Args:
            text: the text to search.
            lowered: ``text.lower()`` when ``text`` is ASCII, else ``None`` (no pre-check).
        """
        if self.literals is None or lowered is None:
            return True
        return any(lit in lowered for lit in self.literals)

    def search(self, text: str, lowered: str | None) -> bool:
        """Return whether ``pattern`` matches somewhere in ``text``.

        Args:
            text: the text to search.
            lowered: ``text.lower()`` when ``text`` is ASCII, else ``None``.
        """
        return self.may_match(text, lowered) and self.pattern.search(text) is not None


def ascii_lowered(text: str) -> str | None:
    """Return ``text.lower()`` for ASCII text (the pre-check is sound), else ``None``."""
    return text.lower() if text.isascii() else None
