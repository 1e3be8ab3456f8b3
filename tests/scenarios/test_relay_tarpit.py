"""Destinations that misbehave at scale (issue 11): a tarpit (accepts the connection, never
greets) costs only its own site's connections; connection failures in a row suspend the
site, whose recipients are deferred with one event each saying why, without connecting; a
greylisting destination is delivered on the retry; a ``421 Too many connections`` throttles
its site. Real SMTP over loopback, DNS from a server on loopback."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from gateway.core.model import EventType, Status
from tests.scenarios.admin_api import ADMIN, admin
from tests.scenarios.harness import GatewayHarness
from tests.waiting import wait_until

TARPITS = ("127.0.0.5", "127.0.0.6", "127.0.0.7")
GREETING_TIMEOUT = 4.0  # relay.command_timeout: how long a tarpit holds each connection


def _shaping(tmp: Path) -> str:
    path = tmp / "shaping.toml"
    path.write_text('[default]\nconnections = 2\nsuspend_after = 2\nsuspend_first = "1m"\n')
    return str(path)


async def test_tarpits_hold_only_their_own_sites_and_are_suspended(
    harness: GatewayHarness, tmp_path: Path
) -> None:
    healthy = harness.mx("127.0.0.2", "ok.example")
    tarpits = []
    for n, host in enumerate(TARPITS):
        fake = harness.mx(host, f"tarpit{n}.example")
        fake.mode = "silent"
        tarpits.append(fake)
    gw = await harness.start(
        admin=ADMIN,
        relay={
            "shaping": _shaping(tmp_path),
            # Fewer slots than the tarpits' 30 jobs: a relay that let them take the global
            # slots (the old one did) would deliver nothing to ok.example for 4 s and more.
            "concurrency": 8,
            "connect_timeout": "2s",
            "command_timeout": f"{GREETING_TIMEOUT:.0f}s",
            "retry_intervals": ["10m"],
        }
    )
    waiting = [f"user{i}@tarpit{i % 3}.example" for i in range(30)]
    for address in waiting:
        assert await harness.send([address]) == {}
    sent_at = time.monotonic()
    for i in range(10):
        assert await harness.send([f"client{i}@ok.example"]) == {}

    # Every healthy message arrives before any tarpit connection has even timed out.
    await healthy.wait_for(10, timeout=GREETING_TIMEOUT - 0.5)
    assert time.monotonic() - sent_at < GREETING_TIMEOUT

    # Two greeting timeouts in a row suspend each tarpit's site; the recipients still
    # waiting for it are deferred without a connection, each with an event that says why.
    async def all_deferred() -> bool:
        rows = [row for a in waiting for row in await harness.recipients(a)]
        return all(row.status is Status.DEFERRED for row in rows)

    await wait_until(all_deferred, 3 * GREETING_TIMEOUT, what="every tarpit recipient deferred")
    never_tried = 0
    for address in waiting:
        (row,) = await harness.recipients(address)
        if "not reachable since" in row.last_reply:
            never_tried += 1
            assert row.last_reply.startswith("451 4.4.1 Destination mx-127-0-0-"), row.last_reply
            deferred = [e for e in await harness.events(address) if e.type is EventType.DEFERRED]
            assert len(deferred) == 1
    assert never_tried == 30 - 3 * 2  # all but the two per site that timed out

    for fake in tarpits:
        assert fake.peak_open <= 2  # never more than the site's limit at once
        assert fake.connections == 2
    await asyncio.sleep(1.0)  # suspended for a minute: nothing connects meanwhile
    assert [fake.connections for fake in tarpits] == [2, 2, 2]

    exposition = gw.metrics.exposition()[0].decode()
    assert 'gateway_relay_site_changes_total{change="suspended",provider="default"} 3.0' in (
        exposition
    )
    assert 'gateway_relay_sites{state="suspended"} 3.0' in exposition
    # Support sees them through the admin API: suspended first, with since when and why.
    response = await admin(harness, "GET", "/api/v1/destinations")
    assert response.status_code == 200, response.text
    listed = response.json()["destinations"]
    suspended = {d["site"]: d for d in listed if d["state"] == "suspended"}
    assert set(suspended) == {f"mx-{host.replace('.', '-')}.test" for host in TARPITS}
    assert [d["state"] for d in listed[:3]] == ["suspended"] * 3
    one = suspended["mx-127-0-0-5.test"]
    assert one["queued"] == 0  # deferred back to the store, not held in memory
    assert one["since"] is not None
    assert one["until"] is not None
    assert "Timed out waiting" in one["last_error"]


async def test_a_greylisting_destination_gets_the_message_on_the_retry(
    harness: GatewayHarness, tmp_path: Path
) -> None:
    mx = harness.mx("127.0.0.2", "grey.example")
    gw = await harness.start(relay={"retry_intervals": ["1s"]})
    address = "greylist-ana@grey.example"
    assert await harness.send([address]) == {}

    row = await harness.wait_status(address, Status.SENT, timeout=10)
    assert row.attempts == 2
    types = [e.type for e in await harness.events(address)]
    assert types == [EventType.QUEUED, EventType.DEFERRED, EventType.SENT]
    assert len(mx.messages) == 1
    # Greylisting is about one sender and recipient, not the site: no throttling.
    assert "gateway_relay_site_changes_total{" not in gw.metrics.exposition()[0].decode()


async def test_too_many_connections_throttles_the_site(harness: GatewayHarness) -> None:
    mx = harness.mx("127.0.0.2", "busy.example")
    mx.mode = "greeting421"
    gw = await harness.start(relay={"retry_intervals": ["10m"]})
    address = "bob@busy.example"
    assert await harness.send([address]) == {}

    row = await harness.wait_status(address, Status.DEFERRED, timeout=10)
    assert "421" in row.last_reply
    (view,) = [v for v in gw.relay.sites.views() if v.site == "mx-127-0-0-2.test"]
    assert view.throttled
    assert view.connections == 5  # the default's 10, halved
    exposition = gw.metrics.exposition()[0].decode()
    assert 'gateway_relay_site_changes_total{change="throttled",provider="default"} 1.0' in (
        exposition
    )


async def test_a_message_for_many_recipients_goes_in_transactions_the_site_takes(
    harness: GatewayHarness,
) -> None:
    """60 recipients at one site that takes 50 per transaction: two transactions, every
    recipient delivered on the first attempt, none deferred by a 452."""
    mx = harness.mx("127.0.0.2", "many.example")
    mx.max_rcpts = 50
    await harness.start(relay={"retry_intervals": ["10m"]})
    rcpts = [f"r{i}@many.example" for i in range(60)]
    body = b"From: App <app@sender.example>\r\nTo: undisclosed-recipients:;\r\n\r\nHi.\r\n"
    assert await harness.send(rcpts, body=body) == {}

    await mx.wait_for(2, timeout=10)
    assert sorted(len(m.rcpt_tos) for m in mx.messages) == [10, 50]
    for address in (rcpts[0], rcpts[-1]):
        row = await harness.wait_status(address, Status.SENT, timeout=10)
        assert row.attempts == 1

