"""The typo check never refuses a working domain (issue 10, item 5).

Real SMTP in, real SMTP out, DNS from the loopback server, the admin API and the support
page over real HTTP. Only a known typo domain (the shipped list, changed by
``smtp.typo_domains``) is refused with 553 5.1.3; a near miss of a popular domain that
takes mail is accepted and carries a ``possible_typo`` warning naming the likely address;
one with neither MX nor A is refused by the domain check.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from gateway.core import replies
from gateway.core.model import EventType, Status
from gateway.core.status_text import guidance
from tests.fakes.dns_server import FakeDns
from tests.fakes.mx import free_port
from tests.scenarios.admin_api import ADMIN, admin
from tests.scenarios.harness import GatewayHarness, RawClient, base_config, config_toml

# Working domains of other companies, one dropped ".br" away from a Brazilian provider.
REAL_NEAR_MISSES = [
    ("bol.com", "bol.com.br"),
    ("terra.com", "terra.com.br"),
    ("uol.com", "uol.com.br"),
    ("ig.com", "ig.com.br"),
]


async def start(harness: GatewayHarness, **smtp: object) -> None:
    await harness.start(smtp=dict(smtp), admin=ADMIN)


async def rcpt(harness: GatewayHarness, address: str) -> str:
    client: RawClient = await harness.raw()
    async with client:
        assert (await client.command("EHLO client.test")).startswith("250")
        assert await client.command("MAIL FROM:<app@sender.example>") == str(replies.SENDER_OK)
        return await client.command(f"RCPT TO:<{address}>")


async def admin_get(harness: GatewayHarness, path: str, **params: str) -> httpx.Response:
    """GET ``path`` from the gateway's admin listener over loopback HTTP, with the token."""
    return await admin(harness, "GET", path, params=params)


def prefix(reply: replies.Reply) -> str:
    return f"{reply.code} {reply.enhanced} "


# --- a known typo domain: refused ---------------------------------------------------------


async def test_a_listed_typo_domain_is_refused_naming_the_suggestion(
    harness: GatewayHarness,
) -> None:
    harness.mx("127.0.0.2", "gmial.com")  # the squatted domain takes mail: refused all the same
    await start(harness)
    answer = await rcpt(harness, "maria@gmial.com")
    assert answer.startswith(prefix(replies.RECIPIENT_TYPO)), answer
    assert "did you mean maria@gmail.com?" in answer
    (event,) = await harness.events("maria@gmial.com")
    assert event.type is EventType.REJECTED
    assert event.details["reason"] == "typo"
    assert event.details["suggestion"] == "maria@gmail.com"

    # Support reads the suggestion in Portuguese (the default) and English, from the data.
    body = (await admin_get(harness, "/api/v1/recipients/maria@gmial.com")).json()
    assert (body["status"], body["reason"]) == ("rejected", "typo")
    assert body["rejection"]["suggestion"] == "maria@gmail.com"
    pt = body["guidance"]
    assert pt["lang"] == "pt-BR"
    assert "maria@gmail.com" in pt["what_to_do"]
    assert "Você quis dizer maria@gmail.com?" in pt["customer_message"]
    assert pt == {"lang": "pt-BR"} | {
        k: getattr(guidance(Status.REJECTED, None, "typo", "pt-BR", "maria@gmail.com"), k)
        for k in ("title", "what_to_do", "customer_message")
    }
    en = (await admin_get(harness, "/api/v1/recipients/maria@gmial.com", lang="en")).json()
    assert "Did you mean maria@gmail.com?" in en["guidance"]["customer_message"]


# --- a real domain near a popular one: accepted with a warning ------------------------------


@pytest.mark.parametrize(("domain", "meant"), REAL_NEAR_MISSES)
async def test_a_working_near_miss_is_accepted_with_a_possible_typo_warning(
    harness: GatewayHarness, domain: str, meant: str
) -> None:
    address, likely = f"ana@{domain}", f"ana@{meant}"
    mx = harness.mx("127.0.0.2", domain)
    await start(harness)
    assert await harness.send([address]) == {}
    (received,) = await mx.wait_for(1, timeout=10)
    assert received.rcpt_tos == (address,)
    row = await harness.wait_status(address, Status.SENT)

    events = await harness.events(address)
    kinds = [e.type for e in events]
    assert EventType.REJECTED not in kinds
    assert kinds.count(EventType.POSSIBLE_TYPO) == 1
    assert kinds[0] is EventType.QUEUED
    assert kinds[-1] is EventType.SENT
    (warning,) = [e for e in events if e.type is EventType.POSSIBLE_TYPO]
    assert warning.details["suggestion"] == likely
    assert warning.reason == "possible_typo"
    assert (warning.queue_id, warning.recipient_id) == (row.queue_id, row.recipient_id)
    assert likely in warning.text

    body = (await admin_get(harness, f"/api/v1/recipients/{address}")).json()
    assert body["status"] == "sent"  # the warning is not a status
    assert body["possible_typo"]["suggestion"] == likely
    assert body["possible_typo"]["queue_id"] == row.queue_id
    assert body["possible_typo"]["at"] == warning.at.isoformat()
    assert [e["suggestion"] for e in body["events"] if e["type"] == "possible_typo"] == [likely]

    en = await admin_get(harness, "/support", address=address, lang="en")
    assert en.status_code == 200
    assert f"did you mean <code>{likely}</code>?" in en.text
    pt = await admin_get(harness, "/support", address=address)
    assert f"você quis dizer <code>{likely}</code>?" in pt.text


