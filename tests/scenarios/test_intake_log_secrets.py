"""Logs never carry a password, an AUTH blob or a secret, at any level we configure."""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Iterator

import aiosmtplib
import pytest
import trustme

from gateway.core.model import Tenant
from gateway.observe.logging import JsonFormatter, configure, log_event
from gateway.services.credentials import hash_secret
from tests.scenarios.harness import SECRET, GatewayHarness
from tests.scenarios.test_intake_auth import UNTRUSTED, client, tls_files  # noqa: F401

PASSWORD = "correct-horse-battery-staple-42"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The production logging set-up (as ``gateway serve`` installs it), at DEBUG."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogger("mail.log").level)
    configure("debug", "json")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root.handlers[:] = [handler]
    try:
        yield stream
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        logging.getLogger("mail.log").setLevel(saved[2])


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


async def test_auth_session_logs_no_password_or_blob(
    harness: GatewayHarness,
    tls_files: dict[str, str],  # noqa: F811
    ca: trustme.CA,
    captured: io.StringIO,
) -> None:
    harness.mx("127.0.0.2", "example.com")
    await harness.start(smtp={"trusted_networks": UNTRUSTED, **tls_files})
    assert harness.gw is not None
    await harness.gw.store.ensure_tenant(Tenant("acme"))
    await harness.gw.store.set_credentials("acme", "acme", hash_secret(PASSWORD))
    smtp = client(harness, ca)
    async with smtp:
        await smtp.ehlo()
        await smtp.starttls()
        await smtp.ehlo()
        with pytest.raises(aiosmtplib.SMTPAuthenticationError):
            await smtp.auth_plain("acme", "wrong-" + PASSWORD)
        await smtp.auth_plain("acme", PASSWORD)
        await smtp.sendmail(
            "billing@acme.example",
            ["bob@example.com"],
            b"From: <billing@acme.example>\r\nSubject: x\r\n\r\nhi\r\n",
        )
    text = captured.getvalue()
    assert "smtp.auth_ok" in text  # the capture works: our events are there
    blobs = [
        base64.b64encode(f"\0acme\0{p}".encode()).decode() for p in (PASSWORD, "wrong-" + PASSWORD)
    ]
    for secret in (PASSWORD, *blobs, SECRET):
        assert secret not in text


def test_secret_looking_fields_are_redacted(captured: io.StringIO) -> None:
    log_event(
        logging.getLogger("gateway.test"),
        "x",
        password="p1",
        smarthost_password="p2",
        auth_data="blob",
        token="t",
        user="visible",
    )
    text = captured.getvalue()
    for secret in ("p1", "p2", "blob", '"t"'):
        assert secret not in text
    assert "visible" in text
