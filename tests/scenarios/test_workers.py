"""``gateway serve`` with ``smtp.workers`` (issue 11, item 4): one command starts a worker per
core, each a full node on the one store, sharing the SMTP port; one admin listener answers
for all of them (one ``/metrics``, one destinations list); a worker that dies is started
again; SIGTERM stops the service cleanly; a ``kill -9`` of the supervisor leaves no worker
serving. Real processes, real SMTP over loopback."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
from pathlib import Path

import httpx
import pytest

from gateway.core.model import Status
from tests.fakes.dns_server import FakeDns
from tests.fakes.mx import free_port
from tests.scenarios.admin_api import TOKEN
from tests.scenarios.harness import (
    GatewaySubprocess,
    db_rows,
    published_mx,
    send_message,
    write_config,
)
from tests.waiting import wait_until

WORKERS = 2
MESSAGES = 24


def _children(pid: int) -> list[int]:
    """The process ids of ``pid``'s children (Linux ``/proc``)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(p) for p in path.read_text().split()]
    except FileNotFoundError:
        return []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purpose (its parent has not reaped it yet).
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ", 1)[1][0] != "Z"


@pytest.fixture
def service(fake_dns: FakeDns, tmp_path: Path):  # type: ignore[no-untyped-def]
    mx = published_mx(fake_dns, "mx.workers.test")
    smtp_port, admin_port = free_port(), free_port()
    config = write_config(
        fake_dns,
        tmp_path,
        mx.port,
        smtp_port,
        smtp={"workers": WORKERS},
        admin={"listen": f"127.0.0.1:{admin_port}", "tokens": [TOKEN]},
    )
    gateway = GatewaySubprocess(config, smtp_port, tmp_path)
    yield gateway, mx, smtp_port, admin_port, tmp_path / "gateway.db"
    gateway.terminate()
    mx.stop()


async def _get(port: int, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        return await client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})


async def test_one_command_runs_a_worker_per_core_behind_one_port_and_one_admin(service) -> None:  # type: ignore[no-untyped-def]
    gateway, mx, smtp_port, admin_port, db = service
    await gateway.start()
    assert gateway.proc is not None
    supervisor = gateway.proc.pid
    await wait_until(lambda: len(_children(supervisor)) == WORKERS, 15, what="the workers up")

    # Every worker started on the first try: the supervisor created the store before any
    # of them opened it (two workers creating a new SQLite file at once: "database is locked").
    assert "workers.died" not in gateway.output()
    assert "database is locked" not in gateway.output()
    for i in range(MESSAGES):
        code, _ = await send_message(smtp_port, f"user{i}@example.com", f"<w{i}@test>")
        assert code == 250
    await mx.wait_for(MESSAGES, timeout=30)
    sent = db_rows(db, "SELECT count(*) FROM recipients WHERE status = ?", (Status.SENT.value,))
    assert sent == [(MESSAGES,)]
    # Each worker is its own node, holding a node id of its own on the store.
    locks = {p.name for p in db.parent.glob(f"{db.name}-node-*.lock")}
    expected = {
        f"{db.name}-node-{hashlib.sha256(f'fault-node-{i}'.encode()).hexdigest()[:16]}.lock"
        for i in range(WORKERS)
    }
    assert expected <= locks

    # One /metrics for the service: the workers' counters added up.
    response = await _get(admin_port, "/metrics")
    assert response.status_code == 200
    text = response.text
    line = next(ln for ln in text.splitlines() if ln.startswith("gateway_messages_accepted_total{"))
    assert float(line.rsplit(" ", 1)[1]) == MESSAGES
    assert text.count("# TYPE gateway_messages_accepted_total counter") == 1
    destinations = await _get(admin_port, "/api/v1/destinations")
    assert destinations.status_code == 200
    (site,) = destinations.json()["destinations"]
    assert site["site"] == "mx.workers.test"
    assert site["state"] == "active"

    # A worker that dies is started again, and the service keeps taking mail meanwhile.
    victim = _children(supervisor)[1]
    os.kill(victim, signal.SIGKILL)
    await wait_until(
        lambda: len(_children(supervisor)) == WORKERS and victim not in _children(supervisor),
        15,
        what="the dead worker replaced",
    )
    code, _ = await send_message(smtp_port, "after@example.com", "<after@test>")
    assert code == 250
    await mx.wait_for(MESSAGES + 1, timeout=30)

    # SIGTERM: every worker drains and the supervisor exits 0.
    workers = _children(supervisor)
    gateway.proc.send_signal(signal.SIGTERM)
    assert await gateway.wait_exit(timeout=30) == 0
    await wait_until(lambda: not any(_alive(pid) for pid in workers), 10, what="workers gone")


async def test_a_killed_supervisor_leaves_no_worker_serving(service) -> None:  # type: ignore[no-untyped-def]
    gateway, _mx, smtp_port, _admin_port, _db = service
    await gateway.start()
    assert gateway.proc is not None
    supervisor = gateway.proc.pid
    await wait_until(lambda: len(_children(supervisor)) == WORKERS, 15, what="the workers up")
    workers = _children(supervisor)
    gateway.kill()
    await wait_until(lambda: not any(_alive(pid) for pid in workers), 10, what="workers gone")

    async def refused() -> bool:
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", smtp_port)
        except OSError:
            return True
        writer.close()
        return False

    await wait_until(refused, 10, what="nothing listening on the SMTP port")
