"""``gateway serve`` on every core: start one worker process per core, watch them, stop them.

With ``smtp.workers`` above one, ``serve`` does not run a node itself: it starts each worker
as ``gateway serve`` with its role in the environment (``gateway.workers``) and settings of
its own as ``GATEWAY__SECTION__KEY`` overrides — ``smtp.reuse_port`` on, a node id of its
own (``relay.node_id`` or ``smtp.hostname``, then ``-<n>``: stable, so a restarted worker
takes back its own leases), the admin and public listeners on worker 0 only, and a listen
port of ``0`` made one real port first so that every worker shares it. A worker that dies is
started again after a pause (1 s doubling to 30 s); one that keeps dying (five times in a
minute) stops the service with exit code 1 rather than loop. ``SIGTERM``/``SIGINT`` is passed
to every worker, which drains as a single process does; after ``relay.shutdown_grace`` and
a margin, any worker still running is killed. A worker dies with the supervisor (Linux
``PR_SET_PDEATHSIG``), so a ``kill -9`` of the supervisor leaves no orphan serving mail.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from gateway.config import Config, HostPort
from gateway.observe.logging import log_event
from gateway.store import open_store
from gateway.workers import ENV_DIR, ENV_WORKER

log = logging.getLogger("gateway.workers")

_TICK = 0.2  # seconds between looks at the workers
_RESTART_FIRST, _RESTART_MAX = 1.0, 30.0
_CRASHES_ALLOWED, _CRASH_WINDOW = 5, 60.0
_STOP_MARGIN = 15.0  # seconds past shutdown_grace before a worker is killed
_PR_SET_PDEATHSIG = 1


@dataclass
class _Worker:
    index: int
    proc: subprocess.Popen[bytes] | None = None
    crashes: deque[float] = field(default_factory=deque)
    restart_at: float | None = None
    pause: float = _RESTART_FIRST


def supervise(config_path: str | None, config: Config) -> int:
    """Run ``config.smtp.workers`` worker processes until a signal; the exit code."""
    count = config.smtp.workers
    directory = Path(tempfile.mkdtemp(prefix="gateway-workers-"))  # mode 0700
    pinned, overrides = _pin_ports(config)
    workers = [_Worker(i) for i in range(count)]
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for worker in workers:
            if worker.proc is not None and worker.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.proc.send_signal(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    failed = False
    try:
        # The store is created and migrated here, once, before any worker opens it: workers
        # opening a new SQLite file at the same moment race to create it ("database is
        # locked" on one of them).
        asyncio.run(_prepare_store(config))
        log_event(log, "workers.starting", count=count)
        for worker in workers:
            _start(worker, config_path, config, directory, overrides)
        while not stopping:
            time.sleep(_TICK)
            now = time.monotonic()
            for worker in workers:
                if stopping:
                    break
                failed = _look_after(worker, now, config_path, config, directory, overrides)
                if failed:
                    stop(signal.SIGTERM, None)
        return _wait_all(workers, config) or int(failed)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sock in pinned:
            sock.close()
        shutil.rmtree(directory, ignore_errors=True)


async def _prepare_store(config: Config) -> None:
    store = open_store(config.store)
    await store.open()
    await store.close()


def _look_after(
    worker: _Worker,
    now: float,
    config_path: str | None,
    config: Config,
    directory: Path,
    overrides: dict[str, str],
) -> bool:
    """Restart ``worker`` if it died and its pause is over; true when it keeps dying."""
    if worker.restart_at is not None:
        if now >= worker.restart_at:
            worker.restart_at = None
            _start(worker, config_path, config, directory, overrides)
        return False
    assert worker.proc is not None
    code = worker.proc.poll()
    if code is None:
        if worker.crashes and now - worker.crashes[-1] > _CRASH_WINDOW:
            worker.pause = _RESTART_FIRST  # it has been up a while: forgive
        return False
    worker.crashes.append(now)
    while worker.crashes and now - worker.crashes[0] > _CRASH_WINDOW:
        worker.crashes.popleft()
    if len(worker.crashes) >= _CRASHES_ALLOWED:
        log_event(
            log, "workers.giving_up", logging.ERROR, worker=worker.index, exit_code=code,
            crashes=len(worker.crashes),
        )  # fmt: skip
        return True
    log_event(
        log, "workers.died", logging.ERROR, worker=worker.index, exit_code=code,
        restart_in=worker.pause,
    )  # fmt: skip
    worker.restart_at = now + worker.pause
    worker.pause = min(worker.pause * 2, _RESTART_MAX)
    return False


def _start(
    worker: _Worker,
    config_path: str | None,
    config: Config,
    directory: Path,
    overrides: dict[str, str],
) -> None:
    env = dict(os.environ)
    env.update(overrides)
    env.update(_role_env(worker.index, config, directory))
    command = [sys.executable, "-m", "gateway"]
    if config_path:
        command += ["--config", config_path]
    command.append("serve")
    worker.proc = subprocess.Popen(command, env=env, preexec_fn=_die_with_parent)  # noqa: S603, PLW1509
    log_event(log, "workers.started", worker=worker.index, pid=worker.proc.pid)


def _role_env(index: int, config: Config, directory: Path) -> dict[str, str]:
    base = config.relay.node_id or config.smtp.hostname or socket.gethostname()
    env = {
        ENV_WORKER: f"{index}/{config.smtp.workers}",
        ENV_DIR: str(directory),
        "GATEWAY__SMTP__WORKERS": "1",
        "GATEWAY__SMTP__REUSE_PORT": "true",
        "GATEWAY__RELAY__NODE_ID": f'"{base}-{index}"',
    }
    if index > 0:
        env["GATEWAY__ADMIN__LISTEN"] = '""'
        env["GATEWAY__PUBLIC__LISTEN"] = '""'
    return env


def _pin_ports(config: Config) -> tuple[list[socket.socket], dict[str, str]]:
    """A listen address with port 0 becomes one free port that every worker shares: bound
    here (``SO_REUSEPORT``, never listening) until the service stops, so nothing else takes
    it meanwhile."""
    pinned: list[socket.socket] = []
    overrides: dict[str, str] = {}
    for key, endpoint in (
        ("SMTP__LISTEN", config.smtp.listen),
        ("BOUNCE__LISTEN", config.bounce.listen),
    ):
        if endpoint is None or endpoint.port != 0:
            continue
        family = socket.AF_INET6 if ":" in endpoint.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((endpoint.host, 0))
        pinned.append(sock)
        overrides[f"GATEWAY__{key}"] = f'"{HostPort(endpoint.host, sock.getsockname()[1])}"'
    return pinned, overrides


def _wait_all(workers: list[_Worker], config: Config) -> int:
    """Wait for every worker to finish draining; kill the ones past the grace; 0 when all
    ended cleanly."""
    deadline = time.monotonic() + config.relay.shutdown_grace.total_seconds() + _STOP_MARGIN
    code = 0
    for worker in workers:
        proc = worker.proc
        if proc is None or (worker.restart_at is not None and proc.poll() is not None):
            continue
        try:
            result = proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log_event(log, "workers.killed", logging.ERROR, worker=worker.index)
            proc.kill()
            result = proc.wait()
        if result not in (0, -signal.SIGTERM, -signal.SIGINT):
            code = 1
    log_event(log, "workers.stopped", exit_code=code)
    return code


def _die_with_parent() -> None:
    """In the child, before exec: the kernel sends it SIGKILL when the supervisor dies."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
