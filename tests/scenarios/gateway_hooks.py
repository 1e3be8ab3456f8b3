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

``GATEWAY_TEST_FAULT=kill_mid_suppression``
    The process SIGKILLs itself inside the transaction that writes a suppression with its
    ``suppressed`` event (``suppress_with_event``: an opt-out's, the bounce sink's policy;
    ``record_outcomes``: the relay's outcome with the policy's suppression), right after
    that event's insert and before the suppression's write and the commit: where a crash
    fell between the two writes when they were separate (issue 13). Neither may stay
    (``test_fault_kill9_suppression.py``). SQLite only: it wraps the SQLite store's event
    insert, which runs in the writer's thread.

``GATEWAY_TEST_FAULT=kill_after_suppression``
    The process SIGKILLs itself right after such a write committed: both must stay.

``GATEWAY_TEST_FAULT=kill_mid_notice``
    The process SIGKILLs itself inside the relay's ``record_outcomes`` transaction, right
    after the bounce notice to the sender was written and before the commit: where a crash
    fell between the outcome and the notice when the notice was a separate enqueue
    (issue 13). Neither may stay (``test_fault_kill9_notice_and_send_test.py``). SQLite only.

``GATEWAY_TEST_FAULT=kill_after_notice``
    The process SIGKILLs itself right after outcomes that queued a bounce notice committed:
    both must stay.

``GATEWAY_TEST_FAULT=kill_mid_send_test``
    The process SIGKILLs itself inside the admin send-test's transaction, after the message
    was written and before its audit entry and the commit: neither may stay. SQLite only.
    (``kill_after_commit`` kills right after that commit: both must stay.)

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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Sequence
    from datetime import timedelta

    from gateway.core.model import Event, NewMessage, Suppression
    from gateway.core.ports import EnqueueResult, Outcome
    from gateway.store.sql import Script

FAULT = "GATEWAY_TEST_FAULT"
SLOW_CALLBACKS = "GATEWAY_TEST_SLOW_CALLBACKS"
SLOW_CALLBACK_SECONDS = "GATEWAY_TEST_SLOW_CALLBACK_SECONDS"
HOOKS = (FAULT, SLOW_CALLBACKS)
SLOW_PREFIX = "Executing "  # asyncio's "Executing <handle> took 0.123 seconds"
CPU_MARK = " | loop CPU "


def kill_after_commit() -> None:
    from gateway.observe.events import ObservedStore

    enqueue = ObservedStore.enqueue

    async def enqueue_then_die(
        self: ObservedStore, message: NewMessage, duplicate_window: timedelta, **kwargs: Any
    ) -> EnqueueResult:
        result = await enqueue(self, message, duplicate_window, **kwargs)
        if result.queued:
            os.kill(os.getpid(), signal.SIGKILL)  # committed, the 250 not yet written
        return result

    ObservedStore.enqueue = enqueue_then_die  # type: ignore[method-assign]


def kill_mid_suppression() -> None:
    from gateway.core.model import EventType
    from gateway.store import admin_queries, outcome_rows, writes

    script = writes.insert_event

    def script_then_die(event: Event) -> Script[int]:
        # A script runs in the SQLite writer's thread, inside its transaction.
        event_id = yield from script(event)
        if event.type is EventType.SUPPRESSED:
            os.kill(os.getpid(), signal.SIGKILL)  # in the transaction, before its commit
        return event_id

    # ``store.admin_queries.suppress_with_event`` and ``store.outcome_rows``' outcome
    # writes look it up on their modules at each call.
    admin_queries.insert_event = script_then_die
    outcome_rows.insert_event = script_then_die


