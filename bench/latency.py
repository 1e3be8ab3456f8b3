"""Loopback latency and throughput: time from the gateway's ``250`` to arrival at the MX.

Starts a ``FakeDns`` (MX for the test domain -> a ``FakeMx`` on 127.0.0.2) and builds the
gateway in-process exactly as ``tests/scenarios/harness.py`` does, then sends N messages
from ``--sessions`` parallel SMTP client sessions (smtplib, one thread and one reused
connection per session). For every message it records when the client got the ``250`` to
the final dot and when the fake MX accepted the relayed copy (matched by a per-message
``X-Bench-Token`` header), and prints the median/p90/p99/max latency, the accepted and the
end-to-end messages per second.

For noise, the same N messages are first sent by the same clients straight to the fake MX
(no gateway) in the same run; the ratio of the two rates is printed.

Everything runs in one process: the gateway's event loop, the fake MX's thread and the
client threads share one interpreter (and its GIL), so the figures are a floor, not what a
gateway with the machine to itself does. Nothing leaves 127.0.0.0/8.

Usage::

    .venv/bin/python bench/latency.py [--messages 1000] [--sessions 10] [--warmup 20]
                                      [--body-bytes 1000] [--timeout 300]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import re
import smtplib
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway import config as config_module
from gateway.app import build, run, start_listeners
from tests.fakes.dns_server import FakeDns
from tests.fakes.mx import FakeMx, ReceivedMessage, free_port
from tests.scenarios.harness import base_config

DOMAIN = "example.com"  # the scenario tests' recipient domain (passes the typo check)
MX_HOST = "127.0.0.2"
MX_NAME = "mx-bench.test"
SENDER = "app@sender.example"
TOKEN = re.compile(rb"^X-Bench-Token: (\S+)\r?$", re.MULTILINE)
CLIENT_TIMEOUT = 30.0  # seconds per SMTP operation in a client thread


# --- arrivals at the fake MX ----------------------------------------------------------------------


class TimedList(list[ReceivedMessage]):
    """Stands in for ``FakeMx.messages``: stamps each message as the fake accepts it.

    ``append`` runs in the fake's thread just before it answers ``250``; the stamp is
    ``time.perf_counter()`` (CLOCK_MONOTONIC, the same clock in every thread).
    """

    def __init__(self) -> None:
        super().__init__()
        self.stamps: list[float] = []
        self.lock = threading.Lock()

    def append(self, item: ReceivedMessage) -> None:
        stamp = time.perf_counter()
        with self.lock:
            super().append(item)
            self.stamps.append(stamp)

    def arrivals(self) -> dict[str, float]:
        """Token -> arrival time (the first arrival of each token)."""
        with self.lock:
            pairs = list(zip(self, self.stamps, strict=True))
        out: dict[str, float] = {}
        for message, stamp in pairs:
            match = TOKEN.search(message.content)
            if match:
                out.setdefault(match.group(1).decode(), stamp)
        return out


# --- clients --------------------------------------------------------------------------------------


@dataclass
class Sent:
    token: str
    started: float
    accepted: float  # the 250 after the final dot


@dataclass
class ClientRun:
    """N messages over ``sessions`` reused smtplib connections, one thread each."""

    host: str
    port: int
    tokens: list[str]
    sessions: int
    body: bytes
    sent: list[Sent] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _clients: list[smtplib.SMTP] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)

    def content(self, token: str, n: int) -> bytes:
        return (
            f"From: App <{SENDER}>\r\nTo: <user{n % 100}@{DOMAIN}>\r\n"
            f"Subject: bench {token}\r\nMessage-ID: <{token}@sender.example>\r\n"
            f"X-Bench-Token: {token}\r\n\r\n"
        ).encode() + self.body

    def session(self, index: int) -> None:
        mine = [(n, t) for n, t in enumerate(self.tokens) if n % self.sessions == index]
        if not mine:
            return
        try:
            client = smtplib.SMTP(
                self.host, self.port, local_hostname="client.test", timeout=CLIENT_TIMEOUT
            )
        except OSError as exc:
            self._error(f"session {index}: connect: {exc}")
            return
        with self._lock:
            self._clients.append(client)
        try:
            client.ehlo()
            for n, token in mine:
                if self._stop.is_set():
                    return
                content = self.content(token, n)
                started = time.perf_counter()
                refused = client.sendmail(SENDER, [f"user{n % 100}@{DOMAIN}"], content)
                accepted = time.perf_counter()
                if refused:
                    self._error(f"{token}: refused {refused}")
                    continue
                with self._lock:
                    self.sent.append(Sent(token, started, accepted))
        except (OSError, smtplib.SMTPException) as exc:
            self._error(f"session {index}: {type(exc).__name__}: {exc}")
        finally:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                client.quit()
            client.close()

    def _error(self, text: str) -> None:
        with self._lock:
            self.errors.append(text)

    def abort(self) -> None:
        """Unblock the threads (overall timeout): stop and close every socket."""
        self._stop.set()
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            with contextlib.suppress(OSError):
                if client.sock is not None:
                    client.sock.close()

    async def run(self) -> tuple[float, float]:
        """Run every session in its own thread; returns (start, end) perf_counter times."""
        loop = asyncio.get_running_loop()
        executor = ThreadPoolExecutor(max_workers=self.sessions, thread_name_prefix="client")
        start = time.perf_counter()
        try:
            await asyncio.gather(
                *(loop.run_in_executor(executor, self.session, i) for i in range(self.sessions))
            )
        except BaseException:
            self.abort()
            raise
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
        return start, time.perf_counter()


# --- figures --------------------------------------------------------------------------------------


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


async def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.005
) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(interval)
    except TimeoutError:
        raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}") from None


def remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("overall benchmark timeout")
    return left


async def bench(args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.timeout
    body = (b"Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n" * 1000)[
        : args.body_bytes
    ]
    if not body.endswith(b"\r\n"):
        body += b"\r\n"

    with FakeDns() as dns, tempfile.TemporaryDirectory(prefix="gw-bench-") as tmp:
        mx_port = free_port()
        mx = FakeMx(host=MX_HOST, port=mx_port, hostname=f"mx-{MX_HOST}.test")
        received = TimedList()
        mx.messages = received
        mx.start()
        try:
            dns.add_a(MX_NAME, MX_HOST)
            dns.add_mx(DOMAIN, 10, MX_NAME)

            # --- reference: the same clients straight to the fake MX ---------------------
            direct = ClientRun(
                MX_HOST, mx.port, [f"d{n:06d}" for n in range(args.messages)], args.sessions, body
            )
            async with asyncio.timeout(remaining(deadline)):
                d_start, d_end = await direct.run()
            if direct.errors or len(direct.sent) != args.messages:
                print("direct run failed:", *direct.errors[:5], sep="\n  ", file=sys.stderr)
                return 1
            direct_seconds = d_end - d_start
            direct_rate = args.messages / direct_seconds

            # --- the gateway, built as the scenario harness builds it --------------------
            raw = base_config(dns, Path(tmp), mx.port)
            cfg = config_module.from_dict(raw)
            gw = await build(cfg)
            await start_listeners(gw)
            task = asyncio.get_running_loop().create_task(run(gw))
            try:
                result = await measure(args, gw.smtp_port, body, received, deadline)
            finally:
                gw.shutdown()
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(15):
                        await task
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task
        finally:
            mx.stop()

    if result is None:
        return 1
    report(args, result, direct_seconds, direct_rate)
    return 0


@dataclass
class Result:
    seconds: float
    accepted_seconds: float
    latencies_ms: list[float]


async def measure(
    args: argparse.Namespace, port: int, body: bytes, received: TimedList, deadline: float
) -> Result | None:
    # warm-up (not counted): DNS cache, relay connections, SQLite pages
    if args.warmup:
        warm = ClientRun(
            "127.0.0.1", port, [f"w{n:06d}" for n in range(args.warmup)], args.sessions, body
        )
        async with asyncio.timeout(remaining(deadline)):
            await warm.run()
        if warm.errors:
            print("warm-up failed:", *warm.errors[:5], sep="\n  ", file=sys.stderr)
            return None
        tokens = {s.token for s in warm.sent}
        await wait_until(
            lambda: tokens <= received.arrivals().keys(), remaining(deadline), "the warm-up"
        )

    with received.lock:
        before = len(received)
    main = ClientRun(
        "127.0.0.1", port, [f"g{n:06d}" for n in range(args.messages)], args.sessions, body
    )
    async with asyncio.timeout(remaining(deadline)):
        start, accepted_end = await main.run()
    if main.errors:
        print(f"{len(main.errors)} client errors:", *main.errors[:5], sep="\n  ", file=sys.stderr)
    if not main.sent:
        return None
    wanted = {s.token for s in main.sent}

    def all_arrived() -> bool:
        with received.lock:
            count = len(received)
        # cheap check first; parse the tokens only when the count could be complete
        return count >= before + len(wanted) and wanted <= received.arrivals().keys()

    await wait_until(all_arrived, remaining(deadline), "arrivals at the MX", interval=0.02)
    arrivals = received.arrivals()
    end = max(arrivals[t] for t in wanted)
    latencies = sorted((arrivals[s.token] - s.accepted) * 1000 for s in main.sent)
    if len(main.sent) != args.messages:
        print(f"only {len(main.sent)} of {args.messages} messages accepted", file=sys.stderr)
    return Result(end - start, accepted_end - start, latencies)


def report(args: argparse.Namespace, r: Result, direct_seconds: float, direct_rate: float) -> None:
    n = len(r.latencies_ms)
    lat = r.latencies_ms
    e2e_rate = n / r.seconds
    print(
        f"messages            {n} (sessions {args.sessions}, body {args.body_bytes} B, "
        f"warm-up {args.warmup} not counted)"
    )
    print(f"total seconds       {r.seconds:.3f} (first send to last arrival at the MX)")
    print(
        f"accepted msg/s      {n / r.accepted_seconds:.1f} (all 250s in {r.accepted_seconds:.3f} s)"
    )
    print(f"end-to-end msg/s    {e2e_rate:.1f}")
    print(
        f"latency 250->MX ms  p50 {percentile(lat, 50):.1f}  p90 {percentile(lat, 90):.1f}  "
        f"p99 {percentile(lat, 99):.1f}  max {lat[-1]:.1f}  (min {lat[0]:.1f})"
    )
    print(
        f"direct to MX msg/s  {direct_rate:.1f} ({args.messages} messages in "
        f"{direct_seconds:.3f} s, same clients, no gateway)"
    )
    print(
        f"ratio               gateway end-to-end / direct = {e2e_rate / direct_rate:.3f} "
        f"(direct is {direct_rate / e2e_rate:.1f}x faster)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=20, help="messages sent first, not counted")
    parser.add_argument("--body-bytes", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=300, help="overall limit, seconds")
    args = parser.parse_args()
    if args.messages < 1 or args.sessions < 1:
        parser.error("--messages and --sessions must be positive")
    try:
        return asyncio.run(bench(args))
    except TimeoutError as exc:
        print(f"benchmark aborted: {exc or 'timeout'}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
