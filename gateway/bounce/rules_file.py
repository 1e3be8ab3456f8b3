"""The rules files: ``rules.toml`` shipped as package data, and an operator's local rules
file evaluated before it, read and validated into :class:`~gateway.bounce.classify.Rules`.

Every error names the file and the rule's index, so a broken local file stops start-up with
a message that says where to look.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from gateway.bounce import cache
from gateway.bounce.classify import Rule, Rules
from gateway.core.category import Category

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

    # A checked rule as plain values (kept by gateway.bounce.cache): name, category's value,
    # where, statuses, replies, phrases, sequences, regex patterns, unless, commands,
    # not_commands, actions, providers, fallback, reason.
    RuleFields = tuple[
        str,
        str,
        str,
        tuple[tuple[str, str, str], ...],
        tuple[str, ...],
        tuple[str, ...],
        tuple[tuple[str, ...], ...],
        tuple[str, ...],
        tuple[str, ...],
        tuple[str, ...],
        tuple[str, ...],
        tuple[str, ...],
        tuple[str, ...],
        bool,
        str,
    ]

_ALLOWED_KEYS = frozenset(
    {
        "name",
        "category",
        "status",
        "reply",
        "phrases",
        "sequences",
        "regex",
        "unless",
        "commands",
        "not_commands",
        "actions",
        "providers",
        "fallback",
        "reason",
    }
)
_COMMANDS = frozenset({"MAIL", "RCPT", "DATA", "CONN"})
_STATUS_PATTERN = cache.regex(r"^[245*]\.(?:\d{1,3}|\*)\.(?:\d{1,3}|\*)$")
_REPLY_PATTERN = cache.regex(r"^[245x][0-9x][0-9x]$")


def load_rules(extra_path: str | Path | None = None) -> Rules:
    """Load the packaged rules, with an operator's local rules evaluated before them.

    Args:
        extra_path: a local TOML rules file in the same format as the packaged ``rules.toml``.

    Raises:
        ValueError: the file cannot be read or a rule is invalid; the message names the file
            and the rule index.
    """
    packaged = default_rules()
    if extra_path is None:
        return packaged
    import tomllib  # an operator's file may use any TOML

    path = Path(extra_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        msg = f"{path}: cannot read rules file: {exc}"
        raise ValueError(msg) from exc
    local = _parse_table(data, str(path))
    return Rules(local + packaged.rules)


@lru_cache(maxsize=1)
def default_rules() -> Rules:
    """Return the packaged rules table (read once per process)."""
    beside = Path(__file__).with_name("rules.toml")
    if beside.is_file():
        # The package on disk (a wheel or a checkout): read the file beside this module, which
        # spares `gateway bounce classify` importing importlib.resources at start-up.
        text = beside.read_text(encoding="utf-8")
    else:  # a zip or another loader: ask it
        from importlib import resources

        text = resources.files("gateway.bounce").joinpath("rules.toml").read_text("utf-8")
    # The table read and checked from this very text, its regexes compiled and the literal
    # finder built are kept from one process to the next (gateway.bounce.cache): an edited file
    # is read again.
    where = "gateway/bounce/rules.toml"
    checked = cache.memo("rules.toml", text, lambda: _checked_table(read_packaged(text), where))
    rules = Rules(tuple(_rule(fields) for fields in checked))
    cache.save()
    return rules


# The TOML the packaged rules.toml is written in, as tokens: white space, comments, newlines,
# the [[rule]] header, a key and its "=", brackets and commas, literal strings, basic strings
# whose only escapes are \" and \\, booleans and decimal integers.
_TOKEN = cache.regex(
    r"""(?P<skip>[ \t\r]+|\#[^\n]*)|(?P<nl>\n)|(?P<header>\[\[rule\]\])"""
    r"""|(?P<key>[A-Za-z_][A-Za-z0-9_]*)[ \t]*=|(?P<punct>[\[\],])"""
    r"""|'(?P<literal>[^'\n]*)'|"(?P<basic>(?:[^"\\\n]|\\["\\])*)"|(?P<bool>true|false)\b"""
    r"""|(?P<int>[0-9]+)\b"""
)


class _NotTheSubset(Exception):
    """The text uses TOML that :func:`read_packaged` leaves to ``tomllib``."""


