"""``python -m tests.scenarios.gateway_hooks <gateway arguments>``: the ``gateway`` command
line with test-only hooks installed first.

The production code carries no test hook: a scenario that needs one runs the gateway through
this module instead of ``python -m gateway`` (``harness.GatewaySubprocess`` does so when the
environment names a hook). Each hook is chosen by an environment variable:

``GATEWAY_TEST_FAULT=kill_after_commit``
    The process SIGKILLs itself right after the store has committed a message and before
    the intake writes its ``250``: the crash window no test can hit by timing alone
    (``test_fault_kill9_after_commit.py``). The hook wraps ``ObservedStore.enqueue``, the
    one door every intake commit goes through, so the kill follows the real commit.

``GATEWAY_TEST_SLOW_CALLBACKS=<file>``
    asyncio's debug mode on the gateway's event loop with ``slow_callback_duration`` set to
    ``GATEWAY_TEST_SLOW_CALLBACK_SECONDS`` (default 0.05): each "Executing … took …" warning
    of the ``asyncio`` logger is appended to ``<file>``, one per line, followed by
    `` | loop CPU <seconds>``: the CPU time the loop's thread spent in the callback, its own
    work. A callback that took long because other processes had the cores, or a worker
    thread had the interpreter, shows less (``test_event_loop_stays_responsive.py``).
    The loop is asyncio's own rather than uvloop: its callbacks (``Handle._run``) are Python,
    so each one can be timed; the gateway's code on it is the same.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import timedelta

    from gateway.core.model import NewMessage
    from gateway.core.ports import EnqueueResult

FAULT = "GATEWAY_TEST_FAULT"
SLOW_CALLBACKS = "GATEWAY_TEST_SLOW_CALLBACKS"
SLOW_CALLBACK_SECONDS = "GATEWAY_TEST_SLOW_CALLBACK_SECONDS"
HOOKS = (FAULT, SLOW_CALLBACKS)
SLOW_PREFIX = "Executing "  # asyncio's "Executing <handle> took 0.123 seconds"
CPU_MARK = " | loop CPU "


def kill_after_commit() -> None:
    from gateway.events import ObservedStore

    enqueue = ObservedStore.enqueue

    async def enqueue_then_die(
        self: ObservedStore, message: NewMessage, duplicate_window: timedelta
    ) -> EnqueueResult:
        result = await enqueue(self, message, duplicate_window)
        if result.queued:
            os.kill(os.getpid(), signal.SIGKILL)  # committed, the 250 not yet written
        return result

    ObservedStore.enqueue = enqueue_then_die  # type: ignore[method-assign]


_last = threading.local()  # the CPU time of the callback the loop ran last


def _time_callbacks() -> None:
    """Wrap ``Handle._run``: asyncio's loop calls it for every callback, then logs the
    warning for a slow one (``BaseEventLoop._run_once``), on the same thread."""
    run = asyncio.events.Handle._run

    def timed_run(self: asyncio.Handle) -> None:
        started = time.thread_time()
        try:
            run(self)
        finally:
            _last.cpu = time.thread_time() - started

    asyncio.events.Handle._run = timed_run  # type: ignore[method-assign]


class _SlowCallbacks(logging.Handler):
    def __init__(self, path: str) -> None:
        super().__init__(logging.WARNING)
        self.path = path

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if text.startswith(SLOW_PREFIX):
            cpu = getattr(_last, "cpu", float("nan"))
            with open(self.path, "a", encoding="utf-8") as out:
                out.write(" ".join(text.split()) + f"{CPU_MARK}{cpu:.3f}\n")


def watch_slow_callbacks(path: str, seconds: float) -> None:
    import uvloop

    def debug_loop() -> asyncio.AbstractEventLoop:
        loop = asyncio.new_event_loop()
        loop.set_debug(True)
        loop.slow_callback_duration = seconds
        return loop

    # ``gateway.__main__`` looks the factory up at ``serve`` time, after this ran.
    uvloop.new_event_loop = debug_loop
    _time_callbacks()
    asyncio_log = logging.getLogger("asyncio")
    asyncio_log.setLevel(logging.WARNING)  # whatever log.level the config sets on the root
    asyncio_log.addHandler(_SlowCallbacks(path))


def main() -> int:
    fault = os.environ.get(FAULT, "")
    if fault == "kill_after_commit":
        kill_after_commit()
    elif fault:
        print(f"{FAULT}: unknown fault {fault!r}", file=sys.stderr)
        return 64
    path = os.environ.get(SLOW_CALLBACKS, "")
    if path:
        watch_slow_callbacks(path, float(os.environ.get(SLOW_CALLBACK_SECONDS, "0.05")))
    from gateway.__main__ import main as gateway_main

    return gateway_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