def kill_after_suppression() -> None:
    from gateway.observe.events import ObservedStore

    suppress = ObservedStore.suppress_with_event

    async def suppress_then_die(
        self: ObservedStore, suppression: Suppression, event: Event, *, keep_permanent: bool = False
    ) -> tuple[Suppression, int] | None:
        result = await suppress(self, suppression, event, keep_permanent=keep_permanent)
        os.kill(os.getpid(), signal.SIGKILL)  # committed, nothing after it has run
        return result

    record = ObservedStore.record_outcomes

    async def record_then_die(
        self: ObservedStore, outcomes: Sequence[Outcome], owner: str
    ) -> dict[int, int]:
        recorded = await record(self, outcomes, owner)
        if any(o.suppress is not None and o.recipient_id in recorded for o in outcomes):
            os.kill(os.getpid(), signal.SIGKILL)  # committed with the outcome
        return recorded

    ObservedStore.suppress_with_event = suppress_then_die  # type: ignore[method-assign]
    ObservedStore.record_outcomes = record_then_die  # type: ignore[method-assign]


def _enqueue_rows_then_die(
    enqueue_rows: Callable[[sqlite3.Connection, NewMessage, timedelta], EnqueueResult],
    dies: Callable[[NewMessage], bool],
) -> Callable[[sqlite3.Connection, NewMessage, timedelta], EnqueueResult]:
    def then_die(
        c: sqlite3.Connection, message: NewMessage, duplicate_window: timedelta
    ) -> EnqueueResult:
        result = enqueue_rows(c, message, duplicate_window)
        if dies(message):
            os.kill(os.getpid(), signal.SIGKILL)  # in the transaction, before its commit
        return result

    return then_die


def kill_mid_notice() -> None:
    from gateway.store import sqlite_relay

    # A bounce notice has the null reverse-path (RFC 5321 §4.5.5). ``record_outcomes``
    # looks ``enqueue_rows`` up on its module at each call.
    sqlite_relay.enqueue_rows = _enqueue_rows_then_die(  # type: ignore[assignment]
        sqlite_relay.enqueue_rows, lambda message: message.mail_from == ""
    )


def kill_after_notice() -> None:
    from gateway.core.ports import notices_of
    from gateway.observe.events import ObservedStore

    record = ObservedStore.record_outcomes

    async def record_then_die(
        self: ObservedStore, outcomes: Sequence[Outcome], owner: str
    ) -> dict[int, int]:
        recorded = await record(self, outcomes, owner)
        if notices_of(outcomes, recorded):
            os.kill(os.getpid(), signal.SIGKILL)  # committed with the outcomes
        return recorded

    ObservedStore.record_outcomes = record_then_die  # type: ignore[method-assign]


def kill_mid_send_test() -> None:
    from gateway.store import sqlite

    # The admin API's test message comes from ``admin-api``; ``SqliteStore.enqueue`` looks
    # ``enqueue_rows`` up on its module at each call, then writes the audit entry.
    sqlite.enqueue_rows = _enqueue_rows_then_die(  # type: ignore[attr-defined]
        sqlite.enqueue_rows, lambda message: message.client_address == "admin-api"
    )


FAULTS = {
    "kill_after_commit": kill_after_commit,
    "kill_mid_suppression": kill_mid_suppression,
    "kill_after_suppression": kill_after_suppression,
    "kill_mid_notice": kill_mid_notice,
    "kill_after_notice": kill_after_notice,
    "kill_mid_send_test": kill_mid_send_test,
}

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

    # ``gateway.cli.main`` looks the factory up at ``serve`` time, after this ran.
    uvloop.new_event_loop = debug_loop
    _time_callbacks()
    asyncio_log = logging.getLogger("asyncio")
    asyncio_log.setLevel(logging.WARNING)  # whatever log.level the config sets on the root
    asyncio_log.addHandler(_SlowCallbacks(path))


def main() -> int:
    fault = os.environ.get(FAULT, "")
    if fault in FAULTS:
        FAULTS[fault]()
    elif fault:
        print(f"{FAULT}: unknown fault {fault!r}", file=sys.stderr)
        return 64
    path = os.environ.get(SLOW_CALLBACKS, "")
    if path:
        watch_slow_callbacks(path, float(os.environ.get(SLOW_CALLBACK_SECONDS, "0.05")))
    from gateway.cli.main import main as gateway_main

    return gateway_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
