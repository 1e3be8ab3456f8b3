"""Classification as data: an ordered, first-match rules table read from TOML.

Owns: the :class:`Rule`/:class:`Rules` types and the one decision procedure used for both
asynchronous reports and the relay's synchronous SMTP replies — so ``550 5.1.1`` during relay
and a DSN saying the same get the same category. Does not own: finding the facts in a message
(``parse``, ``dsn``, ``freetext``) or reading the rules files (``rules_file``).

A rule matches when every condition it gives holds; the first matching rule wins. Rules marked
``fallback = true`` (the status- and reply-code defaults at the end of the table) are only
consulted once the remote server's words *and* the reporting MTA's explanation have been read.
"""

from __future__ import annotations

import re

from gateway.bounce.index import LiteralIndex as _LiteralIndex
from gateway.bounce.index import Scan as _Scan
from gateway.bounce.index import sequence_key
from gateway.bounce.records import FrozenRecord
from gateway.core.category import Category

MAX_RULE_TEXT = 6000  # characters of text any rule looks at (bounds regex work)
_MAX_ENVELOPES = 4096  # combinations of non-text conditions whose matching rules are kept
_MAX_ENVELOPE_CHARS = 64  # longer ones (hostile input) are not kept, so the memory is bounded
_QUOTES = (("\u2019", "'"), ("\u2018", "'"), ("\u201c", '"'), ("\u201d", '"'))


class Facts(FrozenRecord):
    """What is known about one failure, normalised for matching."""

    _FIELDS = ("reply_code", "status", "text", "command", "action", "provider")
    __slots__ = _FIELDS

    reply_code: int | None
    status: str | None
    text: str
    command: str | None
    action: str | None
    provider: str | None

    def __init__(
        self,
        reply_code: int | None,
        status: str | None,
        text: str,
        command: str | None = None,
        action: str | None = None,
        provider: str | None = None,
    ) -> None:
        self._init(
            reply_code=reply_code,
            status=status,
            text=text,
            command=command,
            action=action,
            provider=provider,
        )


