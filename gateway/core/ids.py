"""Queue ids: time-ordered, unique, case-sensitive alphanumeric, 20 characters.

Owns: the one id format shared by the intake, the relay (bounce notices) and the admin API
(send-test), so ids sort by acceptance time everywhere.
"""

from __future__ import annotations

import os
import time

# Random bytes from the OS, fetched 4 KiB at a time: one getrandom() call per ~800 ids
# instead of one per id (it showed in the intake's profile). A forked child starts afresh,
# so two processes never share the pool.
_POOL_SIZE = 4096
_pool = bytearray()


def _forget_pool() -> None:
    _pool.clear()


os.register_at_fork(after_in_child=_forget_pool)


def new_queue_id() -> str:
    """11 hex digits of milliseconds since the epoch, then 9 random hex digits."""
    millis = int(time.time() * 1000)
    if len(_pool) < 5:
        _pool.extend(os.urandom(_POOL_SIZE))
    random5 = bytes(_pool[:5])
    del _pool[:5]
    return f"{millis:011X}{random5.hex()[:9].upper()}"
