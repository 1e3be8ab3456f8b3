"""Smarthost mode: everything goes through one upstream, over STARTTLS, with AUTH."""

from __future__ import annotations

from gateway.core.model import Status
from tests.scenarios.harness import GatewayHarness

USER, PASSWORD = "relay-user", "relay-secret"


async def test_smarthost_with_starttls_and_auth(harness: GatewayHarness) -> None:
    upstream = harness.mx("127.0.0.4", tls=True, auth=(USER, PASSWORD))
    # No DNS for the recipient domains: the smarthost makes MX lookups unnecessary.
    await harness.start(
        relay={
            "smarthost": f"127.0.0.4:{upstream.port}",
            "smarthost_user": USER,
            "smarthost_password": PASSWORD,
            "tls": "opportunistic",
        },
        smtp={"typo_check": "off"},
    )
    harness.dns.add_mx("example.com", 10, "mx.nowhere.test")
    harness.dns.add_mx("example.org", 10, "mx.nowhere.test")

    assert await harness.send(["rita@example.com", "sam@example.org"]) == {}

    (received,) = await upstream.wait_for(1, timeout=10)
    assert set(received.rcpt_tos) == {"rita@example.com", "sam@example.org"}
    assert received.tls is True
    assert received.auth_user == USER
    assert received.mail_from.startswith("b+")
    await harness.wait_status("rita@example.com", Status.SENT)
    await harness.wait_status("sam@example.org", Status.SENT)
    # EHLO twice: in the clear, then again after STARTTLS (RFC 3207 §4.2).
    assert len(upstream.commands("EHLO")) == 2
    assert upstream.commands("AUTH")


async def test_smarthost_wrong_password_defers_instead_of_bouncing(
    harness: GatewayHarness,
) -> None:
    upstream = harness.mx("127.0.0.4", tls=True, auth=(USER, PASSWORD))
    harness.dns.add_mx("example.com", 10, "mx.nowhere.test")
    await harness.start(
        relay={
            "smarthost": f"127.0.0.4:{upstream.port}",
            "smarthost_user": USER,
            "smarthost_password": "wrong",
        }
    )

    assert await harness.send(["tom@example.com"]) == {}

    row = await harness.wait_status("tom@example.com", Status.DEFERRED)
    assert row.last_reply.startswith("451 4.7.8")
    assert upstream.messages == []
