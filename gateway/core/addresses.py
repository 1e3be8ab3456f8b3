"""Pure helpers on e-mail addresses: splitting, and spotting misspelt provider domains.

Owns: :func:`split`, :func:`wire_form` and :func:`as_given` (a recipient as relayed); the
curated list of known typo domains (data, shipped as ``typo_domains.toml`` beside this
module, loaded once) and its validation; and :func:`typo_suggestion`, the near-miss finder.
Does not own: syntax validation (email-validator, in ``checks``), DNS checks (``dns``), what
intake does with a typo (the checklist in ``checks``: refuse a listed domain, warn about a
near miss) or the replies (``core.replies``).

Two tiers, because refusing a working domain loses real mail:

- **Known typo domains** (:func:`shipped_typo_domains`, extended or overridden by
  ``smtp.typo_domains`` through :func:`typo_table`): look-alikes that host no real users
  (``gmial.com``, ``gmail.com.br``, ``hotmail.con``). Only these are refused.
- **Near misses** (:func:`typo_suggestion`): anything that merely looks like a popular
  domain — ``bol.com``, ``terra.com``, ``uol.com`` and ``ig.com`` are real domains of other
  companies. They are accepted with a warning naming the suggestion.

:func:`typo_suggestion` only ever suggests a domain from :data:`PROVIDERS`:

1. a domain in :data:`KNOWN_DOMAINS` (real providers, including ones a single edit away
   from a popular one, such as ``ymail.com`` or ``mail.com``) is never a typo;
2. the shipped list of known typo domains;
3. a Brazilian provider without its ``.br`` (``uol.com`` for ``uol.com.br``);
4. the same name with its dots misplaced (``gmailcom``, ``uolcom.br``);
5. a misspelt suffix label that is not a real TLD (``.con``, ``.cmo``, ``.b`` for
   ``.br``), or ``.co``/``.cm`` (real TLDs) only after a brand of five letters or more;
6. one edit (insertion, deletion, adjacent transposition, or substitution by a keyboard
   neighbour), not touching the first letter, in a brand label of five letters or more,
   with the suffix unchanged, and only if exactly one provider matches. Short brands
   (``uol``, ``bol``, ``msn``, ``r7``, ``ig``, ``live``) are only corrected by rules 2-5:
   one edit away from them lie too many real domains.
"""

from __future__ import annotations

import functools
import re
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping
from importlib import resources
from types import MappingProxyType

__all__ = [
    "KNOWN_DOMAINS",
    "PROVIDERS",
    "as_given",
    "parse_typo_domains",
    "shipped_typo_domains",
    "split",
    "typo_suggestion",
    "typo_table",
    "wire_form",
]

#: Popular mailbox providers that :func:`typo_suggestion` may suggest.
PROVIDERS: frozenset[str] = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "hotmail.com",
        "hotmail.com.br",
        "outlook.com",
        "outlook.com.br",
        "live.com",
        "msn.com",
        "yahoo.com",
        "yahoo.com.br",
        "icloud.com",
        "uol.com.br",
        "bol.com.br",
        "terra.com.br",
        "ig.com.br",
        "globo.com",
        "globomail.com",
        "r7.com",
        "oi.com.br",
        "zipmail.com.br",
        "aol.com",
        "protonmail.com",
    }
)

#: Real domains that are never flagged, though one edit away from a provider.
KNOWN_DOMAINS: frozenset[str] = PROVIDERS | frozenset(
    {
        "ymail.com",  # Yahoo
        "rocketmail.com",  # Yahoo
        "mail.com",
        "email.com",
        "gmx.com",
        "gmx.net",
        "me.com",  # Apple
        "mac.com",  # Apple
        "cloud.com",
        "globe.com",
        "live.com.br",
        "hotmail.es",
        "hotmail.fr",
        "hotmail.it",
        "hotmail.co.uk",
        "outlook.pt",
        "yahoo.com.ar",
        "yahoo.com.mx",
        "yahoo.co.uk",
        "yahoo.co.jp",
        "yahoo.fr",
        "yahoo.es",
        "proton.me",
        "zoho.com",
        "yandex.com",
    }
)

TYPO_DOMAINS_FILE = "typo_domains.toml"
"""The shipped list of known typo domains, a file of this package (``gateway.core``)."""

# An LDH host name (RFC 1035 §2.3.1, RFC 1123 §2.1) of two labels or more, lower case.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"(?=.{{1,253}}\Z)(?:{_LABEL}\.)+{_LABEL}\Z")


def _domain_name(raw: object) -> str | None:
    """``raw`` as a lower-case domain without a trailing dot, or ``None`` if it is not one."""
    if not isinstance(raw, str):
        return None
    name = raw.strip().rstrip(".").lower()
    return name if _DOMAIN.match(name) else None


