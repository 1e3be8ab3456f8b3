"""What the current thread (the event loop's, in a test) runs: ``sqlite3`` calls and chosen
functions.

``sys.setprofile`` sees every call on the thread that sets it: a ``sqlite3`` connection or
cursor method called there is a query run on the event loop, where a page not in the cache
is a disk read that stalls every SMTP session; a DKIM signature or a bounce parse there holds
every session for as long as it takes (issue 13). Work on other threads (the store's reader
and writer, ``asyncio.to_thread``) is not seen.
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

_SQLITE_TYPES = (sqlite3.Connection, sqlite3.Cursor, sqlite3.Blob)


def _is_sqlite(function: Any) -> bool:
    owner = getattr(function, "__self__", None)
    if isinstance(owner, _SQLITE_TYPES):
        return True
    return getattr(owner, "__name__", None) in ("sqlite3", "_sqlite3")  # sqlite3.connect


@contextlib.contextmanager
def work_on_this_thread(*functions: Callable[..., Any]) -> Iterator[list[str]]:
    """Yield a list that fills with each ``sqlite3`` function, and each of ``functions``,
    called on this thread until the block ends."""
    codes = {function.__code__: function.__qualname__ for function in functions}
    calls: list[str] = []

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            name = codes.get(frame.f_code)
            if name is not None:
                calls.append(name)
        elif event == "c_call" and _is_sqlite(arg):
            calls.append(getattr(arg, "__qualname__", repr(arg)))

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield calls
    finally:
        sys.setprofile(previous)


def sqlite_calls_on_this_thread() -> contextlib.AbstractContextManager[list[str]]:
    """``work_on_this_thread()``: the ``sqlite3`` calls alone."""
    return work_on_this_thread()
