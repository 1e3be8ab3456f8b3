"""A tenant's own details in the customer messages: a small, safe placeholder syntax.

Owns: the keys a tenant may store per language (issue 16 item 3), checking them when they
are saved, and filling a customer message with them. Does not own: the shipped texts
(``core.status_text``), storing the keys (``store.support_queries``) or the API
(``admin.customer_texts``).

The keys, per tenant and language:

- ``company_name``, ``support_channel``: plain text, one line.
- ``sender_addresses``: the addresses the customer should add to their contacts, comma
  separated.
- ``signature``: a template appended to every customer message. Without one, a tenant that
  set any detail gets the shipped signature of its language (``tenant_texts.toml``); an
  empty one means none.
- ``message.<key>``: a template that replaces the shipped customer message of a status key
  (``sent``, ``bounced:mailbox_full``, ``rejected:typo``, ``no_record``, … the keys of
  ``status_texts.toml``): the most specific key the tenant set wins.

A template is text with placeholders ``{company}``, ``{support}``, ``{sender}``,
``{address}`` (the address on file) and ``{suggestion}`` (the corrected address a typo
check suggested). That is all: no expressions, no loops, no attribute access, no escapes.
Any other ``{`` or ``}`` is refused when the template is saved, naming where. When a
message is made, a line that names a placeholder without a value (no suggestion, no sender
set) is left out, so a template never shows a hole; a template left empty by that falls
back to the shipped message. Values are put in on one line each (CR/LF collapsed).
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources

PLACEHOLDERS = ("company", "support", "sender", "address", "suggestion")
DETAILS = ("company_name", "support_channel", "sender_addresses", "signature")
MESSAGE = "message."
#: A message key: a recipient status (or ``no_record``), optionally ``:<detail>``.
MESSAGE_KEY = re.compile(r"^[a-z_]{2,32}(?::[a-z0-9_]{1,48})?$")
MAX_TEMPLATE = 2000
MAX_DETAIL = 300
MAX_KEYS = 64
_TOKEN = re.compile(r"\{([a-z_]*)\}")


class TemplateError(ValueError):
    """A tenant text that cannot be saved: the sentence names the key and what is wrong."""


def check_template(key: str, text: str) -> None:
    """Refuse a template that is too long or whose braces are not a known placeholder.

    Raises:
        TemplateError: naming ``key`` and the first problem.
    """
    if len(text) > MAX_TEMPLATE:
        raise TemplateError(f"{key} is longer than {MAX_TEMPLATE} characters")
    if any(c in text for c in "\x00\r") or not all(c.isprintable() or c == "\n" for c in text):
        raise TemplateError(f"{key} holds a control character (only line breaks are allowed)")
    rest = 0
    for found in _TOKEN.finditer(text):
        _stray(key, text, rest, found.start())
        if found.group(1) not in PLACEHOLDERS:
            names = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            raise TemplateError(
                f"{key}: unknown placeholder {found.group(0)} at character {found.start() + 1}"
                f" (known: {names})"
            )
        rest = found.end()
    _stray(key, text, rest, len(text))


def _stray(key: str, text: str, start: int, end: int) -> None:
    for i in range(start, end):
        if text[i] in "{}":
            raise TemplateError(
                f"{key}: a lone {text[i]!r} at character {i + 1}; placeholders are written"
                " {company}, {support}, {sender}, {address}, {suggestion}"
            )


def check_texts(values: Mapping[str, str]) -> dict[str, str]:
    """The keys to store for one language, checked (``detail`` values trimmed).

    Raises:
        TemplateError: an unknown key, a detail that is not one line, a template that does
            not parse, or too many keys.
    """
    if len(values) > MAX_KEYS:
        raise TemplateError(f"at most {MAX_KEYS} texts per language")
    out: dict[str, str] = {}
    for key, value in values.items():
        if key in ("company_name", "support_channel", "sender_addresses"):
            one = value.strip()
            if len(one) > MAX_DETAIL or not one.isprintable():
                raise TemplateError(
                    f"{key} must be one line of printable text, at most {MAX_DETAIL} characters"
                )
            if "{" in one or "}" in one:
                raise TemplateError(f"{key} must not hold braces (it is a value, not a template)")
            out[key] = one
        elif key == "signature" or (
            key.startswith(MESSAGE) and MESSAGE_KEY.match(key[len(MESSAGE) :])
        ):
            check_template(key, value)
            out[key] = value.strip()
        elif key.startswith(MESSAGE):
            raise TemplateError(
                f"messages: {key[len(MESSAGE) :]!r} is not a status key such as sent,"
                " bounced:mailbox_full, rejected:typo or no_record"
            )
        else:
            raise TemplateError(
                f"unknown text {key!r}: expected one of {', '.join(DETAILS)} or"
                " message.<status>[:<detail>]"
            )
    return out


def fill(template: str, values: Mapping[str, str]) -> str:
    """``template`` with its placeholders filled; a line naming one without a value is left
    out (see the module docstring)."""
    kept = []
    for line in template.split("\n"):
        names = _TOKEN.findall(line)
        if any(not values.get(n) for n in names):
            continue
        kept.append(_TOKEN.sub(lambda m: " ".join(values[m.group(1)].split()), line))
    return "\n".join(kept).strip()


@dataclass(frozen=True, slots=True)
class TenantWords:
    """One tenant's texts in one language (what ``check_texts`` stored)."""

    texts: Mapping[str, str] = field(default_factory=dict)

    @property
    def values(self) -> dict[str, str]:
        t = self.texts
        senders = [s.strip() for s in t.get("sender_addresses", "").split(",") if s.strip()]
        return {
            "company": t.get("company_name", ""),
            "support": t.get("support_channel", ""),
            "sender": ", ".join(senders),
        }


@functools.cache
def shipped_signatures() -> Mapping[str, str]:
    """The shipped signature of each language (``tenant_texts.toml``)."""
    text = resources.files("gateway.core").joinpath("tenant_texts.toml").read_text("utf-8")
    data = tomllib.loads(text)["signature"]
    for lang, template in data.items():
        check_template(f"signature ({lang})", template)
    return dict(data)


def customer_message(
    shipped: str,
    keys: tuple[str, ...],
    lang: str,
    words: TenantWords | None,
    *,
    address: str = "",
    suggestion: str | None = None,
) -> str:
    """The customer message for a status, with the tenant's details.

    Args:
        shipped: the shipped message (``core.status_text``), used when the tenant has no
            template of its own for ``keys``.
        keys: the status keys, most specific first (``status_text.text_keys``).
        lang: ``"pt-BR"`` or ``"en"``.
        words: the tenant's texts in ``lang``; ``None`` or empty: ``shipped`` unchanged.
        address: the address on file.
        suggestion: the corrected address a typo check suggested.
    """
    if words is None or not words.texts:
        return shipped
    values = words.values | {"address": address, "suggestion": suggestion or ""}
    body = shipped
    for key in keys:
        own = words.texts.get(MESSAGE + key)
        if own is not None:
            body = fill(own, values) or shipped
            break
    signature = words.texts.get("signature")
    if signature is None:
        has_detail = any(words.texts.get(k) for k in DETAILS if k != "signature")
        signature = shipped_signatures().get(lang, "") if has_detail else ""
    tail = fill(signature, values)
    return f"{body}\n\n{tail}" if tail else body
