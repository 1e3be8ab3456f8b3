"""Signed webhooks: every recipient outcome, POSTed to the tenant's endpoint, at least once.

Owns: which domain events become webhooks and their JSON schema, the signature
(``X-Gateway-Signature``) and its verification, the SSRF guard on endpoint URLs, the
``WebhookOutbox`` writer (the store's events log → durable outbox rows, off the hot path)
and the ``WebhookDispatcher`` (outbox rows → HTTP POSTs with retries). Does not own: the
outbox tables and the log cursor (``store.sqlite_outbox``), nor the events themselves (the
store writes them; ``events.ObservedStore`` only signals that it did).

Flow: the store commits an event row → ``WebhookOutbox.run``, woken by ``publish`` (from
``ObservedStore``) or by its poll, reads the events after its durable cursor, builds their
payloads and writes the outbox rows *and* moves the cursor in one transaction (a transactional
outbox: a crash before that commit leaves the events to be read again, one after it has
them in the outbox) → ``WebhookDispatcher`` claims due rows, signs and POSTs them, and marks
each delivered, retried later (non-2xx, network error, timeout;
``WebhookConfig.retry_intervals``, the last one repeating, up to ``max_attempts``) or given up
(``410 Gone``, a refused target, attempts exhausted). The poll also picks up events that
other nodes committed (PostgreSQL) and those committed before a restart.

Payload (stable, ``version`` 1; new keys may be added, none removed or retyped; the README's
"Webhooks" section is the reference)::

    {"version": 1, "id": "<uuid hex, = X-Gateway-Event-Id>", "type": "bounced",
     "tenant": "acme", "recipient": "ana@example.com.br",
     "queue_id": "<the gateway's message id>", "message_id": "<the application's Message-ID>",
     "event_id": 42, "status": "bounced", "category": "nonexistent_address",
     "reason": "...", "reply_code": 550, "enhanced_status": "5.1.1",
     "diagnostic": "550 5.1.1 user unknown", "reply": "550 5.1.1 user unknown",
     "remote_host": "mx.example.com.br", "at": "2024-05-01T12:00:00+00:00"}

``type`` is named like the statuses: ``queued`` (off by default), ``sent``, ``deferred``,
``bounced`` (a 5xx from the relay, or a DSN of a final failure), ``expired``, ``rejected``,
``suppressed`` (an address suppressed, or a queued recipient not sent because its address
was suppressed since; ``reason`` is the suppression's), ``opt_out``, ``unsuppressed``,
``complaint`` (the recipient's status stays), ``report`` (any other return-path report),
and the opt-in ``duplicate``, ``held``, ``released`` and ``possible_typo`` (accepted, but
the domain looks like a misspelt popular one; the suggested address is in ``diagnostic``;
the status stays as it was, so ``status`` is null), ``tenant_paused`` and ``tenant_resumed``
(issue 15: ``recipient`` is empty, ``reason`` says why — ``bounce_rate``, ``complaint_rate``,
``paused_by_admin``, ``resumed_by_admin`` — and ``diagnostic`` the rates or the note).
``reason`` is the event's typed reason
(``core.model.Reason``) as stored: for ``rejected``, the check that refused (``typo``,
``no_such_domain``, ``quota``, …). A provider's challenge (UOL, BOL, Terra anti-spam; issue
12) is a ``report`` with ``status`` ``provider_hold`` and ``reason`` ``provider_challenge``;
its ``provider`` (``uol``, ``bol``, ``terra``) and ``challenge_url`` (the report's link, or
null) are set, and null on every other event.

Signature: ``X-Gateway-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
"<t>." + body)>``; the receiver checks it with ``verify_signature`` and drops duplicates by
``X-Gateway-Event-Id``. The secret is never logged.

The webhook ``id`` is derived from the event row's id (and the database's salt,
``webhook_id``): an event read twice makes the same id, kept once in the outbox and
droppable by receivers. ``status`` is derived from the event row (``logged_change``); for a
return-path report that did not bounce the recipient, it is the recipient's status when the
event is read. Tenants without an endpoint when the event is read get nothing for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import httpx

from gateway.core.errors import StoreError
from gateway.core.lifecycle import effect_of_event
from gateway.core.model import Category, EventType, Reason, Status
from gateway.core.ports import Clock, Outbox, SystemClock
from gateway.core.records import ClaimedWebhook, OutboxItem
from gateway.observe.events import DomainEvent, RecipientChanged
from gateway.observe.logging import log_event
from gateway.observe.webhook_targets import WebhookTargetRefused, check_target

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from gateway.config import WebhookConfig
    from gateway.core.model import Event
    from gateway.observe.metrics import Metrics

log = logging.getLogger("gateway.observe.webhooks")

SIGNATURE_HEADER = "X-Gateway-Signature"
EVENT_ID_HEADER = "X-Gateway-Event-Id"
EVENT_TYPE_HEADER = "X-Gateway-Event-Type"
USER_AGENT = "mail-gateway-webhooks/1"
SCHEMA_VERSION = 1

# Webhook types, named like the statuses (issue 4). ``queued``, ``duplicate``, ``held``,
# ``released`` and ``possible_typo`` exist but are off by default: ``queued`` doubles the
# traffic for little news, and a possible typo is a warning on mail that was accepted.
ALL_TYPES = frozenset(
    {
        "queued", "sent", "deferred", "bounced", "expired", "rejected", "report", "complaint",
        "suppressed", "opt_out", "unsuppressed", "duplicate", "held", "released",
        "possible_typo", "tenant_paused", "tenant_resumed",
    }
)  # fmt: skip
DEFAULT_TYPES = ALL_TYPES - {"queued", "duplicate", "held", "released", "possible_typo"}

_STATUS_OF_TYPE = {
    EventType.REJECTED: Status.REJECTED,
    EventType.SUPPRESSED: Status.SUPPRESSED,
    EventType.QUEUED: Status.QUEUED,
}
# The status after an event that records no attempt, report or cancellation (those are
# ``core.lifecycle.effect_of_event``'s), from its type (``logged_change``).
_STATUS_OF_EVENT = {
    EventType.QUEUED: Status.QUEUED,
    EventType.REJECTED: Status.REJECTED,
    EventType.SUPPRESSED: Status.SUPPRESSED,
    EventType.HELD: Status.HELD,
}
_BATCH = 500  # events read from the log per outbox transaction
_POLL = timedelta(seconds=2)  # how often the log is read without a wake-up
_IDLE_BATCHES = 100  # with no endpoint at all, ids read per pass: this many batches
# Webhook ids: uuid5 of the database's salt and the event id (``webhook_id``).
_ID_NAMESPACE = uuid.UUID("6f1c3a52-3d0e-4b8e-9a57-2f6a8d1e4c90")


# --- event → payload ------------------------------------------------------------------------------


def logged_change(event: Event, current: Status | None = None) -> RecipientChanged:
    """The recipient change an event row of the log records.

    The status is the one the write that made the row set, as ``core.lifecycle.effect``
    decides for attempts, reports and cancellations (a report of a final failure bounced the
    recipient); an event that left the status as it was (a complaint, a delay notice, an
    auto-reply) takes ``current`` (the recipient's status now). Other events get theirs
    from their type.
    """
    found = effect_of_event(event)
    if found is not None:
        return RecipientChanged(event, found.status or current)
    return RecipientChanged(event, _STATUS_OF_EVENT.get(event.type))


def webhook_id(salt: str, event_id: int) -> str:
    """The webhook id (``X-Gateway-Event-Id``) for the event row ``event_id``: the same every
    time the row is read, and unique across databases (``salt`` is the database's own)."""
    return uuid.uuid5(_ID_NAMESPACE, f"{salt}:{event_id}").hex


def webhook_type(change: RecipientChanged) -> str:
    """The webhook ``type`` of a recipient event (see ``ALL_TYPES``)."""
    ev = change.event
    if ev.type is EventType.REPORT:
        if ev.category is Category.COMPLAINT:
            return "complaint"
        found = effect_of_event(ev)
        if found is not None and found.final_failure:
            # An asynchronous DSN of a final failure: the same news as a 5xx.
            return "bounced"
        return "report"
    if ev.type is EventType.SUPPRESSED and ev.recipient_id is None and ev.reason == Reason.OPT_OUT:
        # The address opted out; a recipient not sent because of it is ``suppressed``.
        return "opt_out"
    return ev.type.value


def payload(
    change: RecipientChanged, event_id: str, message_id: str | None = None
) -> dict[str, object]:
    """The JSON object sent for ``change`` (schema in the module docstring).

    Args:
        change: the recipient event.
        event_id: the webhook's own id (``X-Gateway-Event-Id``).
        message_id: the application's ``Message-ID`` header of the message, when known.
    """
    ev = change.event
    status = change.status or _STATUS_OF_TYPE.get(ev.type)
    challenge = ev.reason == Reason.PROVIDER_CHALLENGE
    reply = " ".join(
        p for p in (str(ev.reply_code) if ev.reply_code else "", ev.enhanced or "", ev.text) if p
    )
    return {
        "version": SCHEMA_VERSION,
        "id": event_id,
        "type": webhook_type(change),
        "tenant": ev.tenant,
        "recipient": ev.address,
        "queue_id": ev.queue_id,
        "message_id": message_id,
        "event_id": ev.event_id,
        "status": status.value if status else None,
        "category": ev.category.value if ev.category else None,
        "reason": str(ev.reason),
        "reply_code": ev.reply_code,
        "enhanced_status": ev.enhanced or None,
        "diagnostic": reply or None,
        "reply": reply,
        "remote_host": ev.remote_host,
        "at": ev.at.astimezone(UTC).isoformat(),
        # Issue 15: a suppression's scope and the message's stream, where the event has them.
        "scope": ev.details.get("scope"),
        "stream": ev.details.get("stream"),
        # Issue 12: the provider that holds the message until the sender answers its challenge.
        "provider": ev.details.get("provider_hint") if challenge else None,
        "challenge_url": (ev.details.get("challenge_url") or None) if challenge else None,
    }


# --- signatures ---------------------------------------------------------------------------------


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``X-Gateway-Signature`` value for ``body`` sent at ``timestamp`` (unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    now: datetime,
    tolerance: timedelta = timedelta(minutes=5),
) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` and its time is within tolerance.

    For receivers (and tests). Several ``v1=`` entries are accepted, any one matching, so a
    sender may sign with an old and a new secret during a rotation. The tolerance bounds
    replay of a captured request.

    Args:
        secret: the tenant's webhook secret.
        header: the ``X-Gateway-Signature`` value.
        body: the raw request body, exactly as received.
        now: the receiver's current time.
        tolerance: how far the signed time may be from ``now``.
    """
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    if abs(now.timestamp() - timestamp) > tolerance.total_seconds():
        return False
    expected = sign(secret, body, timestamp).rpartition("v1=")[2]
    # Compare every candidate (no early exit) in constant time.
    return any([hmac.compare_digest(expected, c) for c in candidates])  # noqa: C419


# --- domain events → the outbox -----------------------------------------------------------------


class WebhookOutbox:
    """Turns the store's events log into outbox rows, off the hot path, crash-safe.

    ``run`` reads the events after the durable cursor in batches, builds the payloads of
    the wanted types for tenants that have an endpoint, and writes the rows and moves the
    cursor in one transaction (``commit_webhooks``); then it wakes the dispatcher. As an
    ``EventSink``, ``publish`` only wakes ``run``: the event itself is read from the log.
    ``run`` also reads the log every ``poll_interval``, for events committed by other nodes
    or before a restart. At least once: a crash before the commit reads the batch again.

    Args:
        store: a store with the outbox queries (``SqliteStore``, or ``ObservedStore`` on it).
        types: the webhook types to send (``DEFAULT_TYPES``).
        metrics: kept for the constructor's signature (nothing is dropped any more).
        wake: called after rows were written (``WebhookDispatcher.wake``).
        tenant_cache: how long the set of tenants with an endpoint is reused when it is
            read from the store (without ``endpoints``).
        batch: events read per transaction.
        poll_interval: how often the log is read without a wake-up.
        endpoints: the tenants with a webhook endpoint now, from the tenant directory
            (``services.tenants``: one view of the tenants, a change seen within about a
            second on every node); the store is read (and cached) without it.
    """

    def __init__(
        self,
        store: Outbox,
        types: frozenset[str] = DEFAULT_TYPES,
        metrics: Metrics | None = None,
        wake: Callable[[], None] | None = None,
        tenant_cache: timedelta = timedelta(seconds=5),
        batch: int = _BATCH,
        poll_interval: timedelta = _POLL,
        endpoints: Callable[[], Awaitable[frozenset[str]]] | None = None,
    ) -> None:
        self.store = store
        self.endpoints = endpoints
        self.types = types
        self.metrics = metrics
        self.wake = wake
        self.tenant_cache = tenant_cache
        self.batch = batch
        self.poll_interval = poll_interval
        self._ready = asyncio.Event()
        self._tenants: frozenset[str] = frozenset()
        self._tenants_at: float | None = None

    def publish(self, event: DomainEvent) -> None:
        if isinstance(event, RecipientChanged):  # an event row was committed: go read it
            self._ready.set()

    def invalidate_tenants(self) -> None:
        """Forget the cached tenant set (call after ``set_webhook``/``delete_webhook``)."""
        self._tenants_at = None

    async def run(self, stopping: asyncio.Event) -> None:
        """Move events from the log to the outbox until ``stopping``; the log is read to its
        end once more then (what is left is read at the next start)."""
        loop = asyncio.get_running_loop()
        while True:
            self._ready.clear()  # a publish from now on means another pass
            try:
                more = await self.collect()
            except StoreError as exc:
                log_event(log, "webhooks.outbox_write_failed", logging.ERROR, error=str(exc))
                if stopping.is_set():
                    return  # the store is going away: the log keeps the events for next time
                self._ready.clear()  # retry in a second, whatever wakes us
                await self._pause(stopping, loop.time() + 1)
                continue
            if more:
                continue
            if stopping.is_set():
                return
            await self._pause(stopping, loop.time() + self.poll_interval.total_seconds())

    async def _pause(self, stopping: asyncio.Event, until: float) -> None:
        """Wait for a wake-up until ``until`` (loop time); stopping is noticed within 0.1 s."""
        loop = asyncio.get_running_loop()
        while not self._ready.is_set() and not stopping.is_set():
            left = until - loop.time()
            if left <= 0:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(0.1, left)):
                    await self._ready.wait()

    async def collect(self) -> bool:
        """Move one batch of the log to the outbox; true when there may be more right away
        (a full batch, or another node took this one)."""
        tenants = await self._endpoint_tenants()
        # Events of tenants without an endpoint only move the cursor: the store skips
        # decoding them (most events, on a gateway whose applications do not use webhooks).
        # With no endpoint at all only ids are read and nothing is written but the cursor,
        # so a backlog (a store that ran without webhooks) is passed in far fewer commits.
        limit = self.batch if tenants else self.batch * _IDLE_BATCHES
        batch = await self.store.webhook_events(limit, tenants)
        if batch.next == batch.cursor:
            return False
        wanted = []
        for event, current in batch.events:
            change = logged_change(event, current)
            if event.tenant in tenants and webhook_type(change) in self.types:
                wanted.append(change)
        # The application's Message-ID, one query per batch (events carry only the queue id).
        message_ids = await self.store.webhook_message_ids(
            sorted({c.event.queue_id for c in wanted if c.event.queue_id})
        )
        now = datetime.now(UTC)
        items = []
        for change in wanted:
            assert change.event.event_id is not None  # read from the log: always set
            event_id = webhook_id(batch.salt, change.event.event_id)
            message_id = message_ids.get(change.event.queue_id or "")
            body = json.dumps(payload(change, event_id, message_id), separators=(",", ":")).encode()
            items.append(OutboxItem(event_id, change.event.tenant, webhook_type(change), body, now))
        if not await self.store.commit_webhooks(batch.cursor, batch.next, items):
            return True  # the cursor moved meanwhile: read again from where it is now
        if items and self.wake is not None:
            self.wake()
        return batch.rows >= limit

    async def _endpoint_tenants(self) -> frozenset[str]:
        if self.endpoints is not None:
            return await self.endpoints()
        loop_now = asyncio.get_running_loop().time()
        if (
            self._tenants_at is None
            or loop_now - self._tenants_at > self.tenant_cache.total_seconds()
        ):
            self._tenants = await self.store.webhook_tenants()
            self._tenants_at = loop_now
        return self._tenants


# --- the outbox → HTTP --------------------------------------------------------------------------


class WebhookDispatcher:
    """POSTs due outbox rows, signed, and records each result (see the module docstring).

    Args:
        config: the ``[webhooks]`` section.
        store: a store with the outbox queries.
        metrics: counts results, when given.
        clock: time source.
        batch: rows claimed (and POSTed concurrently) at a time.
        poll_interval: how often to look for rows that became due without a wake-up.
        transport: an httpx transport, for tests that cannot use the network.
    """

    def __init__(
        self,
        config: WebhookConfig,
        store: Outbox,
        metrics: Metrics | None = None,
        clock: Clock | None = None,
        batch: int = 20,
        poll_interval: timedelta = timedelta(seconds=1),
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.metrics = metrics
        self.clock = clock or SystemClock()
        self.batch = batch
        self.poll_interval = poll_interval
        self.transport = transport
        self._wakeup = asyncio.Event()

    def wake(self) -> None:
        self._wakeup.set()

    async def run(self, stopping: asyncio.Event) -> None:
        """Deliver until ``stopping`` is set; a POST in flight then is finished first."""
        timeout = self.config.timeout.total_seconds()
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,  # a redirect could lead to a private target
            trust_env=False,  # no proxies or .netrc from the environment
            transport=self.transport,
            headers={"User-Agent": USER_AGENT, "Content-Type": "application/json"},
        ) as client:
            while not stopping.is_set():
                try:
                    claimed = await self.store.claim_webhooks(
                        self.clock.now(), self.batch, self._lease()
                    )
                except StoreError as exc:
                    log_event(log, "webhooks.claim_failed", logging.ERROR, error=str(exc))
                    claimed = []
                if claimed:
                    async with asyncio.TaskGroup() as tasks:
                        for item in claimed:
                            tasks.create_task(self.deliver(client, item))
                    continue
                # Stopping is noticed within one poll interval; ``wake`` cuts the wait short.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_interval.total_seconds()):
                        await self._wakeup.wait()
                self._wakeup.clear()

    def _lease(self) -> timedelta:
        # Long enough for the POST (connect + read) and the bookkeeping after it.
        return self.config.timeout * 2 + timedelta(seconds=30)

    async def deliver(self, client: httpx.AsyncClient, item: ClaimedWebhook) -> str:
        """POST one row and record the result; returns it (one of ``WEBHOOK_RESULTS``)."""
        now = self.clock.now()
        error = ""
        if not item.url:
            result, error = "gave_up", "the tenant has no webhook endpoint any more"
        else:
            try:
                check_target(item.url, allow_private=self.config.allow_private_targets)
            except WebhookTargetRefused as exc:
                result, error = "refused", str(exc)
            else:
                result, error = await self._post(client, item)
        attempt = item.attempts + 1
        next_at: datetime | None = None
        if result == "retry":
            if attempt >= self.config.max_attempts:
                result = "gave_up"
            else:
                next_at = now + backoff(self.config, attempt)
        try:
            if result == "delivered":
                await self.store.mark_webhook_delivered(item.id, now)
            else:
                await self.store.mark_webhook_failed(item.id, next_at, error)
        except StoreError as exc:  # the lease runs out and the row is tried again
            log_event(log, "webhooks.mark_failed", logging.ERROR, id=item.id, error=str(exc))
        if self.metrics is not None:
            self.metrics.webhook_result(item.tenant, result)
        log_event(
            log,
            "webhooks.attempt",
            logging.INFO if result == "delivered" else logging.WARNING,
            id=item.id,
            tenant=item.tenant,
            type=item.type,
            host=httpx.URL(item.url).host if item.url and result != "refused" else "",
            result=result,
            attempt=attempt,
            error=error,
            next_at=next_at,
        )
        return result

    async def _post(self, client: httpx.AsyncClient, item: ClaimedWebhook) -> tuple[str, str]:
        timestamp = int(self.clock.now().timestamp())
        headers = {
            SIGNATURE_HEADER: sign(item.secret, item.body, timestamp),
            EVENT_ID_HEADER: item.id,
            EVENT_TYPE_HEADER: item.type,
        }
        try:
            # httpx's timeout applies per phase; this one bounds the whole exchange.
            async with asyncio.timeout(self.config.timeout.total_seconds() * 2):
                response = await client.post(item.url, content=item.body, headers=headers)
        except (httpx.HTTPError, TimeoutError) as exc:
            return "retry", f"{type(exc).__name__}: {exc}"[:300]
        if 200 <= response.status_code < 300:
            return "delivered", ""
        if response.status_code == 410:  # the receiver asks us to stop for good
            return "gone", "410 Gone"
        return "retry", f"HTTP {response.status_code}"


def backoff(config: WebhookConfig, attempt: int) -> timedelta:
    """The wait after failed attempt number ``attempt`` (1-based): ``retry_intervals`` in
    order, the last one repeating."""
    intervals = config.retry_intervals or (timedelta(minutes=1),)
    return intervals[min(attempt, len(intervals)) - 1]


def retry_span(config: WebhookConfig) -> timedelta:
    """How long after the first attempt the last one is made, before giving up.

    The issue asks for at least 24 hours; with the defaults (1m, 5m, 30m, 2h, 12h, the
    last repeating, 20 attempts) it is about 7.6 days. Ignores POST durations and leases.
    """
    return sum((backoff(config, n) for n in range(1, config.max_attempts)), timedelta())
