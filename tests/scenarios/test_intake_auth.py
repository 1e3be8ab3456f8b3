"""AUTH at intake: only after STARTTLS, as a tenant, with brute-force throttling."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
import trustme

from gateway.core import replies
from gateway.core.model import Tenant
from gateway.services.credentials import hash_secret
from tests.scenarios.harness import HOSTNAME, GatewayHarness

UNTRUSTED = ["127.0.0.250/32"]  # the test client (127.0.0.1) is not in it
MESSAGE = (
    b"From: Acme <billing@acme.example>\r\nTo: bob@example.com\r\nSubject: Invoice\r\n"
    b"\r\nHello Bob.\r\n"
)


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


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def start(harness: GatewayHarness, tls_files: dict[str, str], **smtp: Any) -> None:
    await harness.start(smtp={"trusted_networks": UNTRUSTED, **tls_files, **smtp})
    assert harness.gw is not None
    await harness.gw.store.ensure_tenant(Tenant("acme"))
    await harness.gw.store.set_credentials("acme", "acme", hash_secret("pw"))


def client(harness: GatewayHarness, ca: trustme.CA) -> aiosmtplib.SMTP:
    return aiosmtplib.SMTP(
        hostname="127.0.0.1",
        port=harness.port,
        local_hostname="client.test",
        start_tls=False,
        tls_context=client_context(ca),
        timeout=10,
    )


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
async def test_auth_after_starttls_sends_as_the_tenant(
    harness: GatewayHarness, tls_files: dict[str, str], ca: trustme.CA, mechanism: str
) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    await start(harness, tls_files)
    smtp = client(harness, ca)
    async with smtp:
        code, _ = await smtp.ehlo()
        assert code == 250
        for extension in ("size", "8bitmime", "smtputf8", "pipelining", "starttls"):
            assert smtp.supports_extension(extension), extension
        assert smtp.supports_extension("enhancedstatuscodes")
        assert not smtp.supports_extension("auth")

        await smtp.starttls()
        code, _ = await smtp.ehlo()
        assert code == 250
        assert smtp.supports_extension("auth")
        assert set(smtp.server_auth_methods) == {"plain", "login"}
        assert smtp.supports_extension("enhancedstatuscodes")

        if mechanism == "PLAIN":
            response = await smtp.auth_plain("acme", "pw")
        else:
            response = await smtp.auth_login("acme", "pw")
        assert (response.code, response.message) == (
            replies.AUTH_OK.code,
            f"{replies.AUTH_OK.enhanced} {replies.AUTH_OK.text}",
        )
        errors, reply = await smtp.sendmail("billing@acme.example", ["bob@example.com"], MESSAGE)
    assert errors == {}
    assert reply.startswith(f"{replies.QUEUED.enhanced} {replies.QUEUED.text} ")

    (received,) = await mx.wait_for(1, timeout=10)
    assert received.rcpt_tos == ("bob@example.com",)
    assert received.content.endswith(MESSAGE)
    assert b"with ESMTPSA id" in received.content.split(b"\r\n\r\n")[0]
    (row,) = await harness.recipients("bob@example.com")
    assert row.tenant == "acme"


async def test_auth_before_starttls_is_refused_and_not_advertised(
    harness: GatewayHarness, tls_files: dict[str, str], ca: trustme.CA
) -> None:
    await start(harness, tls_files)
    smtp = client(harness, ca)
    async with smtp:
        await smtp.ehlo()
        assert smtp.supports_extension("starttls")
        assert not smtp.supports_extension("auth")
        blob = "AGFjbWUAcHc="  # base64("\0acme\0pw")
        response = await smtp.execute_command(b"AUTH", b"PLAIN", blob.encode())
        assert str(replies.Reply(response.code, *response.message.split(" ", 1))) == str(
            replies.AUTH_NEEDS_TLS
        )
        # still unauthenticated: relaying is refused
        await smtp.mail("billing@acme.example")
        with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
            await smtp.rcpt("bob@example.com")
    assert refused.value.code == replies.AUTH_REQUIRED.code
    assert refused.value.message == f"{replies.AUTH_REQUIRED.enhanced} {replies.AUTH_REQUIRED.text}"


async def test_repeated_wrong_passwords_are_throttled(
    harness: GatewayHarness, tls_files: dict[str, str], ca: trustme.CA
) -> None:
    await start(harness, tls_files, auth_max_failures=3)
    failed = f"{replies.AUTH_FAILED.enhanced} {replies.AUTH_FAILED.text}"
    throttled = f"{replies.TOO_MANY_AUTH_FAILURES.enhanced} {replies.TOO_MANY_AUTH_FAILURES.text}"

    smtp = client(harness, ca)
    await smtp.connect()
    await smtp.ehlo()
    await smtp.starttls()
    await smtp.ehlo()
    for _ in range(2):
        with pytest.raises(aiosmtplib.SMTPAuthenticationError) as error:
            await smtp.auth_plain("acme", "wrong")
        assert (error.value.code, error.value.message) == (replies.AUTH_FAILED.code, failed)
    with pytest.raises(aiosmtplib.SMTPAuthenticationError) as error:
        await smtp.auth_plain("acme", "wrong")
    assert (error.value.code, error.value.message) == (
        replies.TOO_MANY_AUTH_FAILURES.code,
        throttled,
    )
    # the server hung up: the next command finds the connection gone
    with pytest.raises(aiosmtplib.SMTPServerDisconnected):
        await smtp.noop()
    smtp.close()

    # a new connection from the same client within the window: 421 at AUTH, even when right
    again = client(harness, ca)
    await again.connect()
    await again.ehlo()
    await again.starttls()
    await again.ehlo()
    with pytest.raises(aiosmtplib.SMTPAuthenticationError) as error:
        await again.auth_plain("acme", "pw")
    assert (error.value.code, error.value.message) == (
        replies.TOO_MANY_AUTH_FAILURES.code,
        throttled,
    )
    with pytest.raises(aiosmtplib.SMTPServerDisconnected):
        await again.noop()
    again.close()
