"""Routing decisions for outbound mail: MX order, provider families and site names.

Owns: turning a resolved ``MxAnswer`` into the ordered list of hosts to try (RFC 5321
§5.1), naming the mailbox provider behind an MX host (for per-provider rate limits and
reports), and the canonical *site* name that keys per-destination concurrency.

Does not own: DNS lookups (``gateway.services.dns``), connecting (``gateway.relay.client``), or
what to do with a null MX (the caller bounces; ``order_mx`` returns no hosts for it).
Pure: stdlib only, no I/O.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from itertools import groupby

from gateway.core.ports import MxAnswer

OTHER = "other"

# Suffix -> provider, first match wins. A suffix matches the whole name or a label
# boundary ("google.com" matches "aspmx.l.google.com", not "notgoogle.com").
_PROVIDER_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("google.com", "gmail"),
    ("googlemail.com", "gmail"),
    ("gmail.com", "gmail"),
    ("protection.outlook.com", "outlook"),
    ("outlook.com", "outlook"),
    ("hotmail.com", "outlook"),
    ("live.com", "outlook"),
    ("msn.com", "outlook"),
    ("yahoodns.net", "yahoo"),
    ("yahoo.com", "yahoo"),
    ("uol.com.br", "uol"),
    ("bol.com.br", "uol"),
    ("terra.com.br", "terra"),
)


def order_mx(answer: MxAnswer, rng: random.Random | None = None) -> list[str]:
    """The hosts to try, in order.

    RFC 5321 §5.1: lower preference first; hosts of equal preference are tried in a
    random order to spread the load. A null MX (RFC 7505) yields no hosts. An implicit
    MX (no MX records, the domain's own address records) yields the domain itself.
    Duplicate host names keep only their best (first) position.

    Args:
        answer: the resolved MX set.
        rng: the source of randomness for ties; tests pass a seeded ``random.Random``.
    """
    if answer.null:
        return []
    rng = rng or random.Random()  # noqa: S311 - load spreading, not security
    ordered: list[str] = []
    seen: set[str] = set()
    by_pref = sorted(answer.hosts, key=lambda mx: mx.preference)
    for _, group in groupby(by_pref, key=lambda mx: mx.preference):
        names = [_normalise(mx.host) for mx in group]
        rng.shuffle(names)
        for name in names:
            # A null-MX target "." mixed with real hosts is unusable (RFC 7505 §4.3).
            if name and name not in seen:
                seen.add(name)
                ordered.append(name)
    return ordered


def provider_of(mx_host: str) -> str:
    """The mailbox provider family that runs ``mx_host``.

    Returns one of ``"gmail"``, ``"outlook"``, ``"yahoo"``, ``"uol"``, ``"terra"`` or
    ``"other"``.

    Args:
        mx_host: an MX host name, in any case, with or without the final dot.
    """
    name = _normalise(mx_host)
    for suffix, provider in _PROVIDER_SUFFIXES:
        if name == suffix or name.endswith("." + suffix):
            return provider
    # Microsoft's consumer MX hosts are named after the brand, e.g. "mx1.hotmail.com.br".
    if "hotmail" in name.split("."):
        return "outlook"
    return OTHER


def site_of(hosts: Sequence[str]) -> str:
    """The canonical name of an MX set: the key for per-destination concurrency.

    Two domains served by the same MX hosts (e.g. every Google Workspace domain) share
    a site, so their connections and limits are shared.

    Args:
        hosts: the MX host names, in any order and case.
    """
    return ",".join(sorted({_normalise(h) for h in hosts} - {""}))


def _normalise(host: str) -> str:
    return host.strip().rstrip(".").lower()


__all__ = ["OTHER", "order_mx", "provider_of", "site_of"]