async def test_an_address_without_a_near_miss_has_no_warning(harness: GatewayHarness) -> None:
    harness.mx("127.0.0.2", "example.com")
    await start(harness)
    await harness.deliver("ana@example.com")
    assert EventType.POSSIBLE_TYPO not in [e.type for e in await harness.events("ana@example.com")]
    body = (await admin_get(harness, "/api/v1/recipients/ana@example.com")).json()
    assert body["possible_typo"] is None
    page = await admin_get(harness, "/support", address="ana@example.com", lang="en")
    assert "did you mean" not in page.text


# --- a near miss that cannot take mail: refused by the domain check --------------------------


@pytest.mark.parametrize(
    ("address", "likely", "publish"),
    [
        ("ana@bol.com", "ana@bol.com.br", None),  # NXDOMAIN
        ("ana@terra.com", "ana@terra.com.br", "name"),  # the name exists, neither MX nor A
        ("ana@gmaik.com", "ana@gmail.com", None),  # a slip of the finger, not on the list
    ],
)
async def test_a_near_miss_without_mx_or_a_is_refused_by_the_domain_check(
    harness: GatewayHarness, address: str, likely: str, publish: str | None
) -> None:
    if publish == "name":
        harness.dns.add_name(address.rpartition("@")[2])
    await start(harness)
    answer = await rcpt(harness, address)
    assert answer.startswith(prefix(replies.NO_SUCH_DOMAIN)), answer
    assert f"did you mean {likely}?" in answer
    (event,) = await harness.events(address)
    assert event.type is EventType.REJECTED
    assert (event.details["reason"], event.details["suggestion"]) == ("no_such_domain", likely)
    body = (await admin_get(harness, f"/api/v1/recipients/{address}")).json()
    assert body["reason"] == "no_such_domain"
    assert likely in body["guidance"]["customer_message"]


# --- smtp.typo_domains and smtp.typo_check ---------------------------------------------------


async def test_config_adds_a_typo_domain_and_removes_a_shipped_one(
    harness: GatewayHarness,
) -> None:
    harness.mx("127.0.0.2", "gmali.com")
    mx = harness.mx("127.0.0.3", "gmial.com")
    await start(harness, typo_domains={"gmali.com": "gmail.com", "gmial.com": ""})
    # Added: refused, though a near miss alone would only be a warning.
    answer = await rcpt(harness, "ana@gmali.com")
    assert answer.startswith(prefix(replies.RECIPIENT_TYPO)), answer
    assert "did you mean ana@gmail.com?" in answer
    # Removed from the shipped list: accepted, still with the warning.
    assert await harness.send(["maria@gmial.com"]) == {}
    await mx.wait_for(1, timeout=10)
    await harness.wait_status("maria@gmial.com", Status.SENT)
    warnings = [
        e for e in await harness.events("maria@gmial.com") if e.type is EventType.POSSIBLE_TYPO
    ]
    assert [e.details["suggestion"] for e in warnings] == ["maria@gmail.com"]


async def test_warn_mode_accepts_a_listed_domain_and_records_the_warning(
    harness: GatewayHarness,
) -> None:
    mx = harness.mx("127.0.0.2", "gmial.com")
    await start(harness, typo_check="warn")
    assert await harness.send(["maria@gmial.com"]) == {}
    await mx.wait_for(1, timeout=10)
    await harness.wait_status("maria@gmial.com", Status.SENT)
    warnings = [
        e for e in await harness.events("maria@gmial.com") if e.type is EventType.POSSIBLE_TYPO
    ]
    assert [e.details["suggestion"] for e in warnings] == ["maria@gmail.com"]


async def test_off_mode_neither_refuses_nor_warns(harness: GatewayHarness) -> None:
    harness.mx("127.0.0.2", "gmial.com")
    harness.mx("127.0.0.3", "bol.com")
    await start(harness, typo_check="off")
    for address in ("maria@gmial.com", "ana@bol.com"):
        assert await harness.send([address]) == {}
        await harness.wait_status(address, Status.SENT)
        kinds = [e.type for e in await harness.events(address)]
        assert EventType.POSSIBLE_TYPO not in kinds
        assert EventType.REJECTED not in kinds


# --- gateway check ---------------------------------------------------------------------------


async def _check(config: Path, address: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    def work() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway", "--config", str(config), "check", address],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, **(env or {})},
        )

    done = await asyncio.to_thread(work)
    return done.returncode, done.stdout


async def test_gateway_check_warns_of_a_possible_typo(fake_dns: FakeDns, tmp_path: Path) -> None:
    fake_dns.add_mx("bol.com", 10, "mx.bol.example")
    fake_dns.add_mx("gmali.com", 10, "mx.bol.example")
    config = tmp_path / "gateway.toml"
    config.write_text(config_toml(base_config(fake_dns, tmp_path, free_port())), "utf-8")

    code, out = await _check(config, "ana@bol.com")
    assert code == 0, out
    assert "ana@bol.com: would be accepted" in out
    assert "warning: The recipient domain may be misspelt: did you mean ana@bol.com.br?" in out

    code, out = await _check(config, "ana@gmali.com")
    assert code == 0, out  # a near miss only
    code, out = await _check(
        config, "ana@gmali.com", {"GATEWAY__SMTP__TYPO_DOMAINS": '{ "gmali.com" = "gmail.com" }'}
    )
    assert code == 1, out
    assert "553 5.1.3" in out
    assert "did you mean: ana@gmail.com" in out
