"""The path every operator takes first, as they take it: a fresh virtual environment,
``pip install .`` (not editable, no extras) from a copy of the checkout, then the installed
``gateway`` command — every subcommand's ``--help``, and ``gateway serve --config CFG``
delivering one message to a loopback MX, answering ``/healthz``, ``/metrics``, the login
page (a template shipped as package data) and the OpenAPI document, and stopping cleanly
on SIGTERM.

Nothing here imports the checkout into the gateway process: the commands run from the
temporary environment, in a directory outside the checkout, with no ``PYTHONPATH``, so a
module that only the test extra brings (httpx was one) fails here as it fails for a user.
pip reaches PyPI (or its cache) for the runtime dependencies, as ``pip install .`` does.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import urllib.request
import venv
from pathlib import Path

import pytest

from tests.fakes.dns_server import FakeDns
from tests.fakes.mx import free_port
from tests.install.source import copy_checkout
from tests.scenarios.harness import published_mx, send_message, write_config

# Every runnable command, walked from the parser (a new subcommand is covered by itself).
from tests.unit.test_cli_config_option import COMMANDS

# Copied into the temporary source tree: what `pip install .` needs, nothing of the checkout's
# state (the venv, the store, caches) and no tests.
_SOURCE = ("pyproject.toml", "README.md", "gateway", "config")
_PIP_SECONDS = 600


def _clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GATEWAY", "PYTHON", "VIRTUAL_ENV")) and k != "PIP_REQUIRE_VIRTUALENV"
    }
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment with the gateway installed the way the README's operator does;
    its ``bin`` directory."""
    base = tmp_path_factory.mktemp("fresh-install")
    source = copy_checkout(_SOURCE, base / "src")
    target = base / "venv"
    venv.EnvBuilder(with_pip=True).create(target)
    done = subprocess.run(
        [str(target / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
         "-q", str(source)],
        cwd=base,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=_PIP_SECONDS,
        check=False,
    )
    assert done.returncode == 0, f"pip install . failed:\n{done.stdout}\n{done.stderr}"
    return target / "bin"


def test_the_install_has_no_test_extra(installed: Path) -> None:
    """The environment really is runtime-only: a test-only package is absent from it, so the
    other tests here would catch a runtime import that only the test extra satisfies."""
    probe = subprocess.run(
        [str(installed / "python"), "-c", "import pytest"],
        env=_clean_env(),
        cwd=installed,
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert probe.returncode != 0


@pytest.mark.parametrize("command", [(), *(path for path, _ in COMMANDS)], ids=" ".join)
def test_every_subcommand_help_runs(installed: Path, command: tuple[str, ...]) -> None:
    done = subprocess.run(
        [str(installed / "gateway"), *command, "--help"],
        env=_clean_env(),
        cwd=installed,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "usage: gateway" in done.stdout
    assert "Traceback" not in done.stderr


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return answer.status, answer.read().decode()


def _wait_listening(proc: subprocess.Popen[bytes], url: str, log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        assert proc.poll() is None, f"gateway exited at start:\n{log.read_text()}"
        try:
            if _get(url)[0] == 200:
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"gateway did not answer {url}:\n{log.read_text()}"
        time.sleep(0.1)


async def test_serve_delivers_answers_health_and_metrics_and_stops_on_sigterm(
    installed: Path, fake_dns: FakeDns, tmp_path: Path
) -> None:
    mx = published_mx(fake_dns, "mx-install.test", domain="example.com")
    smtp_port, admin_port = free_port(), free_port()
    config = write_config(
        fake_dns,
        tmp_path,
        mx.port,
        smtp_port,
        admin={"listen": f"127.0.0.1:{admin_port}"},
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        # The subcommand first, then --config: the form the README gives operators.
        proc = subprocess.Popen(
            [str(installed / "gateway"), "serve", "--config", str(config)],
            cwd=tmp_path,
            env=_clean_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        await asyncio.to_thread(
            _wait_listening, proc, f"http://127.0.0.1:{admin_port}/healthz", log, 30
        )
        code, reply = await send_message(smtp_port, "ana@example.com", "<install-1@app.example>")
        assert code == 250, reply
        (received,) = await mx.wait_for(1, timeout=15)
        assert received.rcpt_tos == ("ana@example.com",)

        status, _ = await asyncio.to_thread(_get, f"http://127.0.0.1:{admin_port}/healthz")
        assert status == 200
        status, metrics = await asyncio.to_thread(_get, f"http://127.0.0.1:{admin_port}/metrics")
        assert status == 200
        assert 'gateway_messages_accepted_total{tenant="default"} 1.0' in metrics
        # Package data: the support page's templates and the generated OpenAPI document.
        status, login = await asyncio.to_thread(_get, f"http://127.0.0.1:{admin_port}/login")
        assert (status, 'name="token"' in login) == (200, True)
        status, doc = await asyncio.to_thread(
            _get, f"http://127.0.0.1:{admin_port}/api/openapi.json"
        )
        assert (status, '"openapi":"3.1.0"' in doc) == (200, True)

        proc.send_signal(signal.SIGTERM)
        returncode = await asyncio.to_thread(proc.wait, 30)
        assert returncode == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        mx.stop()
    assert "Traceback" not in log.read_text()

