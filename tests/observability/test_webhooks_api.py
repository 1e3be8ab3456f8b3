"""Webhooks as an application sees them, over real HTTP on loopback both ways: the endpoint
is down, the history API shows the delivery waiting with its error, the endpoint comes back,
the history shows it delivered; the payload carries both message ids and the bounce detail;
the retry schedule lasts at least 24 hours."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from gateway import config as config_module
from gateway.admin.app import ROUTES, AdminDeps, build_admin_app, serve_http
from gateway.admin.openapi import openapi_document
from gateway.config import WebhookConfig
from gateway.core.model import Category, Event, EventType, Status
from gateway.observe.events import RecipientChanged
from gateway.observe.webhooks import ALL_TYPES, backoff, logged_change, retry_span, webhook_type
from gateway.store.sqlite import SqliteStore
from tests.observability.receiver import Receiver
from tests.observability.samples import T0, TENANT, message, outcome
from tests.observability.test_webhooks_delivery import FAST, LEASE, SECRET, running
from tests.waiting import wait_until

TOKEN = "webhook-history-token-0123456789"
ROOT = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def admin_http(store: object) -> AsyncIterator[httpx.AsyncClient]:
    """The admin app served by uvicorn on 127.0.0.1:<free port>, and a client for it."""
    cfg = config_module.from_dict(
        {
            "store": {"path": ":memory:"},
            "bounce": {"secret": "bounce-secret-0123456789"},
            "admin": {"tokens": [TOKEN]},
            "log": {"level": "warning"},
        }
    )
    deps = AdminDeps(
        config=cfg,
        store=store,  # type: ignore[arg-type]
        checker=None,  # type: ignore[arg-type]  # no route here checks addresses
        clock=None,  # type: ignore[arg-type]
        readiness=dict,
    )
    stopping = asyncio.Event()
    ports: list[int] = []
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(
            serve_http(build_admin_app(deps), "127.0.0.1", 0, stopping, on_listening=ports.append)
        )
        try:
            await wait_until(lambda: ports, 5, what="the admin listener up")
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{ports[0]}",
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=5,
            ) as client:
                yield client
        finally:
            stopping.set()


async def history(client: httpx.AsyncClient, **query: str) -> list[dict[str, object]]:
    r = await client.get("/api/v1/webhooks/deliveries", params={"tenant": TENANT, **query})
    assert r.status_code == 200, r.text
    items: list[dict[str, object]] = r.json()["items"]
    return items


async def bounce_one(p_observed: object, address: str = "ana@gmail.com") -> None:
    observed = p_observed
    await observed.enqueue(message("q1", address), timedelta(hours=1))  # type: ignore[attr-defined]
    [d] = await observed.claim_due(T0 + timedelta(seconds=1), 10, "n", LEASE)  # type: ignore[attr-defined]
    await observed.record_outcomes(  # type: ignore[attr-defined]
        [outcome(d.recipient_id, address, EventType.BOUNCED, T0 + timedelta(seconds=3),
                 category=Category.NONEXISTENT_ADDRESS, code=550, enhanced="5.1.1")],
        "n",
    )  # fmt: skip


async def test_endpoint_down_history_shows_it_then_it_comes_back(
    store: SqliteStore,
) -> None:
    with socket.socket() as probe:  # a port with nothing listening yet: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    receiver = Receiver(port=port)
    await store.set_webhook(TENANT, receiver.url, SECRET)
    # Slow enough retries that the history can be read while the row waits.
    config = WebhookConfig(
        timeout=timedelta(seconds=2),
        retry_intervals=(timedelta(milliseconds=300),),
        max_attempts=50,
        allow_private_targets=True,
    )
    async with running(store, config) as p, admin_http(p.observed) as client:
        await bounce_one(p.observed)

        async def attempted() -> list[dict[str, object]]:
            rows = await history(client)
            return rows if rows and rows[0]["attempts"] else []

        [waiting] = await wait_until(attempted, 5, what="a first attempt")
        assert waiting["state"] == "pending"
        assert waiting["type"] == "bounced"
        assert "Connect" in str(waiting["last_error"])
        assert waiting["next_attempt_at"] is not None
        assert waiting["delivered_at"] is None
        assert (await history(client, state="delivered")) == []

        async with receiver:  # the endpoint comes back on the same port
            [request] = await receiver.wait_for(1, timeout=5)
            await wait_until(
                lambda: history(client, state="delivered"), 5, what="a delivered webhook"
            )
        [done] = await history(client, state="delivered")
        assert done["id"] == waiting["id"] == request.headers["x-gateway-event-id"]
        assert int(str(done["attempts"])) >= 2
        assert done["last_error"] is None
        assert done["delivered_at"] is not None

    body = json.loads(request.body)
    assert done["payload"] == body
    assert body["type"] == "bounced"
    assert body["queue_id"] == "q1"
    assert body["message_id"] == "<q1@acme.example>"
    assert body["category"] == "nonexistent_address"
    assert body["status"] == "bounced"
    assert body["enhanced_status"] == "5.1.1"
    assert body["diagnostic"] == "550 5.1.1 remote says so"
    schema = openapi_document(ROUTES)["components"]["schemas"]["WebhookPayload"]
    assert set(body) == set(schema["properties"])


async def test_history_api_filters_and_paginates(store: SqliteStore) -> None:
    async with Receiver(default=410) as receiver:  # the receiver asks us to stop: failed
        await store.set_webhook(TENANT, receiver.url, SECRET)
        async with running(store, FAST) as p, admin_http(p.observed) as client:
            for n in range(3):
                await p.observed.record_event(
                    Event(None, TENANT, f"x{n}@example.com", EventType.REJECTED, T0,
                          reply_code=550, enhanced="5.1.1", text="no such user")
                )  # fmt: skip
            await receiver.wait_for(3)

            async def three_failed() -> bool:
                return len(await history(client, state="failed")) >= 3

            await wait_until(three_failed, 5, what="three failed webhooks")
            first = await client.get(
                "/api/v1/webhooks/deliveries", params={"tenant": TENANT, "limit": "2"}
            )
            page = first.json()
            assert len(page["items"]) == 2
            assert page["next_cursor"]
            rest = await client.get(
                "/api/v1/webhooks/deliveries",
                params={"tenant": TENANT, "limit": "2", "cursor": page["next_cursor"]},
            )
            ids = [i["id"] for i in page["items"]] + [i["id"] for i in rest.json()["items"]]
            assert len(set(ids)) == 3
            assert rest.json()["next_cursor"] is None
            assert all(i["last_error"] == "410 Gone" for i in await history(client))
            assert await history(client, tenant="nobody") == []
            bad = await client.get("/api/v1/webhooks/deliveries", params={"state": "lost"})
            assert bad.status_code == 422
            assert bad.json()["error"]["code"] == "invalid_request"
            anonymous = await client.get(
                "/api/v1/webhooks/deliveries", headers={"Authorization": ""}
            )
            assert anonymous.status_code == 401


def test_an_async_dsn_that_bounces_is_a_bounced_webhook() -> None:
    # The type follows what the report is (``core.lifecycle.effect``), not the status a
    # caller hands in: a failed DSN is a bounce, a delay notice or an auto-reply is not, even
    # about a recipient that is bounced already.
    dsn = Event(1, TENANT, "a@b.example", EventType.REPORT, T0,
                category=Category.MAILBOX_FULL, details={"action": "failed"})  # fmt: skip
    delay = Event(1, TENANT, "a@b.example", EventType.REPORT, T0,
                  category=Category.MAILBOX_FULL, details={"action": "delayed"})  # fmt: skip
    away = Event(1, TENANT, "a@b.example", EventType.REPORT, T0,
                 category=Category.AUTO_REPLY)  # fmt: skip
    for status in (Status.SENT, Status.BOUNCED, None):
        assert webhook_type(RecipientChanged(dsn, status)) == "bounced"
        assert webhook_type(RecipientChanged(delay, status)) == "report"
        assert webhook_type(RecipientChanged(away, status)) == "report"
    assert webhook_type(logged_change(dsn, Status.SENT)) == "bounced"
    assert logged_change(dsn, Status.SENT).status is Status.BOUNCED


def test_openapi_lists_every_webhook_type() -> None:
    schemas = openapi_document(ROUTES)["components"]["schemas"]
    assert set(schemas["WebhookPayload"]["properties"]["type"]["enum"]) == ALL_TYPES
    for name in ("queued", "sent", "deferred", "bounced", "expired", "suppressed",
                 "unsuppressed", "complaint", "opt_out", "rejected"):  # fmt: skip
        assert name in ALL_TYPES


def test_the_retry_schedule_lasts_at_least_24_hours() -> None:
    default = WebhookConfig()
    shipped = config_module.load(ROOT / "config/gateway.toml").webhooks
    for cfg in (default, shipped):
        assert retry_span(cfg) >= timedelta(hours=24)
        waits = [backoff(cfg, n) for n in range(1, cfg.max_attempts)]
        assert waits == sorted(waits), "back-off never shrinks"
        assert waits[0] <= timedelta(minutes=5), "the first retry comes quickly"
    too_short = WebhookConfig(retry_intervals=(timedelta(minutes=1),), max_attempts=10)
    assert retry_span(too_short) < timedelta(hours=24)


@pytest.mark.parametrize("attempt", [1, 5, 6, 19])
def test_backoff_repeats_the_last_interval(attempt: int) -> None:
    cfg = WebhookConfig()
    expected = cfg.retry_intervals[min(attempt, len(cfg.retry_intervals)) - 1]
    assert backoff(cfg, attempt) == expected
