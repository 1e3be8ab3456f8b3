"""DNS faults, at intake (the RCPT reply) and at relay time (the domain changed after the
message was accepted):

=========================  =====================  ======================================
answer                     at intake (RCPT)       at relay time
=========================  =====================  ======================================
SERVFAIL                   ``451 4.4.3``          deferred ``4.4.3``, sent once DNS heals
timeout                    ``451 4.4.3``          deferred ``4.4.3``, sent once DNS heals
NXDOMAIN                   ``550 5.1.2``          bounced ``5.1.2``, nothing connected
no data (no MX, no A)      ``550 5.1.2``          bounced ``5.1.2``, nothing connected
null MX (RFC 7505)         ``556 5.1.10``         bounced ``5.1.10``, nothing connected
MX pointing at ourselves   accepted               bounced ``5.4.6`` (mail loop), no copy
=========================  =====================  ======================================

Relay-time records have TTL 0, so the relay asks again instead of using the answer cached
at intake. The mail loop is caught three ways: the MX is named like this gateway; the MX
resolves to our own listener and greets us with our own name; or (the worker's address
check) the MX address and ``relay.mx_port`` are one of our listeners.
"""

from __future__ import annotations

import asyncio

import pytest

from gateway.core import replies
from gateway.core.model import Status
from tests.fakes.dns_server import FakeDns
from tests.fakes.mx import FakeMx, free_port
from tests.scenarios.harness import HOSTNAME, GatewayHarness

DOMAIN = "shifty.example"
RELAY = {"retry_intervals": ["1s"]}


async def _rcpt_reply(harness: GatewayHarness, address: str) -> str:
    async with await harness.raw() as client:
        assert (await client.command("EHLO client.test")).startswith("250")
        assert (await client.command("MAIL FROM:<app@sender.example>")).startswith("250")
        return await client.command(f"RCPT TO:<{address}>", timeout=8)


def _publish(dns: FakeDns, mx: FakeMx) -> None:
    """``DOMAIN`` -> ``mx``, TTL 0: nothing is cached, every lookup asks again."""
    dns.add_mx(DOMAIN, 10, "mx-shifty.example", ttl=0)
    dns.add_a("mx-shifty.example", mx.host, ttl=0)


# --- at intake ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("servfail", replies.DNS_TEMPFAIL),
        ("timeout", replies.DNS_TEMPFAIL),
        ("nxdomain", replies.NO_SUCH_DOMAIN),
        ("nodata", replies.NO_SUCH_DOMAIN),
        ("null_mx", replies.NULL_MX),
    ],
)
async def test_dns_fault_at_intake(
    harness: GatewayHarness, fake_dns: FakeDns, fault: str, expected: replies.Reply
) -> None:
    {
        "servfail": lambda: fake_dns.set_servfail(DOMAIN),
        "timeout": lambda: fake_dns.set_timeout(DOMAIN),
        "nxdomain": lambda: None,
        "nodata": lambda: fake_dns.add_name(DOMAIN),
        "null_mx": lambda: fake_dns.add_null_mx(DOMAIN),
    }[fault]()
    await harness.start(dns={"timeout": "1s"})

    assert await _rcpt_reply(harness, f"ann@{DOMAIN}") == str(expected)
    assert await harness.queued_count() == 0


