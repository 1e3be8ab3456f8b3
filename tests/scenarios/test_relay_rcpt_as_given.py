"""Recipients are relayed as the client gave them (issue 14 item 7): a local part is
case-sensitive on the wire (RFC 5321 §2.4), so ``RCPT TO:<John.Smith@example.com>`` reaches
the destination as ``John.Smith@…``, while the queue, the events, the policy and the admin
API know the recipient by its canonical, lower-cased form (``john.smith@…``), the key of
every look-up.

1. Real SMTP in and out, on both stores: the fake MX sees each local part as sent to us
   (the domain as routed), the recipient API finds ``john.smith@…``, and each recipient's
   own reply at the destination (refused, deferred, accepted) is recorded against it.
2. A restart on both stores, and a kill -9 (SQLite, the subprocess gateway): the form given
   is in the store (migration 014, ``recipients.rcpt_to``), so the gateway that delivers
   after the restart sends it as given too.
"""

from __future__ import annotations

import asyncio
import smtplib
from pathlib import Path
from typing import Any

from gateway.core.model import Status
from tests.backends import Backend, PostgresBackend, SqliteBackend
from tests.fakes.dns_server import FakeDns
from tests.scenarios.admin_api import ADMIN, recipient
from tests.scenarios.harness import GatewayHarness, crashable_gateway

GIVEN = "John.Smith@example.com"
CANONICAL = "john.smith@example.com"


# Each test asks for ``backend`` before ``harness``: fixtures end in reverse order, so the
# gateway stops before its PostgreSQL database is dropped (dropped first, the gateway's
# shutdown waits out the harness's 15 s bound).


def _store(backend: Backend) -> dict[str, Any]:
    if isinstance(backend, PostgresBackend):
        return {"url": backend.url}
    assert isinstance(backend, SqliteBackend)
    return {"path": str(backend.path)}


async def test_the_mx_gets_local_parts_as_given_and_lookups_use_the_canonical_form(
    backend: Backend, harness: GatewayHarness
) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    await harness.start(store=_store(backend), admin=ADMIN)
    given = [GIVEN, "MARY@Example.COM", "permfail-Bob@example.com", "ann@example.com"]

    refused = await harness.send(given)

    assert refused == {}
    (received,) = await mx.wait_for(1, timeout=10)
    # The local parts as given; the domain as routed (canonical).
    assert received.rcpt_tos == (GIVEN, "MARY@example.com", "ann@example.com")
    assert mx.commands("RCPT") == [
        GIVEN,
        "MARY@example.com",
        "permfail-Bob@example.com",
        "ann@example.com",
    ]
    # Each reply is recorded against its own recipient, under the canonical form.
    await harness.wait_status(CANONICAL, Status.SENT)
    await harness.wait_status("mary@example.com", Status.SENT)
    await harness.wait_status("ann@example.com", Status.SENT)
    bounced = await harness.wait_status("permfail-bob@example.com", Status.BOUNCED)
    assert "5.1.1" in bounced.last_reply
    # The store: the canonical address is the key, the form given only beside it.
    assert sorted(backend.rows("SELECT address, rcpt_to FROM recipients")) == [
        ("ann@example.com", ""),
        (CANONICAL, GIVEN),
        ("mary@example.com", "MARY@example.com"),
        ("permfail-bob@example.com", "permfail-Bob@example.com"),
    ]
    assert backend.count("events", "address = ?", (GIVEN,)) == 0
    # Support finds the recipient by the canonical form.
    body = await recipient(harness, CANONICAL)
    assert (body["address"], body["status"]) == (CANONICAL, Status.SENT.value)
    assert body["recipient"]["address"] == CANONICAL


async def test_a_restart_sends_the_form_given_before_it(
    backend: Backend, harness: GatewayHarness
) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    mx.set_down()  # deferred by the first gateway
    await harness.start(store=_store(backend))
    assert await harness.send([GIVEN]) == {}
    await harness.wait_status(CANONICAL, Status.DEFERRED)
    await harness.stop()

    mx.set_down(False)
    await harness.start(store=_store(backend))  # a new gateway on the same store

    (received,) = await mx.wait_for(1, timeout=10)
    assert received.rcpt_tos == (GIVEN,)
    await harness.wait_status(CANONICAL, Status.SENT)


def _send(port: int) -> tuple[int, bytes]:
    content = (
        f"From: App <app@sender.example>\r\nTo: {GIVEN}\r\nSubject: Case test\r\n"
        "Message-ID: <case-1@sender.example>\r\n\r\nHello.\r\n"
    ).encode()
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=10) as client:
        client.ehlo()
        client.mail("app@sender.example")
        code, _ = client.rcpt(GIVEN)
        assert code == 250
        return client.data(content)


async def test_kill_9_then_restart_sends_the_form_given(fake_dns: FakeDns, tmp_path: Path) -> None:
    async with crashable_gateway(fake_dns, tmp_path, "mx-case.test", mx_up=False) as crash:
        await crash.gateway.start()
        code, reply = await asyncio.to_thread(_send, crash.port)
        assert code == 250, reply
        crash.kill9()
        assert crash.rows("SELECT address, rcpt_to FROM recipients") == [(CANONICAL, GIVEN)]

        await crash.gateway.start()
        crash.mx.start()  # the destination comes back
        await crash.delivered_exactly(1, settle=1.5)
        (received,) = crash.mx.messages
        assert received.rcpt_tos == (GIVEN,)
        assert crash.rows("SELECT status FROM recipients WHERE address = ?", (CANONICAL,)) == [
            ("sent",)
        ]
