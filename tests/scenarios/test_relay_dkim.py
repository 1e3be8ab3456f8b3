"""A tenant with a DKIM key for the From: domain gets its mail signed; others do not."""

from __future__ import annotations

import dkim

from gateway.mail.dkim import keygen, public_record
from tests.scenarios.harness import GatewayHarness


async def test_mail_from_a_keyed_domain_is_signed_and_verifies(harness: GatewayHarness) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    gw = await harness.start()
    key, _ = keygen("sender.example", "s1", "rsa-sha256")
    await gw.store.set_dkim_key(
        "default", key.domain, key.selector, key.algorithm, key.private_key_pem
    )
    assert gw.relay.signer is not None
    await gw.relay.signer.refresh(force=True)  # type: ignore[call-arg]

    await harness.send(["bob@example.com"])
    await harness.send(
        ["carol@example.com"],
        sender="app@other.example",
        body=b"From: <app@other.example>\r\nSubject: x\r\n\r\nbody\r\n",
    )
    received = await mx.wait_for(2, timeout=10)

    signed = next(m for m in received if m.rcpt_tos == ("bob@example.com",))
    unsigned = next(m for m in received if m.rcpt_tos == ("carol@example.com",))
    assert signed.content.startswith(b"DKIM-Signature: ")
    assert b"DKIM-Signature" not in unsigned.content
    record = public_record(key).encode()

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record if name == b"s1._domainkey.sender.example." else b""

    assert dkim.verify(signed.content, dnsfunc=dns)
