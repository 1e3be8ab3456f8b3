"""The literal index of a rules table: which rules a text may match, found in one pass.

Owns: :class:`LiteralIndex` (every literal of every rule, and a pre-check for each regex) and
:class:`Scan` (what one text contains). Does not own: the rules or the decision
(``classify``, which holds one index per :class:`~gateway.bounce.classify.Rules`).

Its tables depend only on the rules' texts; they are built by :func:`_tables` and kept from one
process to the next (``gateway.bounce.cache``), as ``gateway bounce classify`` builds them at
every start (issue 12 item 5).
"""

from __future__ import annotations

import re

from gateway.bounce.cache import memo, regex
from gateway.bounce.literals import Gate, folded, required_literals_of, trie_pattern

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Protocol

    class Rule(Protocol):
        """What the index reads of a rule (gateway.bounce.classify.Rule; not imported from
        there, as classify imports this module)."""

        @property
        def phrases(self) -> tuple[str, ...]: ...
        @property
        def unless(self) -> tuple[str, ...]: ...
        @property
        def sequences(self) -> tuple[tuple[str, ...], ...]: ...
        @property
        def regexes(self) -> tuple[re.Pattern[str], ...]: ...
        @property
        def textual(self) -> bool: ...

    # Per rule: phrases, unless, sequences, (pattern, flags) of each regex, textual.
    RuleTexts = tuple[
        tuple[str, ...],
        tuple[str, ...],
        tuple[tuple[str, ...], ...],
        tuple[tuple[str, int], ...],
        bool,
    ]
    Tables = tuple[
        frozenset[int],
        frozenset[int],
        dict[str, tuple[int, ...]],
        dict[str, tuple[str, ...]],
        dict[str, tuple[str, ...]],
        str,
    ]

# Characters of each literal in the finder's trie (LiteralIndex): compiling a trie of whole
# literals costs more start-up than `gateway bounce classify` spends on a hundred emails; the
# rest of a longer literal is compared where its first characters were found.
_TRIE_DEPTH = 5
# Texts whose literals are remembered (LiteralIndex.present): at most this many, this long.
_SEEN_TEXTS = 512
_SEEN_CHARS = 2000


class LiteralIndex:
    """All literals (phrases, ``unless``, each sequence's longest part) and regexes of the rules.

    A search with a trie of the literals' first ``_TRIE_DEPTH`` characters, their keys
    (:meth:`present`), reports at each position where a key starts the longest key starting
    there. Every shorter literal starting there is a prefix of it (its closure), and a longer
    literal can only start there when its key is exactly that one (no key is longer), so its
    remaining characters are compared there. Each regex gets a literal pre-check
    (:class:`~gateway.bounce.literals.Gate`).
    """

    __slots__ = (
        "_seen",
        "always",
        "closure",
        "finder",
        "gates",
        "regex_rules",
        "tails",
        "triggers",
    )

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self.gates: dict[tuple[str, int], Gate] = {}
        for rule in rules:
            for rx in rule.regexes:
                if (rx.pattern, rx.flags) not in self.gates:
                    self.gates[rx.pattern, rx.flags] = Gate(rx)
        # The tables are a function of the rules' texts alone, built once and kept from one
        # process to the next (gateway.bounce.cache; this module's source is part of its key).
        texts = tuple(
            (
                rule.phrases,
                rule.unless,
                rule.sequences,
                tuple((rx.pattern, rx.flags) for rx in rule.regexes),
                rule.textual,
            )
            for rule in rules
        )
        always, regex_rules, triggers, closure, tails, pattern = memo(
            "literal index", texts, lambda: _tables(texts)
        )
        self.always: frozenset[int] = always
        self.regex_rules: frozenset[int] = regex_rules
        self.triggers: dict[str, tuple[int, ...]] = triggers
        # The literals each key starts with (itself, when it is one).
        self.closure: dict[str, tuple[str, ...]] = closure
        self.tails: dict[str, tuple[str, ...]] = tails
        self.finder: re.Pattern[str] | None = regex(pattern) if pattern else None
        # The literals of the texts seen last (bounces repeat their diagnostics: "550 5.1.1
        # User unknown" from one provider, a report and its copy); bounded, see present.
        self._seen: dict[str, frozenset[str]] = {}

    def present(self, text: str) -> frozenset[str]:
        """Return the literals that occur in ``text`` (remembered for the last texts seen).

        Args:
            text: the text to scan.
        """
        found = self._seen.get(text)
        if found is None:
            found = frozenset(self.scan(text))
            if len(text) <= _SEEN_CHARS:
                if len(self._seen) >= _SEEN_TEXTS:
                    self._seen.clear()
                self._seen[text] = found
        return found

    def scan(self, text: str) -> set[str]:
        """:meth:`present`, computed.

        Each search finds the next position where a literal starts and the longest one there;
        the next search starts one character later, so literals that overlap are all found.
        The pattern starts with the literals' first characters, which lets the regex engine
        skip the positions where none starts (a lookahead pattern cannot skip any).

        Args:
            text: the text to scan.
        """
        found: set[str] = set()
        if self.finder is None:
            return found
        closure = self.closure
        tails = self.tails
        search = self.finder.search
        match = search(text)
        while match is not None:
            key = match.group()
            found.update(closure[key])
            start = match.start()
            longer = tails.get(key)
            # One C-level test for the usual answer (none of them starts here), then each.
            if longer is not None and text.startswith(longer, start):
                found.update(lit for lit in longer if text.startswith(lit, start))
            match = search(text, start + 1)
        return found

    def candidates(
        self, found: frozenset[str], is_folded: bool, allowed: frozenset[int]
    ) -> list[int]:
        """Positions of the rules that may match a text containing exactly ``found``, in order.

        Args:
            found: the literals present in the text (:class:`Scan`).
            is_folded: the text equals its folded form (``literals.folded``), so the
                lower-case literals required by regexes are looked up in ``found`` as well.
            allowed: the positions of the rules to consider.
        """
        positions = set(self.always if is_folded else self.always | self.regex_rules)
        triggers = self.triggers
        for lit in found:
            hit = triggers.get(lit)
            if hit is not None:
                positions.update(hit)
        return sorted(allowed.intersection(positions))


