"""Hostile clients around TLS and AUTH (issue 14, items 7 and 8): STARTTLS command injection,
AUTH brute force, a failed handshake logged without a traceback."""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
from pathlib import Path

import pytest
import trustme

from gateway.core import replies
from gateway.core.model import Tenant
from gateway.services.credentials import hash_secret
from tests.hostile.conftest import UNTRUSTED, Start
from tests.hostile.wire import RawClient
from tests.scenarios.harness import HOSTNAME, GatewayHarness


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_files(ca: trustme.CA, tmp_path: Path) -> dict[str, str]:
    cert = ca.issue_cert(HOSTNAME, "127.0.0.1")
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    return {"tls_cert": str(cert_path), "tls_key": str(key_path)}


async def _tls_gateway(start: Start, tls_files: dict[str, str]) -> GatewayHarness:
    harness = await start(**tls_files)
    assert harness.gw is not None
    await harness.gw.store.ensure_tenant(Tenant("acme"))
    await harness.gw.store.set_credentials("acme", "acme", hash_secret("right"))
    return harness


async def _starttls(client: RawClient, ca: trustme.CA, extra: bytes = b"") -> None:
    await client.send(b"STARTTLS\r\n" + extra)
    assert (await client.reply()).startswith("220")
    context = ssl.create_default_context()
    ca.configure_trust(context)
    await client.writer.start_tls(context, server_hostname=HOSTNAME)


async def test_commands_injected_after_starttls_are_discarded(
    start: Start, tls_files: dict[str, str], ca: trustme.CA
) -> None:
    harness = await _tls_gateway(start, tls_files)
    client = await RawClient.connect(harness.port, UNTRUSTED)
    try:
        assert (await client.reply()).startswith("220 ")
        await client.send(b"EHLO client.test\r\n")
        assert "STARTTLS" in await client.reply()
        # RFC 3207 §4.2: what followed STARTTLS in the clear must not be run inside TLS
        await _starttls(client, ca, extra=b"RSET\r\nMAIL FROM:<>\r\n")
        await client.send(b"EHLO client.test\r\n")
        first = await client.reply()
        assert first.startswith("250-"), first  # the EHLO reply, not the RSET's or MAIL's
        assert "AUTH" in first
        await client.send(b"NOOP\r\n")
        assert (await client.reply()).startswith("250")
    finally:
        await client.close()


async def test_auth_brute_force_is_cut_off(
    start: Start, tls_files: dict[str, str], ca: trustme.CA
) -> None:
    harness = await _tls_gateway(start, tls_files)
    client = await RawClient.connect(harness.port, UNTRUSTED)
    wrong = base64.b64encode(b"\x00acme\x00wrong").decode()
    try:
        assert (await client.reply()).startswith("220 ")
        await client.send(b"EHLO client.test\r\n")
        await client.reply()
        await _starttls(client, ca)
        await client.send(b"EHLO client.test\r\n")
        await client.reply()
        answers = []
        for _ in range(3):
            await client.send(f"AUTH PLAIN {wrong}\r\n".encode())
            answers.append(await client.reply())
        assert answers == [str(replies.AUTH_FAILED)] * 2 + [str(replies.TOO_MANY_AUTH_FAILURES)]
        assert await client.closed()
    finally:
        await client.close()
    # and the address stays locked out for a while, even with the right password
    again = await RawClient.connect(harness.port, UNTRUSTED)
    try:
        await again.reply()
        await again.send(b"EHLO client.test\r\n")
        await again.reply()
        await _starttls(again, ca)
        await again.send(b"EHLO client.test\r\n")
        await again.reply()
        right = base64.b64encode(b"\x00acme\x00right").decode()
        await again.send(f"AUTH PLAIN {right}\r\n".encode())
        assert await again.reply() == str(replies.TOO_MANY_AUTH_FAILURES)
    finally:
        await again.close()


async def test_a_failed_handshake_is_one_warning_without_a_traceback(
    start: Start, tls_files: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    harness = await _tls_gateway(start, tls_files)
    caplog.set_level(logging.INFO)
    client = await RawClient.connect(harness.port, UNTRUSTED)
    try:
        assert (await client.reply()).startswith("220 ")
        await client.send(b"EHLO client.test\r\n")
        await client.reply()
        await client.send(b"STARTTLS\r\n")
        assert (await client.reply()).startswith("220")
        await client.send(b"this is not a TLS ClientHello\r\n" * 4)
        assert await client.closed()
    finally:
        await client.close()
    await asyncio.sleep(0.2)
    failed = [r for r in caplog.records if r.getMessage() == "smtp.tls_handshake_failed"]
    assert len(failed) == 1
    assert failed[0].levelno == logging.WARNING
    assert failed[0].exc_info is None
    loud = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert loud == [], [(r.name, r.getMessage()) for r in loud]


async def test_an_application_that_logged_in_may_open_many_connections(
    start: Start, tls_files: dict[str, str], ca: trustme.CA
) -> None:
    """AUTH lifts the per-client limits of its address (a batch sent one connection a
    message): without it the fourth connection this minute would get 421 4.7.0."""
    harness = await start(max_connections_per_minute=3, max_sessions_per_client=2, **tls_files)
    assert harness.gw is not None
    await harness.gw.store.ensure_tenant(Tenant("acme"))
    await harness.gw.store.set_credentials("acme", "acme", hash_secret("right"))
    client = await RawClient.connect(harness.port, UNTRUSTED)
    try:
        await client.reply()
        await client.send(b"EHLO client.test\r\n")
        await client.reply()
        await _starttls(client, ca)
        await client.send(b"EHLO client.test\r\n")
        await client.reply()
        right = base64.b64encode(b"\x00acme\x00right").decode()
        await client.send(f"AUTH PLAIN {right}\r\n".encode())
        assert await client.reply() == str(replies.AUTH_OK)
    finally:
        await client.close()
    held = [await RawClient.connect(harness.port, UNTRUSTED) for _ in range(6)]
    try:
        greetings = [await c.reply() for c in held]
        assert all(g.startswith("220 ") for g in greetings), greetings
    finally:
        for c in held:
            await c.close()
