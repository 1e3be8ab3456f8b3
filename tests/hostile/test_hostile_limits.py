"""Per-client limits (issue 14, item 1): a flood from one address, or one network, never
denies service to another; connection rate; bounded tables; a log that does not flood.

Client sockets are bound to chosen loopback addresses, each untrusted one in its own /24
unless the case is about a /24: 127.0.1.2 floods, 127.0.2.3 must still be served.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging

import pytest

from gateway.core import replies
from gateway.smtp_in.limits import ClientLimits, ClientTable, client_address, network_of
from tests.hostile.conftest import OTHER, UNTRUSTED, Start
from tests.hostile.wire import RawClient

BOUNCES = "bounces.gateway.test"


async def _greeting(port: int, source: str) -> tuple[RawClient, str]:
    client = await RawClient.connect(port, source)
    try:
        return client, await client.reply()
    except ConnectionError:
        return client, "closed"


async def test_one_address_filling_its_allowance_leaves_others_served(start: Start) -> None:
    harness = await start(max_sessions=10, max_sessions_per_client=3, max_sessions_per_network=5)
    held: list[RawClient] = []
    try:
        for _ in range(3):
            client, greeting = await _greeting(harness.port, UNTRUSTED)
            held.append(client)
            assert greeting.startswith("220 ")
        client, refused = await _greeting(harness.port, UNTRUSTED)
        held.append(client)
        assert refused == str(replies.TOO_MANY_SESSIONS_FROM_CLIENT)
        assert await client.closed()
        other, greeting = await _greeting(harness.port, OTHER)
        held.append(other)
        assert greeting.startswith("220 ")
        # once one of the flood's sessions ends, its address may open one again
        await held[0].send(b"QUIT\r\n")
        assert (await held[0].reply()).startswith("221")
        await asyncio.sleep(0.1)
        again, greeting = await _greeting(harness.port, UNTRUSTED)
        held.append(again)
        assert greeting.startswith("220 ")
    finally:
        for client in held:
            await client.close()


async def test_a_flood_of_two_hundred_connections_from_one_address(start: Start) -> None:
    """The issue's attack: 200 idle connections from one address (the default
    ``smtp.max_sessions``); another client still gets its greeting."""
    harness = await start(max_connections_per_minute=1000)
    clients = await asyncio.gather(*(_greeting(harness.port, UNTRUSTED) for _ in range(200)))
    try:
        answers = [greeting for _, greeting in clients]
        assert sum(a.startswith("220 ") for a in answers) == 20  # smtp.max_sessions_per_client
        assert answers.count(str(replies.TOO_MANY_SESSIONS_FROM_CLIENT)) == 180
        other, greeting = await _greeting(harness.port, OTHER)
        assert greeting.startswith("220 ")
        await other.close()
    finally:
        for client, _ in clients:
            await client.close()


async def test_one_network_filling_its_allowance_leaves_other_networks_served(
    start: Start,
) -> None:
    harness = await start(max_sessions_per_client=2, max_sessions_per_network=4)
    held: list[RawClient] = []
    try:
        for source in ("127.0.1.2", "127.0.1.2", "127.0.1.3", "127.0.1.3"):
            client, greeting = await _greeting(harness.port, source)
            held.append(client)
            assert greeting.startswith("220 ")
        client, refused = await _greeting(harness.port, "127.0.1.4")  # same /24, a new address
        held.append(client)
        assert refused == str(replies.TOO_MANY_SESSIONS_FROM_NETWORK)
        other, greeting = await _greeting(harness.port, OTHER)  # another /24
        held.append(other)
        assert greeting.startswith("220 ")
    finally:
        for client in held:
            await client.close()


async def test_connection_rate_per_minute_per_address(start: Start) -> None:
    harness = await start(max_connections_per_minute=3)
    for _ in range(3):
        client, greeting = await _greeting(harness.port, UNTRUSTED)
        assert greeting.startswith("220 ")
        await client.close()
    client, refused = await _greeting(harness.port, UNTRUSTED)
    await client.close()
    assert refused == str(replies.TOO_MANY_CONNECTIONS_PER_MINUTE)
    other, greeting = await _greeting(harness.port, OTHER)
    await other.close()
    assert greeting.startswith("220 ")


async def test_trusted_clients_have_their_own_limits(start: Start) -> None:
    harness = await start(
        max_sessions_per_client=1, trusted_sessions_per_client=2, greeting_delay="0s"
    )
    held = [await _greeting(harness.port, "127.0.0.1") for _ in range(3)]
    try:
        assert [g[:3] for _, g in held] == ["220", "220", "421"]
        assert held[2][1] == str(replies.TOO_MANY_SESSIONS_FROM_CLIENT)
    finally:
        for client, _ in held:
            await client.close()


async def test_three_thousand_bad_bounce_tokens_log_a_bounded_number_of_lines(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    """The issue's 3,000 RCPTs to bounce addresses: closed at the hard limit, at most the
    soft limit's warnings, and one summary line."""
    harness = await start()
    caplog.set_level(logging.INFO, logger="gateway.smtp_in")
    client = await RawClient.connect(harness.port, UNTRUSTED)
    try:
        assert (await client.reply()).startswith("220 ")
        await client.send(b"EHLO client.test\r\n")
        assert (await client.reply()).startswith("250")
        await client.send(b"MAIL FROM:<>\r\n")
        assert await client.reply() == str(replies.SENDER_OK)
        await client.send(f"RCPT TO:<x@{BOUNCES}>\r\n".encode() * 3000)
        assert await client.closed()
    finally:
        await client.close()

    async def summarised() -> bool:
        return any(r.getMessage() == "smtp.refusals_summary" for r in caplog.records)

    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(3):
            while not await summarised():
                await asyncio.sleep(0.05)
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("smtp.bounce_token_invalid") == 20  # smtp.error_soft_limit
    assert messages.count("smtp.refusals_summary") == 1
    assert messages.count("smtp.error_limit") == 1