class Rule(FrozenRecord):
    """One row of the rules table; see ``rules.toml`` for the meaning of each key."""

    _FIELDS = (
        "name",
        "category",
        "source",
        "statuses",
        "replies",
        "phrases",
        "sequences",
        "regexes",
        "unless",
        "commands",
        "not_commands",
        "actions",
        "providers",
        "fallback",
        "textual",
        "reason",
    )
    __slots__ = (*_FIELDS, "_phrase_set", "_unless_set", "_status_set", "_reply_set")

    name: str
    category: Category
    source: str
    statuses: tuple[tuple[str, str, str], ...]
    replies: tuple[str, ...]
    phrases: tuple[str, ...]
    sequences: tuple[tuple[str, ...], ...]
    regexes: tuple[re.Pattern[str], ...]
    unless: tuple[str, ...]
    commands: tuple[str, ...]
    not_commands: tuple[str, ...]
    actions: tuple[str, ...]
    providers: tuple[str, ...]
    fallback: bool
    textual: bool
    # Why a rule that only one sender's bounces need is in the shared table (rules.toml).
    reason: str
    # Derived: the phrases as sets, looked up in the literals a text contains (_Scan.found).
    _phrase_set: frozenset[str]
    _unless_set: frozenset[str]
    # Derived: the status and reply patterns as strings ("5.7.*", "55x"), looked up in the
    # patterns a status or reply code matches (_status_keys, _reply_keys).
    _status_set: frozenset[str]
    _reply_set: frozenset[str]

    def __init__(
        self,
        name: str,
        category: Category,
        source: str,
        statuses: tuple[tuple[str, str, str], ...] = (),
        replies: tuple[str, ...] = (),
        phrases: tuple[str, ...] = (),
        sequences: tuple[tuple[str, ...], ...] = (),
        regexes: tuple[re.Pattern[str], ...] = (),
        unless: tuple[str, ...] = (),
        commands: tuple[str, ...] = (),
        not_commands: tuple[str, ...] = (),
        actions: tuple[str, ...] = (),
        providers: tuple[str, ...] = (),
        fallback: bool = False,
        textual: bool = False,
        reason: str = "",
    ) -> None:
        self._init(
            name=name,
            category=category,
            source=source,
            statuses=statuses,
            replies=replies,
            phrases=phrases,
            sequences=sequences,
            regexes=regexes,
            unless=unless,
            commands=commands,
            not_commands=not_commands,
            actions=actions,
            providers=providers,
            fallback=fallback,
            textual=textual,
            reason=reason,
            _phrase_set=frozenset(phrases),
            _unless_set=frozenset(unless),
            _status_set=frozenset(".".join(p) for p in statuses),
            _reply_set=frozenset(replies),
        )

    def _envelope_matches(self, facts: Facts, keys: tuple[frozenset[str], frozenset[str]]) -> bool:
        """The conditions that do not read the text: status, reply, command, action,
        provider (shared by :meth:`matches` and :meth:`Rules.first_match`).

        Args:
            facts: the normalised facts of one failure.
            keys: ``_status_keys(facts.status)`` and ``_reply_keys(facts.reply_code)``.
        """
        status_keys, reply_keys = keys
        if self.statuses and self._status_set.isdisjoint(status_keys):
            return False
        if self.replies and self._reply_set.isdisjoint(reply_keys):
            return False
        if self.commands and facts.command not in self.commands:
            return False
        if self.not_commands and facts.command in self.not_commands:
            return False
        if self.actions and facts.action not in self.actions:
            return False
        return not (self.providers and facts.provider not in self.providers)

    def matches(self, facts: Facts) -> bool:
        """Return True when every condition of this rule holds for ``facts``.

        Args:
            facts: the normalised facts of one failure.
        """
        keys = (_status_keys(facts.status), _reply_keys(facts.reply_code))
        if not self._envelope_matches(facts, keys):
            return False
        # The plain scans: Rules.first_match, the hot path, uses text_matches instead.
        text = facts.text
        if any(phrase in text for phrase in self.unless):
            return False
        if not self.textual:
            return True
        return (
            any(phrase in text for phrase in self.phrases)
            or any(_in_order(text, seq) for seq in self.sequences)
            or any(rx.search(text) for rx in self.regexes)
        )

    def text_matches(self, facts: Facts, scan: _Scan) -> bool:
        """:meth:`matches` for a rule whose other conditions hold for ``facts``, with the text's
        literals and regexes looked up in ``scan``.

        Args:
            facts: the normalised facts of one failure.
            scan: :class:`_Scan` of ``facts.text`` built from an index holding this rule.
        """
        found = scan.found
        if self._unless_set and not self._unless_set.isdisjoint(found):
            return False
        if not self.textual:
            return True
        if self._phrase_set and not self._phrase_set.isdisjoint(found):
            return True
        text = facts.text
        for seq in self.sequences:
            if sequence_key(seq) in found and _in_order(text, seq):
                return True
        return any(scan.search(rx) for rx in self.regexes)


