"""Queue ids: time-ordered, unique, case-sensitive alphanumeric, 20 characters.

Owns: the one id format shared by the intake, the relay (bounce notices) and the admin API
(send-test), so ids sort by acceptance time everywhere.
"""

from __future__ import annotations

import secrets
import time


def new_queue_id() -> str:
    """11 hex digits of milliseconds since the epoch, then 9 random hex digits."""
    millis = int(time.time() * 1000)
    return f"{millis:011X}{secrets.token_hex(5)[:9].upper()}"
