"""Durations as operators write them in TOML files: ``30`` (seconds), ``"30s"``, ``"5m"``,
``"1h"``, ``"5d"``. One parser for the config file and the data files (``shaping.toml``)."""

from __future__ import annotations

import re
from datetime import timedelta

from gateway.core.errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(key: str, raw: object) -> timedelta:
    """``raw`` as a duration.

    Raises:
        ConfigError: naming ``key``, when ``raw`` is neither a number of seconds nor a
            number with a unit (ms, s, m, h, d, w).
    """
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        seconds = float(raw)
    elif isinstance(raw, str) and (m := _DURATION.match(raw)):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise ConfigError(key, f'expected a duration such as "30s", "5m", "5d", got {raw!r}')
    try:
        return timedelta(seconds=seconds)
    except (OverflowError, ValueError):  # past timedelta's range, or not a number (nan)
        raise ConfigError(key, f"{raw!r} is not a duration a clock can count") from None