def parse_typo_domains(raw: object, *, allow_removal: bool) -> tuple[tuple[str, str], ...]:
    """Validate a table of known typo domains: ``{"typo domain": "the domain meant"}``.

    Args:
        raw: the parsed TOML table.
        allow_removal: whether an empty correction is allowed; it removes the domain from
            the shipped list (``smtp.typo_domains`` only).

    Returns:
        ``(typo, correction)`` pairs, lower-cased, in the table's order; the correction is
        ``""`` for a removal.

    Raises:
        ValueError: naming the first entry at fault.
    """
    if not isinstance(raw, dict):
        msg = f'expected a table of "typo domain" = "domain meant", got {raw!r}'
        raise ValueError(msg)
    pairs: list[tuple[str, str]] = []
    for key, value in raw.items():
        typo = _domain_name(key)
        if typo is None:
            msg = f"{key!r} is not a domain name (ASCII letters, digits, hyphens; two labels+)"
            raise ValueError(msg)
        if typo in KNOWN_DOMAINS:
            msg = f"{key!r} is a real mailbox provider, never a typo"
            raise ValueError(msg)
        if allow_removal and value == "":
            pairs.append((typo, ""))
            continue
        meant = _domain_name(value)
        if meant is None:
            hint = ' (or "" to remove a shipped entry)' if allow_removal else ""
            msg = f"{key!r}: the correction {value!r} is not a domain name{hint}"
            raise ValueError(msg)
        if meant == typo:
            msg = f"{key!r} cannot be its own correction"
            raise ValueError(msg)
        pairs.append((typo, meant))
    return tuple(pairs)


@functools.cache
def shipped_typo_domains() -> Mapping[str, str]:
    """The known typo domains shipped with the gateway (read once, then remembered).

    Raises:
        ValueError: the shipped file is broken (a packaging error; a unit test reads it).
    """
    text = resources.files("gateway.core").joinpath(TYPO_DOMAINS_FILE).read_text(encoding="utf-8")
    try:
        pairs = parse_typo_domains(tomllib.loads(text), allow_removal=False)
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        msg = f"gateway/core/{TYPO_DOMAINS_FILE}: {exc}"
        raise ValueError(msg) from None
    return MappingProxyType(dict(pairs))


def typo_table(overrides: Iterable[tuple[str, str]] = ()) -> Mapping[str, str]:
    """The known typo domains in force: the shipped list with ``overrides`` applied.

    Args:
        overrides: ``smtp.typo_domains`` pairs (see :func:`parse_typo_domains`): a new
            domain is added, a shipped one gets the new correction, and an empty
            correction removes it.

    Returns:
        typo domain -> the domain meant.
    """
    table = dict(shipped_typo_domains())
    for typo, meant in overrides:
        if meant:
            table[typo] = meant
        else:
            table.pop(typo, None)
    return MappingProxyType(table)


# Misspelt suffix labels that are not real TLDs, each with what was meant.
_SUFFIX_TYPOS: dict[str, str] = {
    "con": "com",
    "cmo": "com",
    "ocm": "com",
    "comm": "com",
    "coom": "com",
    "cpm": "com",
    "vom": "com",
    "xom": "com",
    "cim": "com",
    "c0m": "com",
    "comr": "com",
    "b": "br",
    "rb": "br",
    "brr": "br",
}
# Misspelt suffix labels that ARE real TLDs (Colombia, Cameroon): only after a long brand.
_REAL_TLD_TYPOS: dict[str, str] = {"co": "com", "cm": "com"}
_MIN_FUZZY_BRAND = 5

_KEYBOARD_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm")


def _neighbours() -> dict[str, frozenset[str]]:
    """Adjacent keys on a QWERTY keyboard, whose rows are staggered half a key right."""
    out: dict[str, frozenset[str]] = {}
    for r, row in enumerate(_KEYBOARD_ROWS):
        for i, c in enumerate(row):
            near = {row[j] for j in (i - 1, i + 1) if 0 <= j < len(row)}
            if r > 0:  # the row above: same index and one to the right
                above = _KEYBOARD_ROWS[r - 1]
                near |= {above[j] for j in (i, i + 1) if j < len(above)}
            if r + 1 < len(_KEYBOARD_ROWS):  # the row below: one to the left and same index
                below = _KEYBOARD_ROWS[r + 1]
                near |= {below[j] for j in (i - 1, i) if 0 <= j < len(below)}
            out[c] = frozenset(near)
    return out


_NEAR = _neighbours()


def split(address: str) -> tuple[str, str]:
    """Split an address at its last ``@``.

    The local part is returned as is: it is case-sensitive (RFC 5321 §2.4) and may itself
    contain a quoted ``@`` (RFC 5321 §4.1.2). The domain is lower-cased and loses a
    trailing dot, since domains compare case-insensitively (RFC 5321 §2.4).

    Args:
        address: an address without angle brackets.

    Returns:
        ``(local, domain)``.

    Raises:
        ValueError: if there is no ``@``, or either side is empty.
    """
    local, at, domain = address.rpartition("@")
    domain = domain.rstrip(".").lower()
    if not at or not local or not domain:
        msg = f"not an address: {address!r}"
        raise ValueError(msg)
    return local, domain


