"""kill -9 right after the 250 while the destination is down: the restarted gateway delivers
the message exactly once when the destination comes back.

The gateway runs as a real subprocess (``python -m gateway serve``) so that SIGKILL is a
real crash: no shutdown sequence, no lease release, no flush beyond what the store made
durable before the ``250``.
"""

from __future__ import annotations

import asyncio
import os
import smtplib
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.fakes.dns_server import FakeDns
from tests.fakes.mx import FakeMx, free_port
from tests.scenarios.harness import base_config

ROOT = Path(__file__).resolve().parents[2]
RCPT = "carol@example.com"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    msg = f"cannot write {type(value).__name__} as TOML"
    raise TypeError(msg)


def to_toml(raw: dict[str, dict[str, Any]]) -> str:
    """A tiny TOML writer: one table per section, scalar and list values."""
    lines: list[str] = []
    for section, values in raw.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
        lines.append("")
    return "\n".join(lines)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
    env["PYTHONPATH"] = str(ROOT)
    return env


class GatewayProcess:
    """``python -m gateway --config <path> serve`` with its output in files."""

    def __init__(self, config: Path, port: int, logdir: Path) -> None:
        self.config = config
        self.port = port
        self.logdir = logdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    async def start(self, timeout: float = 15) -> None:
        self.runs += 1
        out = (self.logdir / f"gateway-{self.runs}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "--config", str(self.config), "serve"],
            cwd=ROOT,
            env=_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        out.close()
        deadline = time.monotonic() + timeout
        while not await asyncio.to_thread(_port_open, self.port):
            assert self.proc.poll() is None, f"gateway exited early:\n{self.output()}"
            assert time.monotonic() < deadline, f"gateway did not listen:\n{self.output()}"
            await asyncio.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # SIGKILL: no handler runs
            self.proc.wait(10)

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def output(self) -> str:
        return "\n".join(
            p.read_text(errors="replace") for p in sorted(self.logdir.glob("gateway-*.log"))
        )


def _send(port: int) -> tuple[int, bytes]:
    content = (
        f"From: App <app@sender.example>\r\nTo: {RCPT}\r\nSubject: Crash test\r\n"
        "Message-ID: <crash-1@sender.example>\r\n\r\nHello after a crash.\r\n"
    ).encode()
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=10) as client:
        client.ehlo()
        client.mail("app@sender.example")
        code, _ = client.rcpt(RCPT)
        assert code == 250
        return client.data(content)


def _status(db: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        return conn.execute(
            "SELECT status, attempts FROM recipients WHERE address = ?", (RCPT,)
        ).fetchall()


async def test_kill_9_after_250_then_restart_delivers_exactly_once(
    fake_dns: FakeDns, tmp_path: Path
) -> None:
    mx_port = free_port()
    smtp_port = free_port()
    mx = FakeMx(host="127.0.0.2", port=mx_port, hostname="mx-crash.test")
    fake_dns.add_a("mx-crash.test", "127.0.0.2")
    fake_dns.add_mx("example.com", 10, "mx-crash.test")
    raw = base_config(
        fake_dns,
        tmp_path,
        mx_port,
        smtp={"listen": f"127.0.0.1:{smtp_port}"},
        relay={"node_id": "crash-node", "retry_intervals": ["1s"], "lease": "10m"},
        log={"level": "info", "format": "text"},
    )
    config = tmp_path / "gateway.toml"
    config.write_text(to_toml(raw), encoding="utf-8")
    gateway = GatewayProcess(config, smtp_port, tmp_path)
    try:
        # The destination is down: nothing listens on its address yet.
        await gateway.start()
        code, reply = await asyncio.to_thread(_send, smtp_port)
        assert code == 250, reply
        gateway.kill()
        assert gateway.proc is not None
        assert gateway.proc.returncode == -9

        # The message survived the crash, accepted and not yet delivered.
        rows = _status(tmp_path / "gateway.db")
        assert len(rows) == 1
        assert rows[0][0] in ("queued", "deferred"), rows

        await gateway.start()
        mx.start()  # the destination comes back
        (received,) = await mx.wait_for(1, timeout=10)
        assert received.rcpt_tos == (RCPT,)
        assert b"Hello after a crash." in received.content

        # Exactly once: nothing more arrives after a few retry intervals.
        await asyncio.sleep(2.5)
        assert len(mx.messages) == 1
        async with asyncio.timeout(5):
            while _status(tmp_path / "gateway.db")[0][0] != "sent":
                await asyncio.sleep(0.05)
        ((status, attempts),) = _status(tmp_path / "gateway.db")
        assert status == "sent"
        assert attempts >= 1
    finally:
        gateway.terminate()
        mx.stop()