class Rules(FrozenRecord):
    """An ordered rules table: local rules first, then the packaged ones."""

    _FIELDS = ("rules",)
    __slots__ = ("_allowed", "_bound", "_free", "_index", "rules")

    rules: tuple[Rule, ...]
    # Derived: every literal of every rule found in one pass over a text (see _LiteralIndex),
    # so a rule's phrases, `unless` and sequences become set look-ups.
    _index: _LiteralIndex
    # Derived, filled as facts come: for each combination of the conditions that do not read
    # the text, the positions of the rules they satisfy (few combinations occur in practice;
    # the cache holds at most _MAX_ENVELOPES short ones).
    _allowed: dict[tuple[object, ...], frozenset[int]]
    # Derived: by with_fallbacks, the positions of the rules with no such condition (allowed
    # for any facts) and of those with one (tested for each new combination).
    _free: tuple[frozenset[int], frozenset[int]]
    _bound: tuple[tuple[int, ...], tuple[int, ...]]

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        free: tuple[list[int], list[int]] = ([], [])
        bound: tuple[list[int], list[int]] = ([], [])
        for position, rule in enumerate(rules):
            envelope = (
                rule.statuses,
                rule.replies,
                rule.commands,
                rule.not_commands,
                rule.actions,
                rule.providers,
            )
            for with_fallbacks in (False, True):
                if with_fallbacks or not rule.fallback:
                    (bound if any(envelope) else free)[with_fallbacks].append(position)
        self._init(
            rules=rules,
            _index=_LiteralIndex(rules),
            _allowed={},
            _free=(frozenset(free[0]), frozenset(free[1])),
            _bound=(tuple(bound[0]), tuple(bound[1])),
        )

    def first_match(self, facts: Facts, *, with_fallbacks: bool = True) -> Rule | None:
        """Return the first rule matching ``facts``, or ``None``.

        Args:
            facts: the normalised facts of one failure.
            with_fallbacks: also consider rules marked ``fallback``.
        """
        allowed = self._allowed_for(facts, with_fallbacks)
        if not allowed:
            return None
        index = self._index
        scan = _Scan(facts.text, index)
        rules = self.rules
        for position in index.candidates(scan.found, scan.is_folded, allowed):
            rule = rules[position]
            if rule.text_matches(facts, scan):
                return rule
        return None

    def _allowed_for(self, facts: Facts, with_fallbacks: bool) -> frozenset[int]:
        """Positions of the rules (fallbacks only ``with_fallbacks``) whose conditions that do
        not read the text hold for ``facts``."""
        key = (
            facts.status,
            facts.reply_code,
            facts.command,
            facts.action,
            facts.provider,
            with_fallbacks,
        )
        allowed = self._allowed.get(key)
        if allowed is None:
            keys = (_status_keys(facts.status), _reply_keys(facts.reply_code))
            rules = self.rules
            allowed = self._free[with_fallbacks].union(
                position
                for position in self._bound[with_fallbacks]
                if rules[position]._envelope_matches(facts, keys)
            )
            texts = (facts.status, facts.command, facts.action, facts.provider)
            if sum(len(text or "") for text in texts) <= _MAX_ENVELOPE_CHARS:
                if len(self._allowed) >= _MAX_ENVELOPES:
                    self._allowed.clear()
                self._allowed[key] = allowed
        return allowed


def normalise(text: str) -> str:
    """Lower-case, straighten quotes and collapse white space, bounded for matching.

    Args:
        text: diagnostic or notification text.
    """
    head = text[: MAX_RULE_TEXT * 2]
    if not head.isascii():
        for curly, straight in _QUOTES:
            head = head.replace(curly, straight)  # far cheaper than str.translate
    return " ".join(head.lower().split())[:MAX_RULE_TEXT]


def decide(
    rules: Rules,
    *,
    reply_code: int | None,
    status: str | None,
    diagnostic: str,
    context: str = "",
    command: str | None = None,
    action: str | None = None,
    provider: str | None = None,
) -> Category:
    """Classify one failure: the remote server's words first, then the notification around them.

    Args:
        rules: the rules table.
        reply_code: the SMTP reply code, if known.
        status: the RFC 3463 enhanced status code, if known.
        diagnostic: the remote server's own words (Diagnostic-Code or the quoted reply).
        context: the reporting MTA's explanation for this recipient.
        command: MAIL, RCPT, DATA or CONN when known (RFC 5321 §4.1).
        action: the RFC 3464 §2.3.3 action.
        provider: a provider hint such as ``"uol"``.
    """
    rule = explain(
        rules,
        reply_code=reply_code,
        status=status,
        diagnostic=diagnostic,
        context=context,
        command=command,
        action=action,
        provider=provider,
    )
    if rule is _DELIVERED:
        return Category.DELIVERED
    return rule.category if rule is not None else Category.RECEIVING_PROBLEM


_DELIVERED = Rule(name="delivered", category=Category.DELIVERED, source="built-in")


