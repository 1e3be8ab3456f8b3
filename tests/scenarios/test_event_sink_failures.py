"""A sink that fails to take a domain event is counted in ``gateway_events_dropped_total``,
the counter the ``GatewayMetricsIncomplete`` alert reads, as served on ``/metrics``.

The gateway runs in process with a third event sink that raises on every event, beside the
real metrics and webhook sinks; a message goes through SMTP and the relay. The write that
committed is never failed by the sink (the client gets its ``250``, the relay delivers).
"""

from __future__ import annotations

import asyncio
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from gateway.core.model import Status
from gateway.observe.events import DomainEvent, ObservedStore
from tests.scenarios.harness import GatewayHarness
from tests.waiting import wait_until


class BrokenSink:
    """An event sink with a bug: every ``publish`` raises."""

    def __init__(self) -> None:
        self.asked = 0

    def publish(self, event: DomainEvent) -> None:
        self.asked += 1
        raise RuntimeError("sink bug")


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_a_failing_sink_is_counted_on_metrics_and_fails_no_write(
    harness: GatewayHarness,
) -> None:
    harness.mx("127.0.0.2", "example.com")
    gw = await harness.start()
    store = gw.store
    assert isinstance(store, ObservedStore)
    broken = BrokenSink()
    store.add_sink(broken)

    await harness.deliver("ana@example.com")  # 250 at intake, then sent by the relay
    await harness.wait_status("ana@example.com", Status.SENT)
    await wait_until(lambda: gw.admin_port is not None, 10, what="the admin listener up")
    samples = await asyncio.to_thread(_scrape, gw.admin_port)

    # accepted + queued + sent at least; every one of them raised in the broken sink only
    assert broken.asked >= 3
    assert store.sink_errors == broken.asked
    dropped = samples[("gateway_events_dropped_total", (("sink", "other"),))]
    assert dropped == broken.asked
    # the real sinks took every event: nothing counted against them
    assert ("gateway_events_dropped_total", (("sink", "metrics"),)) not in samples
    assert ("gateway_events_dropped_total", (("sink", "webhooks"),)) not in samples
    assert samples[("gateway_messages_accepted_total", (("tenant", "default"),))] == 1
