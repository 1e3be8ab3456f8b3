"""DNS for intake checks and routing: dnspython behind the ``Resolver`` port, with a cache.

Owns: MX lookups with RFC 7505 null MX and the RFC 5321 §5.1 implicit-MX fallback,
address lookups (A then AAAA), a bounded TTL-honouring cache, and the translation of
every dnspython exception into ``DnsTemporary`` or ``DnsPermanent``.

Does not own: the order in which MX hosts are tried (``core.routing``), nor what a
failure means for a recipient (``core.intake``, the relay worker).

Caching rules:

- positive answers live for the record set's TTL;
- NXDOMAIN and "no data" answers live for ``dns.negative_ttl`` (RFC 2308 §5 would take
  the SOA minimum; a fixed, configured bound is simpler and predictable);
- temporary failures (SERVFAIL, timeouts) are never cached, so the next caller retries.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

from gateway.config import DnsConfig
from gateway.core.errors import ConfigError, DnsPermanent, DnsTemporary
from gateway.core.ports import Clock, MxAnswer, MxHost, SystemClock

# Answers that say "this name has nothing of that type": cached as negatives.
_NEGATIVE_ERRORS = (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.YXDOMAIN)
# Extra wall-clock slack over dnspython's own lifetime, so a stuck backend still ends.
_GRACE = 1.0


class _Negative(Enum):
    NXDOMAIN = "nxdomain"  # the name does not exist (RFC 1035 §4.1.1 RCODE 3)
    NODATA = "nodata"  # the name exists but has no records of the type (RFC 2308 §2.2)


_Records = tuple[MxHost, ...] | tuple[str, ...]
_Result = _Records | _Negative


@dataclass(slots=True)
class _Entry:
    expires: datetime
    result: _Result


class DnsResolver:
    """The ``Resolver`` port over dnspython's asyncio resolver.

    Args:
        config: the ``[dns]`` section. ``nameservers`` empty means the system's resolver
            configuration (``/etc/resolv.conf``).
        clock: the time source for cache expiry; tests pass a fake clock.
        observe: called per lookup with (record type, outcome, seconds or None when cached),
            for metrics.

    Raises:
        ConfigError: ``dns.nameservers`` is empty and the system has no resolver
            configuration.
    """

    def __init__(
        self,
        config: DnsConfig,
        clock: Clock | None = None,
        observe: Callable[[str, str, float | None], None] | None = None,
    ) -> None:
        self._observe = observe
        self._config = config
        self._clock: Clock = clock or SystemClock()
        self._timeout = max(config.timeout.total_seconds(), 0.001)
        self._cache: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        if config.nameservers:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [
                dns.nameserver.Do53Nameserver(ns.host, ns.port) for ns in config.nameservers
            ]
        else:
            try:
                resolver = dns.asyncresolver.Resolver()
            except dns.exception.DNSException as exc:
                raise ConfigError("dns.nameservers", f"no system resolver: {exc}") from None
        resolver.lifetime = self._timeout
        resolver.timeout = self._timeout
        resolver.cache = None  # our own cache honours the injected clock
        self._resolver = resolver

    async def mx(self, domain: str) -> MxAnswer:
        """The MX set of ``domain``, sorted by preference.

        Args:
            domain: an IDNA-encoded, lower-case ASCII domain.

        Raises:
            DnsPermanent: NXDOMAIN, or neither MX nor address records.
            DnsTemporary: SERVFAIL, timeout, or no nameserver answered.
        """
        name = _normalise(domain)
        result = await self._lookup(name, "MX")
        if result is _Negative.NXDOMAIN:
            raise DnsPermanent(f"{name}: no such domain (NXDOMAIN)")
        if result is _Negative.NODATA:
            # RFC 5321 §5.1: no MX records, so the domain's own A/AAAA is an implicit MX
            # of preference 0.
            try:
                await self.addresses(name)
            except DnsPermanent:
                raise DnsPermanent(f"{name}: no MX and no A/AAAA records") from None
            return MxAnswer(hosts=(MxHost(0, name),), implicit=True)
        hosts = tuple(mx for mx in result if isinstance(mx, MxHost))
        # RFC 7505 §3: a null MX is one record, preference 0, exchange ".". §4.3: a "."
        # mixed with real hosts is a misconfiguration; ignore it and use the others.
        real = tuple(mx for mx in hosts if mx.host != ".")
        if not real:
            return MxAnswer(null=True)
        return MxAnswer(hosts=tuple(sorted(real, key=lambda mx: mx.preference)))

    async def addresses(self, host: str) -> tuple[str, ...]:
        """The IP addresses of ``host``: IPv4 first, then IPv6.

        An IP literal (also in the RFC 5321 §4.1.3 ``[...]`` form) is returned as is.

        Args:
            host: a host name or an IP literal.

        Raises:
            DnsPermanent: the name does not exist or has no address records.
            DnsTemporary: SERVFAIL or timeout and no addresses were found.
        """
        literal = _ip_literal(host)
        if literal is not None:
            return (literal,)
        name = _normalise(host)
        results = await asyncio.gather(
            self._lookup(name, "A"), self._lookup(name, "AAAA"), return_exceptions=True
        )
        found: list[str] = []
        temporary: DnsTemporary | None = None
        for result in results:
            if isinstance(result, DnsTemporary):
                temporary = result
            elif isinstance(result, BaseException):
                raise result
            elif isinstance(result, tuple):
                found.extend(ip for ip in result if isinstance(ip, str))
        if found:
            # One family answered: usable even if the other family failed for now.
            return tuple(found)
        if temporary is not None:
            raise temporary
        if _Negative.NXDOMAIN in results:
            raise DnsPermanent(f"{name}: no such domain (NXDOMAIN)")
        raise DnsPermanent(f"{name}: no A or AAAA records")

    def _note(self, rdtype: str, outcome: str, started: float | None) -> None:
        if self._observe is not None:
            self._observe(rdtype, outcome, None if started is None else time.monotonic() - started)

    def _cached(self, key: tuple[str, str]) -> _Result | None:
        entry = self._cache.get(key)
        if entry is None:
            return None
        if entry.expires <= self._clock.now():
            del self._cache[key]
            return None
        self._cache.move_to_end(key)
        return entry.result

    def _store(self, key: tuple[str, str], result: _Result, ttl: timedelta) -> None:
        if ttl <= timedelta(0):
            return
        self._cache[key] = _Entry(self._clock.now() + ttl, result)
        self._cache.move_to_end(key)
        while len(self._cache) > self._config.cache_size:
            self._cache.popitem(last=False)  # least recently used

    async def _lookup(self, name: str, rdtype: str) -> _Result:
        key = (name, rdtype)
        cached = self._cached(key)
        if cached is not None:
            self._note(rdtype, "cached", None)
            return cached
        started = time.monotonic()
        try:
            qname = dns.name.from_text(name)
        except dns.exception.DNSException as exc:
            raise DnsPermanent(f"{name!r} is not a valid domain name: {exc}") from None
        try:
            async with asyncio.timeout(self._timeout + _GRACE):
                answer = await self._resolver.resolve(qname, rdtype, search=False)
        except _NEGATIVE_ERRORS as exc:
            kind = (
                _Negative.NODATA if isinstance(exc, dns.resolver.NoAnswer) else (_Negative.NXDOMAIN)
            )
            self._store(key, kind, self._config.negative_ttl)
            self._note(rdtype, "nodata" if kind is _Negative.NODATA else "nxdomain", started)
            return kind
        except (dns.exception.Timeout, TimeoutError):
            self._note(rdtype, "timeout", started)
            raise DnsTemporary(f"{name} {rdtype}: DNS timeout") from None
        except dns.resolver.NoNameservers:
            self._note(rdtype, "servfail", started)
            raise DnsTemporary(f"{name} {rdtype}: no nameserver answered (SERVFAIL)") from None
        except dns.exception.DNSException as exc:
            self._note(rdtype, "error", started)
            raise DnsTemporary(f"{name} {rdtype}: {type(exc).__name__}") from None
        self._note(rdtype, "answer", started)
        result: _Result
        if rdtype == "MX":
            result = tuple(MxHost(int(rr.preference), _exchange(rr.exchange)) for rr in answer)
        else:
            result = tuple(str(rr.address) for rr in answer)
        ttl = answer.rrset.ttl if answer.rrset is not None else 0
        self._store(key, result, timedelta(seconds=ttl))
        return result


def _exchange(name: dns.name.Name) -> str:
    if name == dns.name.root:
        return "."
    return name.to_text(omit_final_dot=True).lower()


def _normalise(name: str) -> str:
    return name.strip().rstrip(".").lower()


def _ip_literal(host: str) -> str | None:
    """The IP address in ``host`` if it is a literal (bare or RFC 5321 §4.1.3 bracketed)."""
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
        if text[:5].lower() == "ipv6:":
            text = text[5:]
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return None
    return text


__all__ = ["DnsResolver"]