def read_packaged(text: str) -> dict[str, Any]:
    """Read the packaged rules file: its subset of TOML here, anything else with ``tomllib``.

    Importing ``tomllib`` (it compiles its patterns) and reading the file with it, character
    by character, was a twentieth of ``gateway bounce classify``'s whole run. The subset the
    file is written in is read with one pattern instead, to the same result (tests/bounce
    compare the two on the packaged file and on texts outside the subset); TOML outside it, or
    a key given twice, goes to ``tomllib``, which says what is wrong.

    Args:
        text: the packaged rules.toml.
    """
    try:
        return _read_subset(text)
    except _NotTheSubset:
        import tomllib

        return tomllib.loads(text)


def _read_subset(text: str) -> dict[str, Any]:
    tokens: list[tuple[str, str]] = []
    end = 0
    for match in _TOKEN.finditer(text):
        if match.start() != end:
            raise _NotTheSubset  # a character no token takes
        end = match.end()
        kind = match.lastgroup or ""
        if kind != "skip":
            tokens.append((kind, match.group(kind)))
    if end != len(text):
        raise _NotTheSubset
    top: dict[str, Any] = {}
    table = top
    pos = 0
    while pos < len(tokens):
        kind, value = tokens[pos]
        if kind == "nl":
            pos += 1
        elif kind == "header":
            if "rule" in top and table is top:
                raise _NotTheSubset  # "rule" is a key of the top table as well
            table = {}
            top.setdefault("rule", []).append(table)
            pos = _end_of_line(tokens, pos + 1)
        elif kind == "key":
            if value in table:
                raise _NotTheSubset  # TOML forbids it: tomllib says so
            table[value], pos = _value(tokens, pos + 1)
            pos = _end_of_line(tokens, pos)
        else:
            raise _NotTheSubset
    return top


def _end_of_line(tokens: list[tuple[str, str]], pos: int) -> int:
    if pos < len(tokens) and tokens[pos][0] != "nl":
        raise _NotTheSubset
    return pos


def _skip_newlines(tokens: list[tuple[str, str]], pos: int) -> int:
    while pos < len(tokens) and tokens[pos][0] == "nl":
        pos += 1
    return pos


def _value(tokens: list[tuple[str, str]], pos: int) -> tuple[Any, int]:
    if pos >= len(tokens):
        raise _NotTheSubset
    kind, value = tokens[pos]
    if kind == "literal":
        return value, pos + 1
    if kind == "basic":
        return value.replace('\\"', '"').replace("\\\\", "\\"), pos + 1
    if kind == "bool":
        return value == "true", pos + 1
    if kind == "int" and (value == "0" or not value.startswith("0")):
        return int(value), pos + 1
    if (kind, value) != ("punct", "["):
        raise _NotTheSubset
    items: list[Any] = []
    pos = _skip_newlines(tokens, pos + 1)
    while pos < len(tokens) and tokens[pos] != ("punct", "]"):
        item, pos = _value(tokens, pos)
        items.append(item)
        pos = _skip_newlines(tokens, pos)
        if pos < len(tokens) and tokens[pos] == ("punct", ","):
            pos = _skip_newlines(tokens, pos + 1)
        elif pos >= len(tokens) or tokens[pos] != ("punct", "]"):
            raise _NotTheSubset
    if pos >= len(tokens):
        raise _NotTheSubset
    return items, pos + 1


def _parse_table(data: dict[str, object], source: str) -> tuple[Rule, ...]:
    return tuple(_rule(fields) for fields in _checked_table(data, source))


def _checked_table(data: dict[str, object], source: str) -> list[RuleFields]:
    """Each rule of a table, checked, as plain values (what :func:`_rule` makes a Rule of)."""
    raw_rules = data.get("rule", [])
    if not isinstance(raw_rules, list):
        msg = f"{source}: 'rule' must be an array of tables ([[rule]])"
        raise ValueError(msg)
    return [_checked_rule(raw, f"{source}: rule {i}") for i, raw in enumerate(raw_rules)]


def _rule(fields: RuleFields) -> Rule:
    (name, category, where, statuses, replies, phrases, sequences, patterns) = fields[:8]
    (unless, commands, not_commands, actions, providers, fallback, reason) = fields[8:]
    return Rule(
        name=name,
        category=Category(category),
        source=where,
        statuses=statuses,
        replies=replies,
        phrases=phrases,
        sequences=sequences,
        regexes=tuple(cache.regex(pattern, re.IGNORECASE) for pattern in patterns),
        unless=unless,
        commands=commands,
        not_commands=not_commands,
        actions=actions,
        providers=providers,
        fallback=fallback,
        textual=bool(phrases or sequences or patterns),
        reason=reason,
    )


