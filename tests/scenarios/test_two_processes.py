"""Two gateway processes on one SQLite store and one SMTP port (``smtp.reuse_port``).

Each is a full node with its own ``relay.node_id`` and admin listener: the kernel spreads the
connections over both, each commits before its ``250`` (their writers take turns on the
store's writer lock) and each relays. Every message is delivered exactly once, both
processes take part, and a third process with a node id already running is refused at start.
"""

from __future__ import annotations

import asyncio
import re
import urllib.request
from pathlib import Path

import pytest

from tests.fakes.dns_server import FakeDns
from tests.fakes.mx import free_port
from tests.scenarios.harness import (
    GatewaySubprocess,
    db_rows,
    published_mx,
    send_message,
    write_config,
)
from tests.waiting import wait_until

MESSAGES = 30


def _accepted(admin_port: int) -> float:
    """``gateway_messages_accepted_total`` summed over tenants, from the process's /metrics."""
    url = f"http://127.0.0.1:{admin_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    found = re.findall(r"^gateway_messages_accepted_total\{[^}]*\} (\S+)$", text, re.MULTILINE)
    return sum(float(v) for v in found)


def _process(config: Path, tmp: Path, node: str) -> tuple[GatewaySubprocess, int]:
    admin_port = free_port()
    logdir = tmp / node
    logdir.mkdir()
    env = {
        "GATEWAY__RELAY__NODE_ID": node,
        "GATEWAY__ADMIN__LISTEN": f"127.0.0.1:{admin_port}",
    }
    # Ready once its admin port answers: it starts after the SMTP listener, and the shared
    # SMTP port answers as soon as the first process listens.
    return GatewaySubprocess(config, admin_port, logdir, env), admin_port


async def test_two_processes_share_the_port_and_the_store(
    fake_dns: FakeDns, tmp_path: Path
) -> None:
    mx, smtp_port = published_mx(fake_dns, "mx-two.test"), free_port()
    config = write_config(
        fake_dns, tmp_path, mx.port, smtp_port, smtp={"reuse_port": True}, log={"level": "info"}
    )
    (first, admin1), (second, admin2) = (
        _process(config, tmp_path, "node-1"),
        _process(config, tmp_path, "node-2"),
    )
    same_id, _ = _process(config, tmp_path, "node-1-again")
    same_id.env["GATEWAY__RELAY__NODE_ID"] = "node-1"
    try:
        await first.start()
        await second.start()
        # Each message on a connection of its own: the kernel picks the process.
        rcpts = [f"user{n}@example.com" for n in range(MESSAGES)]
        results = await asyncio.gather(
            *(
                send_message(smtp_port, rcpt, f"<two-{n}@sender.example>")
                for n, rcpt in enumerate(rcpts)
            )
        )
        assert [code for code, _ in results] == [250] * MESSAGES, results
        await mx.wait_for(MESSAGES, timeout=20)
        await wait_until(
            lambda: (
                db_rows(tmp_path / "gateway.db", "SELECT DISTINCT status FROM recipients")
                == [("sent",)]
            ),
            20,
            what="every recipient sent",
        )
        await asyncio.sleep(1.5)  # past a retry interval: nothing more arrives
        assert sorted(r for m in mx.messages for r in m.rcpt_tos) == sorted(rcpts)
        counts = [_accepted(admin1), _accepted(admin2)]
        assert sum(counts) == MESSAGES
        assert min(counts) > 0, counts  # both processes accepted mail

        # A node id already running on the store: refused at start, naming the key.
        with pytest.raises(AssertionError, match="exited early"):
            await same_id.start(timeout=10)
        assert await same_id.wait_exit() == 64
        assert "relay.node_id" in same_id.output()
        assert "node-1" in same_id.output()
    finally:
        for process in (first, second, same_id):
            process.terminate()
        mx.stop()