class Scan:
    """What one text contains: the literals present, and regex results computed on demand."""

    __slots__ = ("_folded", "_index", "_regex", "found", "is_folded", "text")

    def __init__(self, text: str, index: LiteralIndex) -> None:
        self.text = text
        self._index = index
        self.found = index.present(text) if text else frozenset()
        self._folded = folded(text)
        self.is_folded = self._folded == text
        self._regex: dict[tuple[str, int], bool] = {}

    def search(self, rx: re.Pattern[str]) -> bool:
        """Return whether ``rx`` matches somewhere in the text (memoised, literal pre-check)."""
        key = (rx.pattern, rx.flags)
        hit = self._regex.get(key)
        if hit is None:
            gate = self._index.gates.get(key)
            hit = (gate is None or gate.may_match(self.text, self._folded)) and (
                rx.search(self.text) is not None
            )
            self._regex[key] = hit
        return hit


def sequence_key(parts: tuple[str, ...]) -> str:
    """The part of a rule's sequence the index looks for: its longest (the first of them).

    A sequence matches only where all its parts occur, so one part's absence rules it out; the
    longest is the rarest as a rule (a first part such as "<" occurs in most texts and would
    make every "<" a stop of the literal search).

    Args:
        parts: the sequence's parts, in order.
    """
    return max(parts, key=len)


def _tables(rules: tuple[RuleTexts, ...]) -> Tables:
    """The index's tables for rules given by their texts (see :class:`LiteralIndex`)."""
    literals: set[str] = set()
    # A textual rule can only match when one of its phrases, the longest part of one of its
    # sequences or a literal required by one of its regexes is present. Regex literals are
    # lower-case ASCII, so they are only looked up for texts equal to their folded form (see
    # candidates); a rule with a regex lacking such literals is always a candidate.
    always: list[int] = []
    regex_rules: list[int] = []
    triggers: dict[str, list[int]] = {}
    for position, (phrases, unless, sequences, regexes, textual) in enumerate(rules):
        looked_for = [sequence_key(seq) for seq in sequences]
        literals.update(phrases, unless, looked_for)
        keys = {*phrases, *looked_for}
        for pattern, flags in regexes:
            required = required_literals_of(pattern, flags)  # what its Gate holds
            if required is None:
                keys = set()
                break
            keys.update(required)
        literals.update(keys)
        if not textual or not keys:
            always.append(position)
            continue
        if regexes:
            regex_rules.append(position)
        for lit in keys:
            triggers.setdefault(lit, []).append(position)
    starts = {lit[:_TRIE_DEPTH] for lit in literals}
    # The literals each key starts with (itself, when it is one): a look-up per prefix
    # length, not a comparison with every other literal (quadratic: start-up cost).
    closure = {
        key: tuple(key[:n] for n in range(1, len(key) + 1) if key[:n] in literals) for key in starts
    }
    tails: dict[str, list[str]] = {}
    for lit in sorted(literals):
        if len(lit) > _TRIE_DEPTH:
            tails.setdefault(lit[:_TRIE_DEPTH], []).append(lit)
    return (
        frozenset(always),
        frozenset(regex_rules),
        {lit: tuple(positions) for lit, positions in triggers.items()},
        closure,
        {key: tuple(longer) for key, longer in tails.items()},
        trie_pattern(starts) if starts else "",
    )