def _checked_rule(raw: object, where: str) -> RuleFields:
    if not isinstance(raw, dict):
        msg = f"{where}: must be a table"
        raise ValueError(msg)
    unknown = set(raw) - _ALLOWED_KEYS
    if unknown:
        msg = f"{where}: unknown key(s) {sorted(unknown)}"
        raise ValueError(msg)
    try:
        category = Category(str(raw.get("category")))
    except ValueError:
        msg = f"{where}: unknown category {raw.get('category')!r}"
        raise ValueError(msg) from None
    statuses = tuple(_status_pattern(p, where) for p in _strings(raw, "status", where))
    replies = tuple(_reply_pattern(p, where) for p in _strings(raw, "reply", where))
    phrases = tuple(p.lower() for p in _strings(raw, "phrases", where))
    unless = tuple(p.lower() for p in _strings(raw, "unless", where))
    sequences = _sequences(raw.get("sequences", []), where)
    patterns = tuple(_regex(p, where).pattern for p in _strings(raw, "regex", where))
    commands = tuple(c.upper() for c in _strings(raw, "commands", where))
    not_commands = tuple(c.upper() for c in _strings(raw, "not_commands", where))
    for cmd in commands + not_commands:
        if cmd not in _COMMANDS:
            msg = f"{where}: unknown command {cmd!r} (expected one of {sorted(_COMMANDS)})"
            raise ValueError(msg)
    fallback = raw.get("fallback", False)
    if not isinstance(fallback, bool):
        msg = f"{where}: 'fallback' must be true or false"
        raise ValueError(msg)
    reason = raw.get("reason", "")
    if not isinstance(reason, str) or ("reason" in raw and not reason.strip()):
        msg = f"{where}: 'reason' must be a non-empty string"
        raise ValueError(msg)
    return (
        str(raw.get("name", "")),
        category.value,
        where,
        statuses,
        replies,
        phrases,
        sequences,
        patterns,
        unless,
        commands,
        not_commands,
        tuple(a.lower() for a in _strings(raw, "actions", where)),
        tuple(p.lower() for p in _strings(raw, "providers", where)),
        fallback,
        reason.strip(),
    )


def _strings(raw: dict[str, object], key: str, where: str) -> list[str]:
    value = raw.get(key, [])
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not all(
        isinstance(v, (str, int)) and not isinstance(v, bool) for v in value
    ):
        msg = f"{where}: {key!r} must be a string or a list of strings"
        raise ValueError(msg)
    out = [str(v) for v in value]
    if any(not v for v in out):
        msg = f"{where}: {key!r} must not contain empty strings"
        raise ValueError(msg)
    return out


def _sequences(value: object, where: str) -> tuple[tuple[str, ...], ...]:
    if not isinstance(value, list) or not all(
        isinstance(seq, list) and seq and all(isinstance(s, str) and s for s in seq)
        for seq in value
    ):
        msg = f"{where}: 'sequences' must be a list of non-empty lists of strings"
        raise ValueError(msg)
    return tuple(tuple(s.lower() for s in seq) for seq in value)


def _status_pattern(pattern: str, where: str) -> tuple[str, str, str]:
    if not _STATUS_PATTERN.match(pattern):
        msg = f"{where}: bad status pattern {pattern!r} (expected like '5.1.1' or '5.7.*')"
        raise ValueError(msg)
    cls, subject, detail = pattern.split(".")
    return cls, subject, detail


def _reply_pattern(pattern: str, where: str) -> str:
    if not _REPLY_PATTERN.match(pattern.lower()):
        msg = f"{where}: bad reply pattern {pattern!r} (expected like 550 or '5xx')"
        raise ValueError(msg)
    return pattern.lower()


def _regex(pattern: str, where: str) -> re.Pattern[str]:
    try:
        return cache.regex(pattern, re.IGNORECASE)
    except re.error as exc:
        msg = f"{where}: bad regex {pattern!r}: {exc}"
        raise ValueError(msg) from exc
