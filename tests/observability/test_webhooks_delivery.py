"""Webhooks end to end: ObservedStore → outbox (SQLite) → dispatcher → a real HTTP server."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from gateway.config import WebhookConfig
from gateway.core.model import (
    Category,
    Event,
    EventType,
    Status,
    Suppression,
    SuppressionReason,
    Tenant,
)
from gateway.observe.events import ObservedStore
from gateway.observe.metrics import Metrics
from gateway.observe.webhooks import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    WebhookDispatcher,
    WebhookOutbox,
    verify_signature,
)
from gateway.store.sqlite import SqliteStore
from tests.observability.receiver import Receiver
from tests.observability.samples import T0, TENANT, message, outcome
from tests.waiting import wait_until

SECRET = "whsec-test-0123456789"
LEASE = timedelta(minutes=5)
FAST = WebhookConfig(
    timeout=timedelta(seconds=2),
    retry_intervals=(timedelta(milliseconds=50),),
    max_attempts=5,
    allow_private_targets=True,
)


@dataclass
class Pipeline:
    store: SqliteStore
    observed: ObservedStore
    outbox: WebhookOutbox
    dispatcher: WebhookDispatcher
    metrics: Metrics


@asynccontextmanager
async def running(store: SqliteStore, config: WebhookConfig = FAST) -> AsyncIterator[Pipeline]:
    """The webhook tasks in one TaskGroup, as app.py runs them; stopped on exit (bounded)."""
    metrics = Metrics()
    dispatcher = WebhookDispatcher(config, store, metrics, poll_interval=timedelta(milliseconds=20))
    outbox = WebhookOutbox(store, metrics=metrics, wake=dispatcher.wake)
    observed = ObservedStore(store, [metrics, outbox])
    stopping = asyncio.Event()
    async with asyncio.timeout(15), asyncio.TaskGroup() as tasks:
        tasks.create_task(outbox.run(stopping))
        tasks.create_task(dispatcher.run(stopping))
        try:
            yield Pipeline(store, observed, outbox, dispatcher, metrics)
        finally:
            stopping.set()


async def send_one(observed: ObservedStore, address: str = "ana@gmail.com") -> int:
    """Queue, claim and deliver one recipient through the observed store; its event id."""
    await observed.enqueue(message("q1", address), timedelta(hours=1))
    [delivery] = await observed.claim_due(T0 + timedelta(seconds=1), 10, "node-1", LEASE)
    recorded = await observed.record_outcomes(
        [outcome(delivery.recipient_id, address, EventType.SENT, T0 + timedelta(seconds=5))],
        "node-1",
    )
    return recorded[delivery.recipient_id]


async def wait_state(store: SqliteStore, state: str, timeout: float = 5.0) -> None:
    async def reached() -> bool:
        return any(r.state == state for r in await store.webhook_history(TENANT))

    await wait_until(reached, timeout, what=f"a webhook {state}")


async def test_signed_payload_is_delivered_and_verifies(store: SqliteStore) -> None:
    async with Receiver() as receiver:
        await store.set_webhook(TENANT, receiver.url, SECRET)
        async with running(store) as p:
            event_id = await send_one(p.observed)
            [request] = await receiver.wait_for(1)
            await wait_state(store, "delivered")

    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    assert verify_signature(
        SECRET, request.headers[SIGNATURE_HEADER.lower()], request.body, datetime.now(UTC)
    )
    body = json.loads(request.body)
    assert body == {
        "version": 1,
        "id": request.headers[EVENT_ID_HEADER.lower()],
        "type": "sent",
        "tenant": TENANT,
        "recipient": "ana@gmail.com",
        "queue_id": "q1",
        "message_id": "<q1@acme.example>",
        "event_id": event_id,
        "status": "sent",
        "category": None,
        "reason": "accepted",  # what the relay stores with a 2xx (core.lifecycle.effect)
        "reply_code": 250,
        "enhanced_status": "2.0.0",
        "diagnostic": "250 2.0.0 remote says so",
        "reply": "250 2.0.0 remote says so",
        "remote_host": "gmail-smtp-in.l.google.com",
        "at": "2024-05-01T12:00:05+00:00",
        "scope": None,  # issue 15: only a suppression event carries one
        "stream": None,
        "provider": None,  # issue 12: only a provider's challenge report names one
        "challenge_url": None,
    }
    [row] = await store.webhook_history(TENANT)
    assert (row.state, row.attempts, row.type) == ("delivered", 1, "sent")
    assert p.metrics.registry.get_sample_value(
        "gateway_webhook_deliveries_total", {"tenant": TENANT, "result": "delivered"}
    ) == 1  # fmt: skip


async def test_500_then_200_is_retried_and_delivered_once(store: SqliteStore) -> None:
    async with Receiver(statuses=[500]) as receiver:
        await store.set_webhook(TENANT, receiver.url, SECRET)
        async with running(store) as p:
            await send_one(p.observed)
            first, second = await receiver.wait_for(2)
            await wait_state(store, "delivered")
            await asyncio.sleep(0.2)  # nothing more may arrive

    assert [r.status for r in receiver.requests] == [500, 200]
    # The same event id both times, so the receiver can drop a duplicate.
    assert first.headers["x-gateway-event-id"] == second.headers["x-gateway-event-id"]
    assert first.body == second.body
    [row] = await store.webhook_history(TENANT)
    assert (row.state, row.attempts) == ("delivered", 2)
    results = {
        r: p.metrics.registry.get_sample_value(
            "gateway_webhook_deliveries_total", {"tenant": TENANT, "result": r}
        )
        for r in ("retry", "delivered")
    }
    assert results == {"retry": 1, "delivered": 1}


async def test_endpoint_down_then_back(store: SqliteStore) -> None:
    with socket.socket() as probe:  # a port with nothing listening (yet)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    receiver = Receiver(port=port)
    await store.set_webhook(TENANT, receiver.url, SECRET)
    async with running(store) as p:
        await send_one(p.observed)
        await wait_until(
            lambda: p.metrics.registry.get_sample_value(
                "gateway_webhook_deliveries_total", {"tenant": TENANT, "result": "retry"}
            ),
            5,
            what="a retry counted",
        )
        async with receiver:
            await receiver.wait_for(1)
            await wait_state(store, "delivered")
    [row] = await store.webhook_history(TENANT)
    assert row.attempts >= 2
    assert row.state == "delivered"


async def test_410_stops_for_good(store: SqliteStore) -> None:
    async with Receiver(default=410) as receiver:
        await store.set_webhook(TENANT, receiver.url, SECRET)
        async with running(store) as p:
            await p.observed.record_event(
                Event(None, TENANT, "ana@gmail.com", EventType.SUPPRESSED, T0,
                      reason=SuppressionReason.OPT_OUT)
            )  # fmt: skip
            await receiver.wait_for(1)
            await wait_state(store, "failed")
            await asyncio.sleep(0.2)  # no retry may follow
    assert len(receiver.requests) == 1
    assert json.loads(receiver.requests[0].body)["type"] == "opt_out"
    [row] = await store.webhook_history(TENANT)
    assert (row.state, row.last_error) == ("failed", "410 Gone")


async def test_gives_up_after_max_attempts(store: SqliteStore) -> None:
    config = WebhookConfig(
        timeout=timedelta(seconds=2),
        retry_intervals=(timedelta(milliseconds=10), timedelta(milliseconds=30)),
        max_attempts=3,
        allow_private_targets=True,
    )
    async with Receiver(default=503) as receiver:
        await store.set_webhook(TENANT, receiver.url, SECRET)
        async with running(store, config) as p:
            await p.observed.enqueue(message("q1", "ana@gmail.com"), timedelta(hours=1))
            [view] = await p.observed.recipients_of("q1")
            complaint = Event(
                view.recipient_id, TENANT, "ana@gmail.com", EventType.REPORT, T0,
                queue_id="q1", category=Category.COMPLAINT, details={"feedback_type": "abuse"},
            )  # fmt: skip
            await p.observed.update_recipient(view.recipient_id, Status.SENT, complaint)
            await wait_state(store, "failed")
            await asyncio.sleep(0.2)  # no fourth attempt
    assert len(receiver.requests) == 3
    assert json.loads(receiver.requests[0].body)["type"] == "complaint"
    [row] = await store.webhook_history(TENANT)
    assert (row.state, row.attempts, row.last_error) == ("failed", 3, "HTTP 503")


async def test_ssrf_guard_refuses_loopback_when_not_allowed(store: SqliteStore) -> None:
    config = WebhookConfig(timeout=timedelta(seconds=2), allow_private_targets=False)
    async with Receiver() as receiver:
        await store.set_webhook(TENANT, receiver.url, SECRET)
        async with running(store, config) as p:
            await send_one(p.observed)
            await wait_state(store, "failed")
            await asyncio.sleep(0.1)
    assert receiver.requests == []
    [row] = await store.webhook_history(TENANT)
    assert "127.0.0.1" in row.last_error
    assert p.metrics.registry.get_sample_value(
        "gateway_webhook_deliveries_total", {"tenant": TENANT, "result": "refused"}
    ) == 1  # fmt: skip


async def test_tenant_without_endpoint_gets_nothing(store: SqliteStore) -> None:
    async with running(store) as p:
        await send_one(p.observed)
        await asyncio.sleep(0.2)
    assert await store.webhook_history(TENANT) == []
    assert await store.webhook_backlog() == (0, None)


async def test_queued_is_not_sent_by_default(store: SqliteStore) -> None:
    async with Receiver() as receiver:
        await store.set_webhook(TENANT, receiver.url, SECRET)
        async with running(store) as p:
            await p.observed.enqueue(message("q1", "ana@gmail.com"), timedelta(hours=1))
            await asyncio.sleep(0.2)
    assert receiver.requests == []


async def test_the_secret_is_never_logged(
    store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with Receiver(statuses=[500]) as receiver:
        await store.set_webhook(TENANT, receiver.url, SECRET)
        async with running(store) as p:
            await send_one(p.observed)
            await receiver.wait_for(2)
            await wait_state(store, "delivered")
    logged = [r for r in caplog.records if r.name == "gateway.observe.webhooks"]
    assert logged
    for record in logged:
        text = record.getMessage() + repr(getattr(record, "fields", {}))
        assert SECRET not in text
    assert SECRET not in repr(await store.get_webhook(TENANT))


async def test_endpoint_set_through_the_admin_tenant_settings(store: SqliteStore) -> None:
    """The admin API keeps webhook_url/webhook_secret on the tenant (migration 003)."""
    async with Receiver() as receiver:
        await store.ensure_tenant(Tenant(TENANT))
        assert await store.update_tenant_settings(
            TENANT, {"webhook_url": receiver.url, "webhook_secret": SECRET}
        )
        async with running(store) as p:
            await send_one(p.observed)
            [request] = await receiver.wait_for(1)
    assert verify_signature(
        SECRET, request.headers["x-gateway-signature"], request.body, datetime.now(UTC)
    )
    # An endpoint set with set_webhook takes precedence.
    await store.set_webhook(TENANT, "https://hooks.example.com/x", "other")
    target = await store.get_webhook(TENANT)
    assert target is not None
    assert target.url == "https://hooks.example.com/x"


async def test_admin_unblock_sends_an_unsuppressed_webhook(store: SqliteStore) -> None:
    async with Receiver() as receiver:
        await store.set_webhook(TENANT, receiver.url, SECRET)
        async with running(store) as p:
            await p.observed.suppress_with_event(
                Suppression(TENANT, "ana@gmail.com", SuppressionReason.MANUAL, T0),
                Event(None, TENANT, "ana@gmail.com", EventType.SUPPRESSED, T0, reason="manual"),
            )
            await p.observed.lift_suppressions(
                "ana@gmail.com",
                TENANT,
                lambda found: Event(None, found.tenant, found.address, EventType.UNSUPPRESSED,
                                    T0, reason="admin_unblock"),
            )  # fmt: skip
            await receiver.wait_for(2)
    types = sorted(json.loads(r.body)["type"] for r in receiver.requests)
    assert types == ["suppressed", "unsuppressed"]
