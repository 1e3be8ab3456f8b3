"""A worker's place in a service of several processes (``smtp.workers``), and how the
workers show themselves as one.

``gateway serve`` with more than one worker starts each as ``gateway serve`` again with
``GATEWAY_WORKER="<index>/<count>"`` and ``GATEWAY_WORKER_DIR`` (a private directory) in
its environment (``cli.workers``). Every worker is a full node on the one store: it takes
SMTP connections on the shared port (``SO_REUSEPORT``) and runs a relay with its part of
each site's limits. Worker 0 alone serves the admin and public listeners; the others
answer it on a Unix socket in the private directory, one line in, one answer out:
``metrics`` (their Prometheus text) and ``sites`` (their relay's sites as JSON). Worker 0
merges them into one ``/metrics`` and one ``GET /api/v1/destinations``; a worker that does
not answer within a second (restarting) is left out of that answer.

Owns: the environment contract, the peer socket, and the merge of the answers. Does not own:
starting, watching and stopping the processes (``cli.workers``), the metrics
(``observe.metrics``) or the sites (``relay.sites``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from gateway.core.shaping import SiteState, SiteView, merge_views
from gateway.observe.logging import log_event
from gateway.observe.merge import merge_expositions

log = logging.getLogger("gateway.workers")

ENV_WORKER = "GATEWAY_WORKER"
ENV_DIR = "GATEWAY_WORKER_DIR"
PEER_TIMEOUT = 1.0  # seconds worker 0 waits for another worker's answer
_MAX_ANSWER = 64 * 1024 * 1024  # bytes: bounds what worker 0 reads from a peer


@dataclass(frozen=True, slots=True)
class WorkerRole:
    """This process's place: worker ``index`` of ``count``, sockets in ``directory``."""

    index: int
    count: int
    directory: Path

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> WorkerRole | None:
        """The role the supervisor gave this process; ``None`` when it runs alone.

        Raises:
            ValueError: the variables are set but malformed (not started by ``serve``).
        """
        env = os.environ if environ is None else environ
        value = env.get(ENV_WORKER)
        if not value:
            return None
        index, _, count = value.partition("/")
        if not (index.isdigit() and count.isdigit()) or not 0 <= int(index) < int(count):
            msg = f"{ENV_WORKER} must be <index>/<count>, got {value!r}"
            raise ValueError(msg)
        directory = env.get(ENV_DIR, "")
        if not directory:
            msg = f"{ENV_WORKER} is set without {ENV_DIR}"
            raise ValueError(msg)
        return cls(int(index), int(count), Path(directory))

    @property
    def leader(self) -> bool:
        """Worker 0: the one with the admin and public listeners."""
        return self.index == 0

    def socket(self, index: int) -> Path:
        return self.directory / f"worker-{index}.sock"

    def others(self) -> list[int]:
        return [i for i in range(self.count) if i != self.index]


async def serve_peer(
    role: WorkerRole,
    metrics: Callable[[], bytes],
    sites: Callable[[], Sequence[SiteView]],
    stopping: asyncio.Event,
) -> None:
    """Answer worker 0 on this worker's socket until ``stopping``."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(PEER_TIMEOUT):
                request = (await reader.readline()).strip()
            if request == b"metrics":
                writer.write(metrics())
            elif request == b"sites":
                writer.write(json.dumps([_view_json(v) for v in sites()]).encode())
            await writer.drain()
        except (OSError, TimeoutError):
            pass
        finally:
            writer.close()

    path = role.socket(role.index)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a previous run of this worker
    server = await asyncio.start_unix_server(answer, path=str(path))
    path.chmod(0o600)
    try:
        await stopping.wait()
    finally:
        server.close()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


async def merged_metrics(role: WorkerRole, own: bytes) -> bytes:
    """This worker's exposition merged with every other worker's."""
    answers = await asyncio.gather(*(_ask(role, i, b"metrics") for i in role.others()))
    texts = [own.decode()] + [a.decode() for a in answers if a is not None]
    return merge_expositions(texts)


async def merged_sites(role: WorkerRole, own: Sequence[SiteView]) -> list[SiteView]:
    """This worker's sites merged with every other worker's."""
    answers = await asyncio.gather(*(_ask(role, i, b"sites") for i in role.others()))
    groups: list[Sequence[SiteView]] = [own]
    for answer in answers:
        if answer is None:
            continue
        try:
            groups.append([_view_of(item) for item in json.loads(answer)])
        except (ValueError, KeyError, TypeError) as exc:
            log_event(log, "workers.bad_answer", logging.WARNING, error=str(exc))
    return merge_views(groups)


async def _ask(role: WorkerRole, index: int, request: bytes) -> bytes | None:
    try:
        async with asyncio.timeout(PEER_TIMEOUT):
            reader, writer = await asyncio.open_unix_connection(str(role.socket(index)))
            try:
                writer.write(request + b"\n")
                await writer.drain()
                return await reader.read(_MAX_ANSWER)
            finally:
                writer.close()
    except (OSError, TimeoutError) as exc:
        log_event(log, "workers.peer_unavailable", logging.DEBUG, worker=index, error=str(exc))
        return None


def _view_json(view: SiteView) -> dict[str, object]:
    return {
        "site": view.site,
        "provider": view.provider,
        "state": view.state.value,
        "since": view.since.isoformat() if view.since else None,
        "until": view.until.isoformat() if view.until else None,
        "queued": view.queued,
        "active": view.active,
        "connections": view.connections,
        "throttled": view.throttled,
        "last_error": view.last_error,
    }


def _view_of(item: dict[str, object]) -> SiteView:
    def time(value: object) -> datetime | None:
        return datetime.fromisoformat(str(value)) if value else None

    return SiteView(
        str(item["site"]),
        str(item["provider"]),
        SiteState(str(item["state"])),
        time(item["since"]),
        time(item["until"]),
        int(str(item["queued"])),
        int(str(item["active"])),
        int(str(item["connections"])),
        bool(item["throttled"]),
        str(item["last_error"]),
    )