def test_the_tables_stay_bounded() -> None:
    limits = ClientLimits(5, 10, 60)
    table = ClientTable(limits, limits, ())
    now = 0.0
    for i in range(30_000):
        address = ipaddress.ip_address(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
        assert table.admit(address, now) is None
        table.leave(address)
        now += 0.001
    # sessions are counted only while open; the rate buckets keep the most recent 10,000
    assert table.tracked <= 10_000


def test_networks_are_slash_24_and_slash_64() -> None:
    assert str(network_of(ipaddress.ip_address("192.0.2.77"))) == "192.0.2.0/24"
    assert str(network_of(ipaddress.ip_address("2001:db8:1:2:3::9"))) == "2001:db8:1:2::/64"


def test_client_addresses_from_peer_names() -> None:
    assert str(client_address(("127.0.1.2", 40000))) == "127.0.1.2"
    assert str(client_address(("::ffff:192.0.2.7", 40000, 0, 0))) == "192.0.2.7"  # dual stack
    assert str(client_address(("fe80::1%eth0", 40000, 0, 2))) == "fe80::1"
    assert client_address("/run/gateway.sock") is None
    assert client_address(None) is None


def test_an_address_that_logged_in_gets_the_trusted_limits_for_an_hour() -> None:
    table = ClientTable(ClientLimits(1, 10, 2), ClientLimits(None, None, None), ())
    app = ipaddress.ip_address("198.51.100.7")
    assert table.admit(app, 0.0) is None
    assert table.admit(app, 0.1) == replies.TOO_MANY_SESSIONS_FROM_CLIENT
    table.authenticated(app, 0.2)
    assert [table.admit(app, 0.3 + i / 100) for i in range(10)] == [None] * 10
    for _ in range(11):
        table.leave(app)
    assert table.admit(app, 3600.3) is None  # an hour later: the untrusted limits again
    assert table.admit(app, 3600.4) == replies.TOO_MANY_SESSIONS_FROM_CLIENT
