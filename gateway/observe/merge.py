"""One ``/metrics`` for a service of several worker processes (``smtp.workers``): their
Prometheus text expositions merged into one.

Counters, histograms and the gauges each process keeps of itself (SMTP sessions, the
relay's sites) are added up; the gauges every process reads from the one store (the
queue, the webhook outbox) are the same number seen several times, so the largest is
kept; ``*_created`` timestamps keep the earliest. Does not own: the metrics themselves
(``observe.metrics``) or fetching the workers' texts (``cli.workers``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

#: Gauges read from the shared store: every worker reports the same value.
STORE_WIDE = frozenset(
    {
        "gateway_queue_recipients",
        "gateway_queue_oldest_age_seconds",
        "gateway_queue_oldest_deferred_age_seconds",
        "gateway_webhook_outbox_pending",
        "gateway_webhook_outbox_oldest_age_seconds",
        "gateway_tenant_quota_used_ratio",
        "gateway_tenant_paused",
    }
)


@dataclass
class _Family:
    help: str = ""
    type: str = "untyped"
    samples: dict[str, float] = field(default_factory=dict)


def merge_expositions(texts: Iterable[str]) -> bytes:
    """The expositions (text format 0.0.4) as one, in the first text's order.

    Raises:
        ValueError: a sample line without a value (not an exposition).
    """
    families: dict[str, _Family] = {}
    for text in texts:
        current: _Family | None = None
        name = ""
        for line in text.splitlines():
            if not line.strip():
                continue
            if line.startswith("# HELP ") or line.startswith("# TYPE "):
                kind, _, rest = line[2:].partition(" ")
                name, _, value = rest.partition(" ")
                current = families.setdefault(name, _Family())
                if kind == "HELP":
                    current.help = value
                else:
                    current.type = value
                continue
            if line.startswith("#"):
                continue
            key, number = _split_sample(line)
            if current is None:
                name = key.partition("{")[0]
                current = families.setdefault(name, _Family())
            _add(current, name, key, number)
    out: list[str] = []
    for name, family in families.items():
        out.append(f"# HELP {name} {family.help}")
        out.append(f"# TYPE {name} {family.type}")
        out.extend(f"{key} {_number(value)}" for key, value in family.samples.items())
    return ("\n".join(out) + "\n").encode() if out else b""


def _number(value: float) -> str:
    """As prometheus_client writes a value (Go's spelling of infinities and NaN)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def _split_sample(line: str) -> tuple[str, float]:
    end = line.rfind("}")
    if end >= 0:
        key, rest = line[: end + 1], line[end + 1 :]
    else:
        key, _, rest = line.partition(" ")
    fields = rest.split()
    if not fields:
        msg = f"a sample without a value: {line[:200]!r}"
        raise ValueError(msg)
    return key, float(fields[0])


def _add(family: _Family, name: str, key: str, value: float) -> None:
    seen = family.samples.get(key)
    if seen is None:
        family.samples[key] = value
    elif name.endswith("_created"):
        family.samples[key] = min(seen, value)
    elif name in STORE_WIDE:
        family.samples[key] = max(seen, value)
    else:
        family.samples[key] = seen + value