# --- at relay time ------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["servfail", "timeout"])
async def test_dns_temporary_failure_at_relay_time_defers_then_delivers(
    harness: GatewayHarness, fake_dns: FakeDns, fault: str
) -> None:
    mx = harness.mx("127.0.0.2")
    _publish(fake_dns, mx)
    await harness.start(serve_only=True, relay=RELAY, dns={"timeout": "1s"})
    address = f"bob@{DOMAIN}"
    # Accepted while DNS works; it breaks before the first attempt's lookup.
    assert await harness.send([address]) == {}
    (fake_dns.set_servfail if fault == "servfail" else fake_dns.set_timeout)(DOMAIN)
    harness.run()

    row = await harness.wait_status(address, Status.DEFERRED, timeout=8)
    assert row.last_reply == str(replies.DNS_TEMPFAIL)
    assert mx.connections == 0

    fake_dns.clear(DOMAIN)
    _publish(fake_dns, mx)
    await harness.wait_status(address, Status.SENT, timeout=10)
    assert len(mx.messages) == 1


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("nxdomain", replies.NO_SUCH_DOMAIN),
        ("nodata", replies.NO_SUCH_DOMAIN),
        ("null_mx", replies.NULL_MX),
    ],
)
async def test_dns_permanent_answer_at_relay_time_bounces_without_connecting(
    harness: GatewayHarness, fake_dns: FakeDns, fault: str, expected: replies.Reply
) -> None:
    mx = harness.mx("127.0.0.2")
    _publish(fake_dns, mx)
    # Intake is served, the relay waits: the domain changes between acceptance and attempt.
    await harness.start(serve_only=True, relay=RELAY)
    address = f"cat@{DOMAIN}"
    assert await harness.send([address]) == {}
    fake_dns.clear(DOMAIN)
    if fault == "nodata":
        fake_dns.add_name(DOMAIN)
    elif fault == "null_mx":
        fake_dns.add_null_mx(DOMAIN)
    harness.run()

    row = await harness.wait_status(address, Status.BOUNCED, timeout=8)
    assert row.last_reply == str(expected)
    assert row.attempts == 1
    assert mx.connections == 0


# --- mail loops ---------------------------------------------------------------------------


async def test_mx_named_like_this_gateway_is_a_loop(
    harness: GatewayHarness, fake_dns: FakeDns
) -> None:
    fake_dns.add_mx(DOMAIN, 10, HOSTNAME)
    fake_dns.add_a(HOSTNAME, "127.0.0.1")
    await harness.start(relay=RELAY)
    address = f"dan@{DOMAIN}"
    assert await harness.send([address]) == {}

    row = await harness.wait_status(address, Status.BOUNCED, timeout=8)
    assert row.last_reply == str(replies.MAIL_LOOP)
    assert await harness.queued_count() == 1  # no looped copy


async def _loop_through_own_listener(
    harness: GatewayHarness, fake_dns: FakeDns, *, wire_endpoints: bool
) -> str:
    """An MX with another name that resolves to our own listener, with ``relay.mx_port``
    our own port: the last reply of the recipient."""
    port = free_port()
    fake_dns.add_mx(DOMAIN, 10, "mx-innocent.example")
    fake_dns.add_a("mx-innocent.example", "127.0.0.1")
    gw = await harness.start(
        smtp={"listen": f"127.0.0.1:{port}"},
        relay={**RELAY, "mx_port": port},
    )
    if not wire_endpoints:
        # app.py wires the (address, port) check; switch it off to reach the second line
        # of defence, the greeting naming us.
        gw.relay.attempter.local_endpoints = None
    address = f"eve@{DOMAIN}"
    assert await harness.send([address]) == {}
    row = await harness.wait_status(address, Status.BOUNCED, timeout=8)
    assert row.last_reply.startswith(str(replies.MAIL_LOOP)[:10]), row.last_reply
    await asyncio.sleep(0.5)
    assert await harness.queued_count() == 1  # no looped copy was queued
    return row.last_reply


async def test_mx_resolving_to_our_listener_greets_with_our_name(
    harness: GatewayHarness, fake_dns: FakeDns
) -> None:
    text = await _loop_through_own_listener(harness, fake_dns, wire_endpoints=False)
    assert f"greeted us with our own name {HOSTNAME}" in text


async def test_mx_address_and_port_of_our_listener_is_a_loop_without_connecting(
    harness: GatewayHarness, fake_dns: FakeDns
) -> None:
    text = await _loop_through_own_listener(harness, fake_dns, wire_endpoints=True)
    assert "is this gateway" in text