def explain(
    rules: Rules,
    *,
    reply_code: int | None,
    status: str | None,
    diagnostic: str,
    context: str = "",
    command: str | None = None,
    action: str | None = None,
    provider: str | None = None,
) -> Rule | None:
    """Return the rule that decides a failure (see :func:`decide`), ``None`` if none matches.

    Args:
        rules: the rules table.
        reply_code: the SMTP reply code, if known.
        status: the RFC 3463 enhanced status code, if known.
        diagnostic: the remote server's own words.
        context: the reporting MTA's explanation for this recipient.
        command: MAIL, RCPT, DATA or CONN when known.
        action: the RFC 3464 §2.3.3 action.
        provider: a provider hint such as ``"uol"``.
    """
    # RFC 3464 §2.3.3: delivered, relayed and expanded are successes, as is any 2.X.X status.
    if action in {"delivered", "relayed", "expanded"} or (status or "").startswith("2."):
        return _DELIVERED
    first = Facts(reply_code, status, normalise(diagnostic), command, action, provider)
    rule = rules.first_match(first, with_fallbacks=False) if first.text or provider else None
    if rule is None or (context and rule.category is Category.RECEIVING_PROBLEM):
        combined = normalise(f"{diagnostic}\n{context}") if context else first.text
        second = Facts(reply_code, status, combined, command, action, provider)
        wider = rules.first_match(second)
        # A vague remote word ("input/output error", "system error") gives way to a more
        # precise one in the reporting MTA's explanation, only towards a category that
        # blocks nothing (issue 12: mailbox full where only the human part says so).
        if rule is None or (wider is not None and wider.category in _PRECISE_NON_BLOCKING):
            rule = wider
    return rule


_PRECISE_NON_BLOCKING = frozenset({Category.MAILBOX_FULL, Category.MESSAGE_TOO_LARGE})


def matching_rules(
    rules: Rules,
    *,
    reply_code: int | None,
    status: str | None,
    diagnostic: str,
    context: str = "",
    command: str | None = None,
    action: str | None = None,
    provider: str | None = None,
) -> list[Rule]:
    """Every rule whose conditions hold for a failure, in table order (not just the first).

    The same two readings as :func:`explain`: the remote server's words alone (fallbacks
    excluded), then those words with the reporting MTA's explanation. Used to see which
    evidence each rule is written for (``bench/bounces.py --cv``).

    Args:
        rules: the rules table.
        reply_code: the SMTP reply code, if known.
        status: the RFC 3463 enhanced status code, if known.
        diagnostic: the remote server's own words.
        context: the reporting MTA's explanation for this recipient.
        command: MAIL, RCPT, DATA or CONN when known.
        action: the RFC 3464 §2.3.3 action.
        provider: a provider hint such as ``"uol"``.
    """
    first = Facts(reply_code, status, normalise(diagnostic), command, action, provider)
    combined = normalise(f"{diagnostic}\n{context}") if context else first.text
    second = Facts(reply_code, status, combined, command, action, provider)
    return [
        rule
        for rule in rules.rules
        if (not rule.fallback and rule.matches(first)) or rule.matches(second)
    ]


def _status_keys(status: str | None) -> frozenset[str]:
    """Every status pattern ``status`` matches: each part as given or ``*`` ("5.1.1", "5.*.1"…)."""
    parts = status.split(".") if status else []
    if len(parts) != 3:
        return frozenset()
    cls, subject, detail = parts
    return frozenset(
        f"{c}.{s}.{d}" for c in (cls, "*") for s in (subject, "*") for d in (detail, "*")
    )


def _reply_keys(code: int | None) -> frozenset[str]:
    """Every reply pattern ``code`` matches: each digit as given or ``x`` ("550", "5x0"…)."""
    digits = "" if code is None else str(code)
    if len(digits) != 3:
        return frozenset()
    first, second, third = digits[0], digits[1], digits[2]
    return frozenset(
        f"{a}{b}{c}" for a in (first, "x") for b in (second, "x") for c in (third, "x")
    )


def _in_order(text: str, parts: tuple[str, ...]) -> bool:
    pos = 0
    for part in parts:
        found = text.find(part, pos)
        if found < 0:
            return False
        pos = found + len(part)
    return True
