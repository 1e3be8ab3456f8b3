"""A login's default stream (issue 15 item 3), over real SMTP with AUTH after STARTTLS, on
SQLite and PostgreSQL: the credential API sets it, the intake checks each ``RCPT`` of that
login against it, and another login of the same tenant keeps the tenant's default."""

from __future__ import annotations

from typing import Any

import trustme

from gateway.core import replies
from tests.scenarios.admin_api import ADMIN, admin
from tests.scenarios.harness import GatewayHarness
from tests.scenarios.test_intake_auth import UNTRUSTED, ca, client, tls_files  # noqa: F401

BOB, CAROL = "bob@example.com", "carol@example.com"
MESSAGE = b"From: Acme <news@acme.example>\r\nSubject: Ofertas\r\n\r\nHello.\r\n"


async def _send_as(
    harness: GatewayHarness, authority: trustme.CA, username: str, secret: str, rcpts: list[str]
) -> dict[str, Any]:
    smtp = client(harness, authority)
    async with smtp:
        await smtp.ehlo()
        await smtp.starttls()
        await smtp.ehlo()
        await smtp.auth_plain(username, secret)
        errors, _ = await smtp.sendmail("news@acme.example", rcpts, MESSAGE)
    return dict(errors)


async def test_a_login_that_defaults_to_marketing_is_checked_for_marketing(
    store_section: dict[str, Any],  # first: its database outlives the gateway
    harness: GatewayHarness,
    tls_files: dict[str, str],  # noqa: F811 (the fixture)
    ca: trustme.CA,  # noqa: F811
) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    await harness.start(
        smtp={"trusted_networks": UNTRUSTED, **tls_files}, admin=ADMIN, store=store_section
    )
    created = await admin(harness, "POST", "/api/v1/tenants", json={"name": "acme"})
    assert created.status_code == 201, created.text
    billing_secret = created.json()["credentials"]["secret"]
    news = await admin(
        harness,
        "POST",
        "/api/v1/tenants/acme/credentials",
        json={"username": "acme-news", "default_stream": "marketing"},
    )
    assert news.status_code == 200, news.text
    assert news.json()["default_stream"] == "marketing"
    shown = await admin(harness, "GET", "/api/v1/tenants/acme")
    assert shown.json()["login_streams"] == {"acme-news": "marketing"}
    assert shown.json()["default_stream"] is None  # the tenant's: transactional
    blocked = await admin(
        harness,
        "POST",
        "/api/v1/suppressions",
        json={"address": BOB, "tenant": "acme", "scope": "marketing", "note": "opt-out by phone"},
    )
    assert blocked.status_code == 201, blocked.text
    harness.gw.tenants.invalidate()  # type: ignore[union-attr]

    # The news login: Bob is refused at RCPT (marketing), Carol accepted.
    refused = await _send_as(harness, ca, "acme-news", news.json()["secret"], [BOB, CAROL])
    assert list(refused) == [BOB]
    assert refused[BOB][0] == replies.SUPPRESSED.code
    assert "marketing mail" in refused[BOB][1]
    (first,) = await mx.wait_for(1, timeout=10)
    assert first.rcpt_tos == (CAROL,)
    # The billing login (no default of its own: the tenant's transactional) reaches Bob.
    assert await _send_as(harness, ca, "acme", billing_secret, [BOB]) == {}
    second = (await mx.wait_for(2, timeout=10))[1]
    assert second.rcpt_tos == (BOB,)
