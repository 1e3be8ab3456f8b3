"""``gateway check`` as a real process: ``--config`` after the subcommand, and the tenant
the checks run as (``smtp.default_tenant`` without ``--tenant``, suppression and quota
included), against a real SQLite store written through the store API.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.core import replies
from gateway.core.model import NewMessage, Suppression, SuppressionReason, Tenant
from gateway.store.sqlite import SqliteStore
from tests.fakes.dns_server import FakeDns
from tests.fakes.mx import free_port
from tests.scenarios.harness import base_config, config_toml
from tests.scenarios.test_cli import gateway

EXIT_OK, EXIT_REFUSED, EXIT_TEMPORARY, EXIT_USAGE = 0, 1, 2, 64
GONE = "gone@example.com"


def _code(reply: replies.Reply) -> str:
    return f"{reply.code} {reply.enhanced}"


@pytest.fixture
def cfg(fake_dns: FakeDns, tmp_path: Path) -> Path:
    fake_dns.add_mx("example.com", 10, "mx.example.com")
    fake_dns.add_a("mx.example.com", "127.0.0.2")
    path = tmp_path / "site.toml"
    path.write_text(config_toml(base_config(fake_dns, tmp_path, free_port())), encoding="utf-8")
    return path


async def _store(tmp: Path) -> SqliteStore:
    store = SqliteStore(tmp / "gateway.db")
    await store.open()
    return store


async def test_check_without_tenant_runs_as_the_default_tenant_and_says_so(
    cfg: Path, tmp_path: Path
) -> None:
    # A fresh store: the default tenant is not stored yet, as before the first `serve`; the
    # SMTP intake would still take a trusted client's mail as that tenant.
    store = await _store(tmp_path)
    try:
        assert await store.get_tenant("default") is None
        await store.add_suppression(
            Suppression("default", GONE, SuppressionReason.NONEXISTENT_ADDRESS, datetime.now(UTC))
        )
    finally:
        await store.close()

    for argv in (("check", "--config", str(cfg), GONE), ("check", GONE, "--config", str(cfg))):
        code, out, err = await gateway(*argv)
        assert code == EXIT_REFUSED, (argv, out, err)
        lines = out.splitlines()
        assert lines[0] == "tenant: default (smtp.default_tenant)"
        assert f"{GONE}: refused (suppressed)" in lines[1]
        assert _code(replies.SUPPRESSED) in lines[1]
        assert "nonexistent_address" in lines[1]

    code, out, _ = await gateway("check", "ana@example.com", "--config", str(cfg))
    assert code == EXIT_OK
    assert out.splitlines() == [
        "tenant: default (smtp.default_tenant)",
        "ana@example.com: would be accepted",
    ]

    # Another tenant has no suppression for the address: checked as that tenant, accepted.
    assert (await gateway("tenant", "add", "acme", "--config", str(cfg)))[0] == EXIT_OK
    code, out, _ = await gateway("check", "--tenant", "acme", GONE, "--config", str(cfg))
    assert code == EXIT_OK
    assert out.splitlines()[0] == "tenant: acme"
    code, _, err = await gateway("check", "--tenant", "nope", GONE, "--config", str(cfg))
    assert code == EXIT_USAGE
    assert "no such tenant: nope" in err


async def test_check_without_tenant_counts_the_default_tenants_quota(
    cfg: Path, tmp_path: Path
) -> None:
    store = await _store(tmp_path)
    try:
        await store.ensure_tenant(Tenant("default", hourly_quota=1))
        await store.enqueue(
            NewMessage(
                queue_id="Q0000000000000000001",
                tenant="default",
                mail_from="billing@app.test",
                recipients=("ana@example.com",),
                content=b"Subject: Invoice\r\n\r\nbody\r\n",
                message_id="<q1@app.test>",
                subject="Invoice",
                received_at=datetime.now(UTC),
            ),
            timedelta(hours=1),
        )
    finally:
        await store.close()
    code, out, _ = await gateway("check", "bia@example.com", "--config", str(cfg))
    assert code == EXIT_TEMPORARY
    lines = out.splitlines()
    assert lines[0] == "tenant: default (smtp.default_tenant)"
    assert "refused (quota)" in lines[1]
    assert _code(replies.QUOTA_EXHAUSTED) in lines[1]

    # send-test checks as the same stored tenant: the quota stops it before any SMTP.
    code, out, _ = await gateway("send-test", "--to", "bia@example.com", "--config", str(cfg))
    assert code == EXIT_TEMPORARY
    assert f"refused: {_code(replies.QUOTA_EXHAUSTED)}" in out
    assert "2. route" not in out


async def test_config_before_and_after_the_subcommand_must_agree(cfg: Path) -> None:
    code, _, err = await gateway(
        "--config", str(cfg), "check", "a@example.com", "--config", "other.toml"
    )
    assert code == EXIT_USAGE
    assert str(cfg) in err
    assert "other.toml" in err
    code, out, _ = await gateway(
        "--config", str(cfg), "check", "a@example.com", "--config", str(cfg)
    )
    assert code == EXIT_OK, out
