"""The dnspython adapter against a real DNS server on loopback."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from gateway.core.errors import DnsPermanent, DnsTemporary
from gateway.core.ports import MxAnswer, MxHost
from gateway.services.dns import DnsResolver
from tests.fakes.dns_server import FakeDns


class FakeClock:
    def __init__(self) -> None:
        self.current = datetime(2030, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


def resolver(fake: FakeDns, clock: FakeClock | None = None, **kwargs: object) -> DnsResolver:
    kwargs.setdefault("timeout", 1.0)
    return DnsResolver(fake.config(**kwargs), clock or FakeClock())  # type: ignore[arg-type]


# --- MX ---------------------------------------------------------------------------------------
async def test_mx_sorted_by_preference_keeping_all(fake_dns: FakeDns) -> None:
    fake_dns.add_mx("example.test", 20, "MX3.example.test")
    fake_dns.add_mx("example.test", 10, "mx1.example.test")
    fake_dns.add_mx("example.test", 10, "mx2.example.test")
    async with asyncio.timeout(5):
        got = await resolver(fake_dns).mx("example.test")
    assert not got.null
    assert not got.implicit
    assert [mx.preference for mx in got.hosts] == [10, 10, 20]
    assert {mx.host for mx in got.hosts[:2]} == {"mx1.example.test", "mx2.example.test"}
    assert got.hosts[2] == MxHost(20, "mx3.example.test")


async def test_null_mx(fake_dns: FakeDns) -> None:
    fake_dns.add_null_mx("nomail.test")
    fake_dns.add_a("nomail.test", "127.0.0.9")  # a null MX wins over address records
    async with asyncio.timeout(5):
        assert await resolver(fake_dns).mx("nomail.test") == MxAnswer(null=True)


@pytest.mark.parametrize("family", ["a", "aaaa"])
async def test_no_mx_falls_back_to_address_records(fake_dns: FakeDns, family: str) -> None:
    if family == "a":
        fake_dns.add_a("implicit.test", "127.0.0.5")
    else:
        fake_dns.add_aaaa("implicit.test", "::1")
    async with asyncio.timeout(5):
        got = await resolver(fake_dns).mx("implicit.test")
    assert got == MxAnswer(hosts=(MxHost(0, "implicit.test"),), implicit=True)


async def test_no_mx_and_no_address_is_permanent(fake_dns: FakeDns) -> None:
    fake_dns.add_name("empty.test")
    with pytest.raises(DnsPermanent, match="no MX and no A/AAAA"):
        async with asyncio.timeout(5):
            await resolver(fake_dns).mx("empty.test")


async def test_nxdomain_is_permanent(fake_dns: FakeDns) -> None:
    with pytest.raises(DnsPermanent, match="NXDOMAIN"):
        async with asyncio.timeout(5):
            await resolver(fake_dns).mx("nowhere.test")


async def test_servfail_is_temporary(fake_dns: FakeDns) -> None:
    fake_dns.set_servfail("broken.test")
    with pytest.raises(DnsTemporary):
        async with asyncio.timeout(5):
            await resolver(fake_dns).mx("broken.test")


async def test_timeout_is_temporary_and_bounded(fake_dns: FakeDns) -> None:
    fake_dns.set_timeout("silent.test")
    started = time.monotonic()
    with pytest.raises(DnsTemporary, match="timeout"):
        async with asyncio.timeout(5):
            await resolver(fake_dns, timeout=0.3).mx("silent.test")
    assert time.monotonic() - started < 2
    assert fake_dns.queries("silent.test", "MX") >= 1


async def test_servfail_on_the_address_fallback_is_temporary(fake_dns: FakeDns) -> None:
    fake_dns.set_servfail("half.test")
    with pytest.raises(DnsTemporary):
        async with asyncio.timeout(5):
            await resolver(fake_dns).addresses("half.test")


# --- addresses ----------------------------------------------------------------------------------
async def test_addresses_ipv4_first(fake_dns: FakeDns) -> None:
    fake_dns.add_aaaa("host.test", "::1")
    fake_dns.add_a("host.test", "127.0.0.2")
    fake_dns.add_a("host.test", "127.0.0.3")
    async with asyncio.timeout(5):
        got = await resolver(fake_dns).addresses("host.test")
    assert got == ("127.0.0.2", "127.0.0.3", "::1")


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("127.0.0.7", "127.0.0.7"),
        ("::1", "::1"),
        ("[127.0.0.7]", "127.0.0.7"),
        ("[IPv6:::1]", "::1"),
    ],
)
async def test_ip_literal_needs_no_query(fake_dns: FakeDns, literal: str, expected: str) -> None:
    async with asyncio.timeout(5):
        assert await resolver(fake_dns).addresses(literal) == (expected,)
    assert fake_dns.queries(literal) == 0


async def test_addresses_of_unknown_name_is_permanent(fake_dns: FakeDns) -> None:
    with pytest.raises(DnsPermanent):
        async with asyncio.timeout(5):
            await resolver(fake_dns).addresses("nothing.test")


# --- cache --------------------------------------------------------------------------------------
async def test_positive_answers_cached_for_their_ttl(fake_dns: FakeDns) -> None:
    fake_dns.add_mx("cached.test", 10, "mx.cached.test", ttl=60)
    clock = FakeClock()
    dns = resolver(fake_dns, clock)
    async with asyncio.timeout(5):
        first = await dns.mx("cached.test")
        clock.advance(59)
        assert await dns.mx("cached.test") == first
        assert fake_dns.queries("cached.test", "MX") == 1
        clock.advance(2)
        assert await dns.mx("cached.test") == first
    assert fake_dns.queries("cached.test", "MX") == 2


async def test_negative_answers_cached_for_negative_ttl(fake_dns: FakeDns) -> None:
    clock = FakeClock()
    dns = resolver(fake_dns, clock, negative_ttl=timedelta(seconds=30))
    async with asyncio.timeout(5):
        for _ in range(3):
            with pytest.raises(DnsPermanent):
                await dns.mx("gone.test")
        assert fake_dns.queries("gone.test", "MX") == 1
        fake_dns.add_mx("gone.test", 10, "mx.gone.test")
        clock.advance(31)
        got = await dns.mx("gone.test")
    assert got.hosts == (MxHost(10, "mx.gone.test"),)
    assert fake_dns.queries("gone.test", "MX") == 2


async def test_temporary_failures_are_never_cached(fake_dns: FakeDns) -> None:
    fake_dns.set_servfail("flaky.test")
    dns = resolver(fake_dns)
    async with asyncio.timeout(5):
        for _ in range(2):
            with pytest.raises(DnsTemporary):
                await dns.mx("flaky.test")
        assert fake_dns.queries("flaky.test", "MX") == 2
        fake_dns.clear("flaky.test")
        fake_dns.add_mx("flaky.test", 5, "mx.flaky.test")
        assert (await dns.mx("flaky.test")).hosts == (MxHost(5, "mx.flaky.test"),)


async def test_cache_is_bounded_least_recently_used_first(fake_dns: FakeDns) -> None:
    for name in ("a.test", "b.test", "c.test"):
        fake_dns.add_a(name, "127.0.0.1")
    dns = resolver(fake_dns, cache_size=4)  # two names: A and AAAA entries each
    async with asyncio.timeout(5):
        await dns.addresses("a.test")
        await dns.addresses("b.test")
        await dns.addresses("a.test")  # a is now the most recently used
        await dns.addresses("c.test")  # evicts b
        await dns.addresses("a.test")
        await dns.addresses("b.test")
    assert fake_dns.queries("a.test", "A") == 1
    assert fake_dns.queries("b.test", "A") == 2
    assert fake_dns.queries("c.test", "A") == 1


async def test_every_lookup_is_reported_to_the_observer(fake_dns: FakeDns) -> None:
    fake_dns.add_mx("example.com", 10, "mx.example.com")
    fake_dns.set_servfail("broken.example")
    seen: list[tuple[str, str, float | None]] = []
    resolver = DnsResolver(fake_dns.config(), observe=lambda *args: seen.append(args))

    await resolver.mx("example.com")
    await resolver.mx("example.com")  # cached
    with pytest.raises(DnsPermanent):
        await resolver.mx("nowhere.example")
    with pytest.raises(DnsTemporary):
        await resolver.mx("broken.example")

    outcomes = [(kind, outcome) for kind, outcome, _ in seen]
    assert outcomes[:2] == [("MX", "answer"), ("MX", "cached")]
    assert ("MX", "nxdomain") in outcomes
    assert ("MX", "servfail") in outcomes
    assert seen[1][2] is None  # a cache hit has no latency
    assert seen[0][2] is not None
    assert seen[0][2] >= 0