def wire_form(given: str, canonical: str) -> str:
    """A recipient as the relay sends it: the local part as the client gave it at ``RCPT``
    (case-sensitive on the wire, RFC 5321 §2.4), the domain of ``canonical`` (the look-up
    key, lower-cased, as routed); "" when that is ``canonical`` itself."""
    wire = f"{given.rpartition('@')[0]}@{canonical.rpartition('@')[2]}"
    return "" if wire == canonical else wire


def as_given(canonical: str, given: Iterable[str]) -> str:
    """``wire_form`` of the first of ``given`` (the addresses as a client sent them at
    ``RCPT``, in any order) that names ``canonical``: the same local part but for case (NFC),
    the same domain but for case and a trailing dot. "" when none does (then the canonical
    form is sent, as for an internationalised domain given in U-labels)."""
    local, _, domain = canonical.rpartition("@")
    for address in given:
        g_local, _, g_domain = address.rpartition("@")
        if g_domain.rstrip(".").lower() == domain and _fold(g_local) == local:
            return wire_form(address, canonical)
    return ""


def _fold(local: str) -> str:
    return unicodedata.normalize("NFC", local).lower()


def _one_edit(typed: str, meant: str) -> bool:
    """Whether ``typed`` is one conservative edit away from ``meant``.

    The first letter must match: changing it mostly yields another real name (``email``,
    ``ymail``, ``mail``, ``cloud``, ``lobo``) rather than a slip of the finger.
    """
    if typed == meant or not typed or typed[0] != meant[0]:
        return False
    lt, lm = len(typed), len(meant)
    if lt == lm:
        diff = [i for i in range(lt) if typed[i] != meant[i]]
        if len(diff) == 1:
            i = diff[0]
            return typed[i] in _NEAR.get(meant[i], frozenset())
        if len(diff) == 2:
            i, j = diff
            return j == i + 1 and typed[i] == meant[j] and typed[j] == meant[i]
        return False
    if abs(lt - lm) != 1:
        return False
    short, long_ = (typed, meant) if lt < lm else (meant, typed)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def _fix_suffix(labels: list[str]) -> list[str] | None:
    """The labels with misspelt suffix labels corrected, or ``None`` if nothing changed."""
    brand, suffix = labels[0], labels[1:]
    fixed = []
    for label in suffix:
        if label in _SUFFIX_TYPOS:
            fixed.append(_SUFFIX_TYPOS[label])
        elif label in _REAL_TLD_TYPOS and len(brand) >= _MIN_FUZZY_BRAND:
            fixed.append(_REAL_TLD_TYPOS[label])
        else:
            fixed.append(label)
    return [brand, *fixed] if fixed != suffix else None


def _fuzzy(domain: str) -> str | None:
    brand, _, suffix = domain.partition(".")
    matches = {
        provider
        for provider in PROVIDERS
        if provider.partition(".")[2] == suffix
        and len(provider.partition(".")[0]) >= _MIN_FUZZY_BRAND
        and _one_edit(brand, provider.partition(".")[0])
    }
    return matches.pop() if len(matches) == 1 else None


def typo_suggestion(domain: str) -> str | None:
    """Suggest the provider domain a misspelt one was meant to be (see the module docstring).

    A suggestion is a hint, not a verdict: intake refuses only the known typo domains of
    :func:`typo_table` and accepts any other suggested domain with a warning.

    Args:
        domain: the domain of a recipient address (any case, trailing dot allowed).

    Returns:
        A domain from :data:`PROVIDERS`, or ``None`` when ``domain`` is not clearly a
        misspelling of one.
    """
    name = domain.strip().rstrip(".").lower()
    if not name or name in KNOWN_DOMAINS:
        return None
    known = shipped_typo_domains().get(name)
    if known is not None:
        return known
    if f"{name}.br" in PROVIDERS:  # a Brazilian provider written without ``.br``
        return f"{name}.br"
    squashed = name.replace(".", "")
    for provider in PROVIDERS:
        if provider.replace(".", "") == squashed:
            return provider
    labels = name.split(".")
    if len(labels) < 2 or not all(labels):
        return None
    fixed = _fix_suffix(labels)
    if fixed is not None:
        candidate = ".".join(fixed)
        if candidate in PROVIDERS:
            return candidate
        # One more conservative edit in the brand after the suffix fix: ``gmial.con``.
        fuzzy = _fuzzy(candidate)
        if fuzzy is not None:
            return fuzzy
        return None
    return _fuzzy(name)
