"""Store queries, DKIM signatures and bounce parsing never run on the event loop's thread.

A whole scenario in process: a message through the intake (the RCPT checks query the
suppression list), relayed with a DKIM signature, and a DSN about it read back, while the
gateway's other tasks (webhook outbox, gauges, janitor) run alongside. ``loop_probe`` sees
what the loop's thread runs. Deterministic, where ``test_event_loop_stays_responsive.py``
measures time.
"""

from __future__ import annotations

from gateway.bounce.parse import parse_bounce
from gateway.core.model import Status
from gateway.mail.dkim import keygen, sign
from tests.scenarios.harness import GatewayHarness, make_dsn
from tests.scenarios.loop_probe import work_on_this_thread

# Only 127.0.0.1 relays without AUTH: the DSN comes from 127.0.0.9, an untrusted client.
TRUSTED = {"trusted_networks": ["127.0.0.1/32"]}


async def test_no_query_signature_or_bounce_parse_on_the_loop_thread(
    harness: GatewayHarness,
) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    gw = await harness.start(smtp=TRUSTED)
    key, _ = keygen("sender.example", "s1", "rsa-sha256")
    await gw.store.set_dkim_key(  # type: ignore[attr-defined]
        "default", key.domain, key.selector, key.algorithm, key.private_key_pem
    )
    assert gw.relay.signer is not None
    await gw.relay.signer.refresh(force=True)  # type: ignore[call-arg]

    with work_on_this_thread(sign, parse_bounce) as on_the_loop:
        return_path = await harness.deliver("alice@example.com")
        code, _ = await harness.send_bounce(return_path, make_dsn(return_path, "alice@example.com"))
        await harness.wait_status("alice@example.com", Status.BOUNCED)

    assert code == 250
    assert mx.messages[0].content.startswith(b"DKIM-Signature: ")  # signed, elsewhere
    assert on_the_loop == []
