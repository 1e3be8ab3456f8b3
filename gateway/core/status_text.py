"""Plain words for support staff: what a recipient's status means and what to do.

Owns: the :class:`Guidance` for every recipient status, category and reason, in Brazilian
Portuguese (the default) and English, and the fold of categories into the four words
support already uses (docs/architecture.md, "Categories"). Does not own: the statuses
themselves (``core.model``), the remote server's own text (kept on the event, shown
beside this guidance), or page layout (``admin``).

The texts are data, in ``status_texts.toml`` beside this module. Lookup is by
``"<status>:<detail>"`` first and ``"<status>"`` second, where the detail is
the intake reason for ``rejected``, the suppression reason for ``suppressed``, the
category for ``bounced`` and ``sent``, and the folded category for ``deferred`` and
``expired``. Every status has a generic entry, so any combination has guidance.

A refusal that named a suggested address (a known typo domain, or a near miss of a popular
domain that has no MX or refuses mail) has its own texts naming that address, in both
languages, for support and in the customer message. The address comes from the refusal's
recorded data, never from the words of the reply.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Any

from gateway.core.model import Category, Status

__all__ = [
    "DEFAULT_LANG",
    "FOLDED_LABELS",
    "LANGS",
    "Guidance",
    "folded_category",
    "folded_label",
    "guidance",
    "parse_texts",
    "text_keys",
]

DEFAULT_LANG = "pt-BR"
LANGS = ("pt-BR", "en")


@dataclass(frozen=True, slots=True)
class Guidance:
    """What support reads and sends.

    Args:
        title: the status in a few plain words.
        what_to_do: what happened and what support should do, for support staff.
        customer_message: a ready-to-send message for the person the e-mail was for.
    """

    title: str
    what_to_do: str
    customer_message: str


_Texts = Mapping[str, Mapping[str, Guidance]]  # language -> key -> guidance

_FOLD: dict[Category, str] = {
    Category.NONEXISTENT_ADDRESS: "nonexistent_address",
    Category.MAILBOX_DISABLED: "nonexistent_address",
    Category.MAILBOX_FULL: "mailbox_full",
    Category.SPAM_BLOCKED: "spam_blocked",
    Category.SENDER_CONFIG: "spam_blocked",
    Category.COMPLAINT: "spam_blocked",
    Category.RECEIVING_PROBLEM: "receiving_problem",
    Category.MESSAGE_TOO_LARGE: "receiving_problem",
}

#: The four support words, in each language.
FOLDED_LABELS: dict[str, dict[str, str]] = {
    "nonexistent_address": {"pt-BR": "endereço inexistente", "en": "nonexistent address"},
    "mailbox_full": {"pt-BR": "caixa cheia", "en": "mailbox full"},
    "spam_blocked": {"pt-BR": "spam/bloqueio", "en": "spam/blocked"},
    "receiving_problem": {"pt-BR": "problema no recebimento", "en": "receiving problem"},
}


def folded_category(category: Category | None) -> str:
    """Fold a category into one of the four support words.

    ``nonexistent_address`` and ``mailbox_disabled`` → ``"nonexistent_address"``;
    ``mailbox_full`` → ``"mailbox_full"``; ``spam_blocked``, ``sender_config`` and
    ``complaint`` (the recipient blocked us) → ``"spam_blocked"``; ``receiving_problem`` and
    ``message_too_large`` → ``"receiving_problem"``.

    Args:
        category: a category, or ``None``.

    Returns:
        A key of :data:`FOLDED_LABELS`, or ``""`` for what is not a failure (``delivered``,
        ``auto_reply``, ``None``).
    """
    if category is None:
        return ""
    return _FOLD.get(category, "")


def folded_label(category: Category | None, lang: str = DEFAULT_LANG) -> str:
    """The support word for a category in a language (``""`` when not a failure).

    Args:
        category: a category, or ``None``.
        lang: ``"pt-BR"`` or ``"en"``; others fall back as in :func:`guidance`.
    """
    word = folded_category(category)
    return FOLDED_LABELS[word][_lang(lang)] if word else ""


def _lang(lang: str) -> str:
    tag = lang.strip().replace("_", "-").lower()
    if tag == "en" or tag.startswith("en-"):
        return "en"
    return DEFAULT_LANG


TEXTS_FILE = "status_texts.toml"
_FIELDS = ("title", "what_to_do", "customer_message")


def parse_texts(data: Mapping[str, Any]) -> tuple[_Texts, _Texts]:
    """The generic and the suggested-address texts of a parsed ``status_texts.toml``.

    Raises:
        ValueError: a table or field is missing, unknown or not text; the languages do not
            have the same keys; a status has no generic entry; or a suggested-address
            text does not name ``{suggestion}``.
    """
    if set(data) != {"texts", "suggested"}:
        msg = f"expected the tables [texts] and [suggested], found {sorted(data)}"
        raise ValueError(msg)
    parsed: list[_Texts] = []
    for table in ("texts", "suggested"):
        langs = data[table]
        if not isinstance(langs, dict) or set(langs) != set(LANGS):
            msg = f"[{table}] must have exactly the languages {list(LANGS)}"
            raise ValueError(msg)
        by_lang: dict[str, dict[str, Guidance]] = {}
        for lang in LANGS:
            entries: dict[str, Guidance] = {}
            for key, entry in langs[lang].items():
                where = f'[{table}."{lang}"."{key}"]'
                if not isinstance(entry, dict) or set(entry) != set(_FIELDS):
                    msg = f"{where} must have exactly the fields {', '.join(_FIELDS)}"
                    raise ValueError(msg)
                if not all(isinstance(entry[f], str) and entry[f].strip() for f in _FIELDS):
                    msg = f"{where}: every field must be non-empty text"
                    raise ValueError(msg)
                if table == "suggested" and "{suggestion}" not in entry["what_to_do"]:
                    msg = f"{where}: what_to_do must name {{suggestion}}"
                    raise ValueError(msg)
                entries[key] = Guidance(*(entry[f] for f in _FIELDS))
            by_lang[lang] = entries
        keys = {lang: set(entries) for lang, entries in by_lang.items()}
        if len({frozenset(k) for k in keys.values()}) != 1:
            msg = f"[{table}]: the languages do not have the same keys"
            raise ValueError(msg)
        parsed.append(MappingProxyType(by_lang))
    texts, suggested = parsed
    missing = [s.value for s in Status if s.value not in texts[DEFAULT_LANG]]
    if missing:
        msg = f"[texts]: no generic entry for the statuses {missing}"
        raise ValueError(msg)
    return texts, suggested


@functools.cache
def _shipped() -> tuple[_Texts, _Texts]:
    """The texts shipped with the gateway (read once, then remembered).

    Raises:
        ValueError: the shipped file is broken (a packaging error; a unit test reads it).
    """
    text = resources.files("gateway.core").joinpath(TEXTS_FILE).read_text(encoding="utf-8")
    try:
        return parse_texts(tomllib.loads(text))
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        msg = f"gateway/core/{TEXTS_FILE}: {exc}"
        raise ValueError(msg) from None


def _detail(status: Status, category: Category | None, reason: str | None) -> str:
    if status in (Status.REJECTED, Status.SUPPRESSED):
        return (reason or "").strip().lower()
    if status in (Status.BOUNCED, Status.SENT):
        return category.value if category is not None else ""
    if status in (Status.DEFERRED, Status.EXPIRED):
        return folded_category(category)
    return ""


def text_keys(
    status: Status, category: Category | None = None, reason: str | None = None
) -> tuple[str, ...]:
    """The keys :func:`guidance` looks a status up by, most specific first (a tenant's own
    customer messages, ``core.tenant_texts``, use the same keys)."""
    detail = _detail(status, category, reason)
    return (f"{status.value}:{detail}", status.value) if detail else (status.value,)


def guidance(
    status: Status,
    category: Category | None = None,
    reason: str | None = None,
    lang: str = DEFAULT_LANG,
    suggestion: str | None = None,
) -> Guidance:
    """The plain-words guidance for a recipient's status.

    Args:
        status: the recipient's status.
        category: the category of its last outcome, if any (``bounced``, ``sent``,
            ``deferred``, ``expired``).
        reason: the intake reason for ``rejected`` (``invalid``, ``typo``,
            ``no_such_domain``, ``null_mx``, ``suppressed``, ``quota``, ...) or the
            suppression reason for ``suppressed``; unknown reasons get the generic text.
        lang: ``"pt-BR"`` (default) or ``"en"``; ``"en-US"``-style tags map to ``"en"``
            and anything else to ``"pt-BR"``.
        suggestion: the address a refusal suggested (``typo``, ``no_such_domain`` and
            ``null_mx`` of a near miss), named in the texts; ignored elsewhere.

    Returns:
        The guidance; never raises for any status, category and reason.
    """
    all_texts, all_suggested = _shipped()
    texts = all_texts[_lang(lang)]
    detail = _detail(status, category, reason)
    if detail:
        key = f"{status.value}:{detail}"
        suggested = all_suggested[_lang(lang)].get(key) if suggestion else None
        if suggested is not None:
            suggestion = " ".join(str(suggestion).split())  # one line, whatever was stored
            return Guidance(
                suggested.title,
                suggested.what_to_do.format(suggestion=suggestion),
                suggested.customer_message.format(suggestion=suggestion),
            )
        found = texts.get(key)
        if found is not None:
            return found
    return texts[status.value]
