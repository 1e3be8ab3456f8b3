"""Fixtures of the hostile-client suite: a gateway over loopback whose only trusted client is
127.0.0.1, a DNS server that sends ``example.com`` to a raw sink on 127.0.0.2."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from tests.hostile.wire import RawSink
from tests.scenarios.harness import GatewayHarness

TRUSTED = "127.0.0.1"  # the only trusted client address
# Untrusted clients, each in a /24 of its own (the per-network limit counts /24s).
UNTRUSTED = "127.0.1.2"
OTHER = "127.0.2.3"
SINK_HOST = "127.0.0.2"

# What every hostile case runs with, before its own keys: quick greeting for the suite.
SMTP_BASE: dict[str, Any] = {"trusted_networks": [f"{TRUSTED}/32"], "greeting_delay": "0.2s"}

Start = Callable[..., Awaitable[GatewayHarness]]


@pytest.fixture
async def sink(harness: GatewayHarness) -> AsyncIterator[RawSink]:
    raw = await RawSink(SINK_HOST, harness.mx_port).start()
    harness.dns.add_a("sink.test", SINK_HOST)
    harness.dns.add_mx("example.com", 10, "sink.test")
    try:
        yield raw
    finally:
        await raw.stop()


@pytest.fixture
def start(harness: GatewayHarness, sink: RawSink) -> Start:
    """Start the gateway with ``SMTP_BASE`` plus the case's ``[smtp]`` keys."""

    async def run(**smtp: Any) -> GatewayHarness:
        await harness.start(smtp={**SMTP_BASE, **smtp})
        return harness

    return run
