"""Waiting in tests for something to become true, bounded: the one polling loop of the suite.

A test that needs the system to reach a state (a row committed, a message received, a port
open) waits for that state with ``wait_until``, never for a fixed time; a fixed sleep is left
only where the time itself is under test (a slow server, "nothing more arrives within a
retry interval"). This module does not know what it waits for.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

#: How often a condition is looked at again: far below every timeout the tests use.
INTERVAL = 0.02


async def wait_until(
    predicate: Callable[[], T | Awaitable[T]],
    timeout: float = 10.0,
    *,
    what: str = "",
    interval: float = INTERVAL,
) -> T:
    """Call ``predicate`` (a plain function or a coroutine function) until it returns a true
    value, and return that value.

    Args:
        predicate: the condition; it is called at once, then every ``interval`` seconds.
        timeout: seconds before giving up with ``AssertionError``.
        what: the condition in words, for the failure message.
        interval: seconds between two looks.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]  # narrowed: no longer awaitable
        if time.monotonic() >= deadline:
            raise AssertionError(f"not true after {timeout}s: {what or predicate!r} ({value!r})")
        await asyncio.sleep(interval)
