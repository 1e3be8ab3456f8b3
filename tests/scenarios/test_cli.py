"""The ``gateway`` command line, run as a real process against a config file.

DNS answers come from the loopback FakeDns named in the config; destinations are FakeMx
servers on 127.0.0.x. Exit codes: 0 ok, 1 refused, 2 temporary, 64 usage/config.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.dns_server import FakeDns
from tests.fakes.mx import FakeMx, free_port
from tests.scenarios.harness import base_config, config_toml

CORPUS = Path(__file__).resolve().parents[2] / "tests" / "data" / "bounce-corpus" / "emails"


def _config(dns: FakeDns, tmp: Path, mx_port: int, **sections: dict) -> Path:
    path = tmp / "gateway.toml"
    path.write_text(config_toml(base_config(dns, tmp, mx_port, **sections)), encoding="utf-8")
    return path


async def gateway(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run ``python -m gateway ARGS`` (bounded) and return (exit code, stdout, stderr)."""

    def work() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, **(env or {})},
        )

    done = await asyncio.to_thread(work)
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def mx_port() -> int:
    return free_port()


async def test_check_accepts_refuses_and_reports_temporary_failures(
    fake_dns: FakeDns, tmp_path: Path, mx_port: int
) -> None:
    fake_dns.add_mx("example.com", 10, "mx.example.com")
    fake_dns.add_a("mx.example.com", "127.0.0.2")
    fake_dns.add_mx("gmial.com", 10, "mx.example.com")
    fake_dns.add_null_mx("nomail.example")
    fake_dns.set_servfail("broken.example")
    cfg = str(_config(fake_dns, tmp_path, mx_port))

    code, out, _ = await gateway("--config", cfg, "check", "Ana@Example.com")
    assert (code, out.splitlines()) == (
        0,
        ["tenant: default (smtp.default_tenant)", "ana@example.com: would be accepted"],
    )

    code, out, _ = await gateway("--config", cfg, "check", "maria@gmial.com")
    assert code == 1
    assert "553 5.1.3" in out
    assert "did you mean: maria@gmail.com" in out

    code, out, _ = await gateway("--config", cfg, "check", "x@nomail.example")
    assert code == 1
    assert "556 5.1.10" in out

    code, out, _ = await gateway("--config", cfg, "check", "x@broken.example")
    assert code == 2
    assert "451 4.4.3" in out

    code, out, _ = await gateway("--config", cfg, "check", "not an address")
    assert code == 1
    assert "(invalid)" in out


async def test_bad_config_names_the_key_and_exits_64(
    fake_dns: FakeDns, tmp_path: Path, mx_port: int
) -> None:
    cfg = str(_config(fake_dns, tmp_path, mx_port))
    code, _, err = await gateway("--config", cfg, "queue", env={"GATEWAY__RELAY__MX_PORT": '"x"'})
    assert code == 64
    assert "relay.mx_port" in err
    code, _, err = await gateway("--config", cfg, "queue", env={"GATEWAY__SMTP__NOPE": "1"})
    assert code == 64
    assert "smtp.nope" in err
    code, _, err = await gateway("--config", str(tmp_path / "missing.toml"), "queue")
    assert code == 64
    assert "not found" in err
    code, _, err = await gateway("--config", cfg, "frobnicate")
    assert code == 64


async def test_tenant_add_prints_credentials_once_and_stores_only_a_hash(
    fake_dns: FakeDns, tmp_path: Path, mx_port: int
) -> None:
    cfg = str(_config(fake_dns, tmp_path, mx_port))
    code, out, _ = await gateway("--config", cfg, "tenant", "add", "acme")
    assert code == 0
    password = next(line.split(": ", 1)[1] for line in out.splitlines() if "password:" in line)
    assert len(password) >= 24
    with sqlite3.connect(tmp_path / "gateway.db") as db:
        (stored,) = db.execute(
            "SELECT secret_hash FROM credentials WHERE username='acme'"
        ).fetchone()
    assert stored.startswith("scrypt$")
    assert password not in stored
    code, _, err = await gateway("--config", cfg, "tenant", "add", "acme")
    assert code == 1
    assert "exists" in err


async def test_queue_send_test_and_backup(fake_dns: FakeDns, tmp_path: Path, mx_port: int) -> None:
    fake_dns.add_mx("example.com", 10, "mx.example.com")
    fake_dns.add_a("mx.example.com", "127.0.0.2")
    cfg = str(_config(fake_dns, tmp_path, mx_port))
    code, out, _ = await gateway("--config", cfg, "queue")
    assert (code, out.strip()) == (0, "queue is empty")

    with FakeMx(host="127.0.0.2", port=mx_port, hostname="mx.example.com") as mx:
        code, out, _ = await gateway("--config", cfg, "send-test", "--to", "ana@example.com")
        assert code == 0, out
        assert "2. route: MX mx.example.com" in out
        assert "accepted: 250" in out
        (received,) = await mx.wait_for(1, timeout=5)
        assert received.rcpt_tos == ("ana@example.com",)

    code, out, _ = await gateway("--config", cfg, "send-test", "--to", "ana@example.com")
    assert code == 2  # the destination is gone now: temporary
    assert "no destination host could be reached" in out

    assert (await gateway("--config", cfg, "tenant", "add", "acme"))[0] == 0
    backup = tmp_path / "copy.db"
    code, _, _ = await gateway("--config", cfg, "backup", str(backup))
    assert code == 0
    with sqlite3.connect(backup) as db:
        assert db.execute("SELECT name FROM tenants").fetchall() == [("acme",)]


async def test_dkim_keygen_prints_the_txt_record(tmp_path: Path) -> None:
    key_file = tmp_path / "s1.pem"
    code, out, _ = await gateway("dkim", "keygen", "sender.example", "s1", "--out", str(key_file))
    assert code == 0
    assert out.startswith("s1._domainkey.sender.example.")
    assert "v=DKIM1; k=rsa; p=" in out
    assert key_file.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"


async def test_bounce_classify_reads_corpus_files() -> None:
    if not CORPUS.is_dir():
        pytest.fail(f"bounce corpus not found at {CORPUS}: restore it from git", pytrace=False)
    files = [str(CORPUS / "lhost-postfix-03.eml"), str(CORPUS / "arf-16.eml")]
    code, out, _ = await gateway("bounce", "classify", *files)
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert {r["file"] for r in rows} == set(files)
    postfix = next(r for r in rows if r["file"] == files[0])
    assert postfix["category"] == "nonexistent_address"
    arf = next(r for r in rows if r["file"] == files[1])
    assert (arf["category"], arf["kind"]) == ("complaint", "arf")
