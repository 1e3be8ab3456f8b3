"""The answer for an address the gateway has no record of (issue 16 item 1).

Owns: reading ``no_record.toml`` (what support tells, and the list of what to check in the
application, per language) and checking its shape. Does not own: deciding that there is no
record (``admin.views``), the tenant's activity or the address check shown beside it
(``admin.no_record``).

"No record" means the application never handed a message for the address to the gateway
(or none the gateway still keeps): the cause is before sending, in the application.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from importlib import resources

from gateway.core.status_text import DEFAULT_LANG, LANGS

STATUS = "no_record"


@dataclass(frozen=True, slots=True)
class Check:
    """One thing to verify in the application.

    Args:
        key: a stable name (``address_on_file``, ``consent``, ``selection_rule``,
            ``sending_routine``, ``customer_status``, ``sender_test``).
        title: a few words.
        detail: what to look at, in a sentence or two.
    """

    key: str
    title: str
    detail: str


@dataclass(frozen=True, slots=True)
class NoRecordText:
    title: str
    what_to_do: str
    customer_message: str
    checks: tuple[Check, ...]


def parse(data: dict[str, object]) -> dict[str, NoRecordText]:
    """The texts of a parsed ``no_record.toml``, per language.

    Raises:
        ValueError: a language or field is missing or not text, or the languages do not
            list the same checks in the same order.
    """
    table = data.get("no_record")
    if not isinstance(table, dict) or set(table) != set(LANGS):
        msg = f"[no_record] must have exactly the languages {list(LANGS)}"
        raise ValueError(msg)
    out: dict[str, NoRecordText] = {}
    for lang in LANGS:
        entry = table[lang]
        fields = [entry.get(f) for f in ("title", "what_to_do", "customer_message")]
        if not all(isinstance(f, str) and f.strip() for f in fields):
            msg = f"[no_record.{lang}]: title, what_to_do and customer_message must be text"
            raise ValueError(msg)
        checks = []
        for item in entry.get("checks", []):
            if not all(
                isinstance(item.get(k), str) and item[k] for k in ("key", "title", "detail")
            ):
                msg = f"[no_record.{lang}.checks]: each check needs key, title and detail"
                raise ValueError(msg)
            checks.append(Check(item["key"], item["title"], item["detail"]))
        title, what_to_do, message = (str(f) for f in fields)
        out[lang] = NoRecordText(title, what_to_do, message, tuple(checks))
    orders = {tuple(c.key for c in t.checks) for t in out.values()}
    if len(orders) != 1 or not next(iter(orders)):
        msg = "[no_record]: the languages must list the same checks, in the same order"
        raise ValueError(msg)
    return out


@functools.cache
def _shipped() -> dict[str, NoRecordText]:
    text = resources.files("gateway.core").joinpath("no_record.toml").read_text("utf-8")
    return parse(tomllib.loads(text))


def no_record_text(lang: str) -> NoRecordText:
    """The shipped texts for ``lang`` (``"en"``, else pt-BR)."""
    texts = _shipped()
    return texts.get(lang, texts[DEFAULT_LANG])
