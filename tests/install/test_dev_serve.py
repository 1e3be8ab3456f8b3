"""The README's first command, as a newcomer runs it: ``python3 dev.py serve`` in a fresh
copy of the checkout (no ``.venv``, no ``var/``) installs from ``requirements/runtime.lock``,
starts the gateway, answers ``220`` on SMTP, and prints a token that logs into the support
page; the same token is printed on the next start; SIGTERM stops it with exit 0.

Only the listen addresses differ from the README (free loopback ports, through the
documented ``GATEWAY__*`` environment overrides), so parallel runs cannot collide.
"""

from __future__ import annotations

import http.cookiejar
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.fakes.mx import free_port
from tests.install.source import copy_checkout

_SOURCE = ("dev.py", "pyproject.toml", "README.md", "requirements", "gateway", "config")
_BANNER = re.compile(r"support page: (http://\S+/login)\s+token: (\S+)")


class _Served:
    """``python3 dev.py serve`` in ``root``, its output read line by line in a thread."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "dev.py", "serve"],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for(self, pattern: re.Pattern[str], seconds: float) -> re.Match[str]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                assert self.proc.poll() is None, "dev.py serve exited:\n" + "".join(self.seen)
                continue
            self.seen.append(line)
            found = pattern.search(line)
            if found:
                return found
        pytest.fail(f"no line matching {pattern.pattern!r}:\n" + "".join(self.seen))

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
            self.pump.join(10)  # EOF once the gateway, which shares the pipe, has exited
            assert self.proc.stdout is not None
            self.proc.stdout.close()


def _greeting(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        return sock.recv(512)


def _login(login_url: str, token: str) -> tuple[int, str]:
    """POST the token to the login form; follow the redirect with the session cookie."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    body = urllib.parse.urlencode({"token": token, "lang": "en"}).encode()
    try:
        with opener.open(login_url, data=body, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_dev_serve_in_a_fresh_copy_answers_smtp_and_prints_a_working_login(
    tmp_path: Path,
) -> None:
    root = copy_checkout(_SOURCE, tmp_path / "clone")
    smtp_port, admin_port = free_port(), free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY", "VIRTUAL_ENV"))
    }
    env["GATEWAY__SMTP__LISTEN"] = f'"127.0.0.1:{smtp_port}"'
    env["GATEWAY__ADMIN__LISTEN"] = f'"127.0.0.1:{admin_port}"'

    served = _Served(root, env)
    try:
        found = served.wait_for(_BANNER, seconds=600)
        login_url, token = found.group(1), found.group(2)
        assert login_url == f"http://127.0.0.1:{admin_port}/login"
        assert _greeting(smtp_port).startswith(b"220 ")

        status, page = _login(login_url, token)
        assert status == 200, page
        assert "logout" in page.lower()
        status, page = _login(login_url, token + "x")
        assert status == 401

        # The token is kept (owner-only) and only its hash reaches the gateway's config.
        kept = root / "var" / "admin-token"
        assert kept.read_text().strip() == token
        assert kept.stat().st_mode & 0o077 == 0
        assert token not in "".join(served.seen).replace(f"token: {token}", "")
    finally:
        assert served.stop() == 0, "".join(served.seen)

    again = _Served(root, env)
    try:
        assert again.wait_for(_BANNER, seconds=120).group(2) == token
    finally:
        assert again.stop() == 0, "".join(again.seen)
