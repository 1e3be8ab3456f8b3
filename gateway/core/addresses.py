"""Pure helpers on e-mail addresses: splitting, and spotting misspelt provider domains.

Owns: :func:`split` and :func:`typo_suggestion`. Does not own: syntax validation
(email-validator, in ``smtp_in``), DNS checks (``dns``), or the refusal reply
(``core.replies.RECIPIENT_TYPO``, used by intake).

Because intake refuses a recipient whose domain looks misspelt, a false positive loses real
mail. :func:`typo_suggestion` is therefore conservative and only ever suggests a domain
from :data:`PROVIDERS`:

1. a domain in :data:`KNOWN_DOMAINS` (real providers, including ones a single edit away
   from a popular one, such as ``ymail.com`` or ``mail.com``) is never a typo;
2. the explicit table :data:`MISSPELLINGS` of misspellings seen in the wild;
3. the same name with its dots misplaced (``gmailcom``, ``uolcom.br``);
4. a misspelt suffix label that is not a real TLD (``.con``, ``.cmo``, ``.b`` for
   ``.br``), or ``.co``/``.cm`` (real TLDs) only after a brand of five letters or more;
5. one edit (insertion, deletion, adjacent transposition, or substitution by a keyboard
   neighbour), not touching the first letter, in a brand label of five letters or more,
   with the suffix unchanged, and only if exactly one provider matches. Short brands
   (``uol``, ``bol``, ``msn``, ``r7``, ``ig``, ``live``) are only corrected by the explicit
   table: one edit away from them lie too many real domains.
"""

from __future__ import annotations

__all__ = ["KNOWN_DOMAINS", "MISSPELLINGS", "PROVIDERS", "split", "typo_suggestion"]

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

#: Misspellings seen in the wild, mapped to what was meant.
MISSPELLINGS: dict[str, str] = {
    # gmail.com
    "gmial.com": "gmail.com",
    "gmal.com": "gmail.com",
    "gmaill.com": "gmail.com",
    "gnail.com": "gmail.com",
    "gamil.com": "gmail.com",
    "gmai.com": "gmail.com",
    "gmil.com": "gmail.com",
    "gmail.com.br": "gmail.com",  # Google has no gmail.com.br mailboxes
    "gmail.co": "gmail.com",
    "gmail.cm": "gmail.com",
    "gmail.con": "gmail.com",
    "gmail.om": "gmail.com",
    "g-mail.com": "gmail.com",
    # hotmail.com
    "hotmal.com": "hotmail.com",
    "hotmial.com": "hotmail.com",
    "hotmail.con": "hotmail.com",
    "hotmai.com": "hotmail.com",
    "hotmil.com": "hotmail.com",
    "hotamil.com": "hotmail.com",
    "homail.com": "hotmail.com",
    "hotmsil.com": "hotmail.com",
    "rotmail.com": "hotmail.com",
    # outlook.com
    "outlok.com": "outlook.com",
    "outloo.com": "outlook.com",
    "outllok.com": "outlook.com",
    "outlook.con": "outlook.com",
    # yahoo
    "yaho.com": "yahoo.com",
    "yahho.com": "yahoo.com",
    "yaho.com.br": "yahoo.com.br",
    "yahoo.com.b": "yahoo.com.br",
    "yahoo.con.br": "yahoo.com.br",
    "yhaoo.com.br": "yahoo.com.br",
    # icloud
    "icloud.con": "icloud.com",
    "iclod.com": "icloud.com",
    "icoud.com": "icloud.com",
    # Brazilian providers, often written without ``.br``
    "uol.com": "uol.com.br",
    "uol.com.b": "uol.com.br",
    "uol.con.br": "uol.com.br",
    "bol.com": "bol.com.br",
    "bol.com.b": "bol.com.br",
    "bol.con.br": "bol.com.br",
    "terra.com": "terra.com.br",
    "terra.con.br": "terra.com.br",
    "ig.com": "ig.com.br",
    "ig.con.br": "ig.com.br",
    "globo.con": "globo.com",
    "live.con": "live.com",
    "msn.con": "msn.com",
}

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
    """Suggest the provider domain a misspelt one was meant to be.

    Args:
        domain: the domain of a recipient address (any case, trailing dot allowed).

    Returns:
        A domain from :data:`PROVIDERS`, or ``None`` when ``domain`` is not clearly a
        misspelling of one.
    """
    name = domain.strip().rstrip(".").lower()
    if not name or name in KNOWN_DOMAINS:
        return None
    if name in MISSPELLINGS:
        return MISSPELLINGS[name]
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
