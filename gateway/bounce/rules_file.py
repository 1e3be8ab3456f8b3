"""The rules files: ``rules.toml`` shipped as package data, and an operator's local rules
file evaluated before it, read and validated into :class:`~gateway.bounce.classify.Rules`.

Every error names the file and the rule's index, so a broken local file stops start-up with
a message that says where to look.
"""

from __future__ import annotations

import re
import tomllib
from functools import lru_cache
from pathlib import Path

from gateway.bounce.classify import Rule, Rules
from gateway.core.category import Category

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
_STATUS_PATTERN = re.compile(r"^[245*]\.(?:\d{1,3}|\*)\.(?:\d{1,3}|\*)$")
_REPLY_PATTERN = re.compile(r"^[245x][0-9x][0-9x]$")


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
    return Rules(_parse_table(tomllib.loads(text), "gateway/bounce/rules.toml"))


def _parse_table(data: dict[str, object], source: str) -> tuple[Rule, ...]:
    raw_rules = data.get("rule", [])
    if not isinstance(raw_rules, list):
        msg = f"{source}: 'rule' must be an array of tables ([[rule]])"
        raise ValueError(msg)
    return tuple(_parse_rule(raw, f"{source}: rule {i}") for i, raw in enumerate(raw_rules))


def _parse_rule(raw: object, where: str) -> Rule:
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
    regexes = tuple(_regex(p, where) for p in _strings(raw, "regex", where))
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
    return Rule(
        name=str(raw.get("name", "")),
        category=category,
        source=where,
        statuses=statuses,
        replies=replies,
        phrases=phrases,
        sequences=sequences,
        regexes=regexes,
        unless=unless,
        commands=commands,
        not_commands=not_commands,
        actions=tuple(a.lower() for a in _strings(raw, "actions", where)),
        providers=tuple(p.lower() for p in _strings(raw, "providers", where)),
        fallback=fallback,
        textual=bool(phrases or sequences or regexes),
        reason=reason.strip(),
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
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        msg = f"{where}: bad regex {pattern!r}: {exc}"
        raise ValueError(msg) from exc
