"""Schemathesis against the served OpenAPI document (issue 14 item 8).

The admin app is served on loopback by ``serve_http`` in the test's event loop (its store
lives there); ``st run`` (schemathesis's command line, in a subprocess) reads
``/api/openapi.json`` from it and runs every phase and every check, a bounded number of
cases per operation, with a full token. The app under test has no relay and no webhook
dispatcher (the ``env`` fixture): a generated webhook URL is only stored, a generated
address only checked against the fake DNS server on loopback, and send-test only queues.
``loopback_only`` makes sure of it: while the run lasts, a connection from this process to
anything but loopback fails the test.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.admin.app import build_admin_app, serve_http
from tests.admin.support import TOKEN, Env

#: Cases per operation and phase: the whole run stays well under a minute.
MAX_EXAMPLES = 5
SEED = 14
ST = Path(sys.executable).with_name("st")

#: What no JSON Schema can say, so a schema-valid request may still be answered 422 (and the
#: document says so): whether an address is one the intake takes (its syntax as
#: ``core.addresses`` reads it, its domain's MX in DNS) for send-test and a manual block, and
#: an unblock's reason, required in the body *or* as ``?reason=``; whether a string is a CSV
#: file whose header names an address column (the suppression import).
CONFIG = """
[[operations]]
include-operation-id = "send_test"
checks.positive_data_acceptance.expected-statuses = [{statuses}]

[[operations]]
include-operation-id = "add_suppression"
checks.positive_data_acceptance.expected-statuses = [{statuses}]

[[operations]]
include-operation-id = "delete_suppression"
checks.positive_data_acceptance.expected-statuses = [{statuses}]

[[operations]]
include-operation-id = "import_suppressions"
checks.positive_data_acceptance.expected-statuses = [{statuses}]
""".format(statuses='"2xx", "3xx", "401", "403", "404", "409", "422", "429"')

#: Half the path parameters are ids and addresses the store holds (``_seed``), so the routes
#: behind them run past their 404 (the document has no links to find them by).
SEEDED = """
[dictionaries.queue_ids]
values = {queue_ids}

[dictionaries.addresses]
values = {addresses}

[parameters]
"path.queue_id" = {{ dictionary = "queue_ids", probability = 0.5 }}
"path.address" = {{ dictionary = "addresses", probability = 0.5 }}
"""


async def _seed(env: Env) -> str:
    """A queued message, a recipient with history and a suppression; the config for them."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    queue_ids = []
    for to in ("ana@example.com", "bia@example.com"):
        sent = await env.client.post("/api/v1/send-test", json={"to": to}, headers=headers)
        assert sent.status_code == 202, sent.text
        queue_ids.append(sent.json()["queue_id"])
    blocked = await env.client.post(
        "/api/v1/suppressions", json={"address": "eve@example.com"}, headers=headers
    )
    assert blocked.status_code == 201, blocked.text
    addresses = ["ana@example.com", "eve@example.com"]
    return SEEDED.format(queue_ids=json.dumps(queue_ids), addresses=json.dumps(addresses))


def _loopback(address: Any) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if not isinstance(host, str):
        return True  # a UNIX socket path (bytes) or a file descriptor
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return host.startswith("/")  # a UNIX socket path


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Refuse (and record) every connection and name look-up that would leave loopback."""
    escaped: list[Any] = []
    connect, connect_ex, getaddrinfo = (
        socket.socket.connect,
        socket.socket.connect_ex,
        socket.getaddrinfo,
    )

    def guarded_connect(sock: socket.socket, address: Any) -> None:
        if not _loopback(address):
            escaped.append(address)
            raise ConnectionRefusedError(f"test: {address!r} is not loopback")
        connect(sock, address)

    def guarded_connect_ex(sock: socket.socket, address: Any) -> int:
        if not _loopback(address):
            escaped.append(address)
            raise ConnectionRefusedError(f"test: {address!r} is not loopback")
        return connect_ex(sock, address)

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in (None, "localhost") and not _loopback(name):
            escaped.append(name)
            raise socket.gaierror(socket.EAI_NONAME, f"test: {name!r} is not loopback")
        return getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    return escaped


async def test_schemathesis_finds_nothing(
    env: Env, tmp_path: Path, loopback_only: list[Any]
) -> None:
    app = build_admin_app(env.deps)
    stopping = asyncio.Event()
    ports: list[int] = []
    report = tmp_path / "st.ndjson"
    async with asyncio.timeout(120), asyncio.TaskGroup() as tasks:
        tasks.create_task(serve_http(app, "127.0.0.1", 0, stopping, on_listening=ports.append))
        try:
            async with asyncio.timeout(5):
                while not ports:
                    await asyncio.sleep(0.01)
            base = f"http://127.0.0.1:{ports[0]}"
            child_env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()} | {
                "NO_PROXY": "*",
                "NO_COLOR": "1",
                "COLUMNS": "200",
            }
            config = tmp_path / "schemathesis.toml"
            config.write_text(CONFIG + await _seed(env))
            run = await asyncio.create_subprocess_exec(
                str(ST),
                "--config-file",
                str(config),
                "run",
                f"{base}/api/openapi.json",
                "--header",
                f"Authorization: Bearer {TOKEN}",
                "--checks",
                "all",
                "--max-examples",
                str(MAX_EXAMPLES),
                "--seed",
                str(SEED),
                "--workers",
                "1",
                "--generation-database",
                "none",
                "--report",
                "ndjson",
                "--report-ndjson-path",
                str(report),
                "--no-color",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=child_env,
                cwd=tmp_path,
            )
            try:
                out, _ = await run.communicate()
            finally:
                if run.returncode is None:  # timed out: no `st` left behind for the next test
                    run.kill()
                    await run.wait()
        finally:
            stopping.set()
    text = out.decode(errors="replace")
    assert not loopback_only, f"the app under test left loopback: {loopback_only}"
    assert run.returncode == 0, text[-20000:]
    assert report.exists()  # the run wrote its report: it ran at all
    print(text[text.find("SUMMARY") :])  # the figures, for pytest -rP
