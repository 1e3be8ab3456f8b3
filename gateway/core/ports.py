"""The ports adapters implement: the store's, ``Resolver``, ``Clock``, ``Tenants``.

Owns: the contracts between the pure core and the world. A fake implements a port for a
unit test; a contract suite runs every real adapter against the same expectations.

The store is split by what each caller needs: the intake's queue (``QueueStore``), quota
holds (``Quotas``), suppressions (``Suppressions``), the relay's claims (``RelayQueue``),
history (``History``), tenants (``TenantStore``), the admin API's queries and writes
(``AdminQueries``), the webhook outbox (``Outbox``), retention (``Retention``), the gauges
(``Gauges``) and the store's own life (``StoreLifecycle``). ``Store`` is all of them: what
each store adapter implements, and what ``observe.events.ObservedStore`` wraps. The
records they exchange are ``core.records``'.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from gateway.core.admin_ports import SuppressionTransfer, TenantTokens
from gateway.core.feedback import FeedbackReports
from gateway.core.model import (
    Delivery,
    Event,
    EventType,
    NewMessage,
    Status,
    Suppression,
    SuppressionReason,
    Tenant,
)
from gateway.core.policy_ports import Holds, StreamStore, SupportViews
from gateway.core.records import (
    AuditEntry,
    AuditOf,
    ClaimedWebhook,
    EnqueueResult,
    Erasure,
    EventBatch,
    MessageFilter,
    MessageRow,
    OutboxItem,
    Outcome,
    QueueSummary,
    QuotaUse,
    RecipientView,
    TenantSettings,
    WebhookRecord,
    WebhookTarget,
    notices_of,
)
from gateway.core.replies import Reply
from gateway.core.streams import Scope, Stream


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class MxHost:
    preference: int
    host: str


@dataclass(frozen=True, slots=True)
class MxAnswer:
    """The MX set of a domain. ``null`` is RFC 7505's "accepts no mail"; ``implicit`` means
    there was no MX and the domain's own A/AAAA stands in (RFC 5321 §5.1)."""

    hosts: tuple[MxHost, ...] = ()
    null: bool = False
    implicit: bool = False


class Resolver(Protocol):
    """DNS for intake checks and routing. Raises ``DnsTemporary`` or ``DnsPermanent``."""

    async def mx(self, domain: str) -> MxAnswer: ...

    async def addresses(self, host: str) -> tuple[str, ...]: ...


class Tenants(Protocol):
    """The tenant directory (``gateway.services.tenants``): each tenant as stored, with a
    change made on any node seen within about a second."""

    async def tenant(self, name: str) -> Tenant:
        """The tenant by name; one without settings when none is stored by that name."""
        ...


class StoreLifecycle(Protocol):
    """Opening, closing and looking after the store (the composition root, the CLI)."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None: ...

    async def backup(self, dest: str | Path) -> None:
        """A consistent copy of the database at ``dest``; ``StoreError`` where the
        database has tools of its own for that (PostgreSQL)."""
        ...

    def hold_node(self, node_id: str) -> None:
        """Claim ``node_id`` for this process until ``close`` (a second relay with the
        same id would release the first one's leases); ``StoreError`` when it is taken."""
        ...

    async def listen(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` whenever another process or node commits new work, until
        the store is closed (SQLite: nothing to hear; returns at ``close``)."""
        ...


class TenantStore(Protocol):
    """Tenants, their settings, SMTP logins and DKIM keys (the tenant directory, the CLI,
    the admin API)."""

    async def ensure_tenant(self, tenant: Tenant) -> None: ...

    async def update_tenant(self, tenant: Tenant) -> None: ...

    async def get_tenant(self, name: str) -> Tenant | None: ...

    async def list_tenants(self) -> list[Tenant]: ...

    async def tenant_generation(self) -> int:
        """The counter every change to tenants, credentials, DKIM keys and webhook
        endpoints moves."""
        ...

    async def webhook_tenants(self) -> frozenset[str]:
        """The tenants that have a webhook endpoint."""
        ...

    async def get_credentials(self, username: str) -> tuple[str, str] | None: ...

    async def set_credentials(
        self, tenant: str, username: str, secret_hash: str, *, audit: AuditOf | None = None
    ) -> None: ...

    async def set_dkim_key(
        self, tenant: str, domain: str, selector: str, algorithm: str, private_key_pem: bytes
    ) -> None: ...

    async def dkim_keys(self) -> list[tuple[str, str, str, str, bytes]]: ...

    async def create_tenant(
        self,
        settings: TenantSettings,
        now: datetime,
        *,
        credentials: tuple[str, str] | None = None,
        audit: AuditOf | None = None,
    ) -> bool: ...

    async def tenant_settings(self, name: str) -> TenantSettings | None: ...

    async def list_tenant_settings(self) -> list[TenantSettings]: ...

    async def update_tenant_settings(
        self, name: str, changes: dict[str, Any], *, audit: AuditOf | None = None
    ) -> bool: ...


class QueueStore(Protocol):
    """The intake's queue: messages in, events, a recipient's status outside an attempt."""

    async def enqueue(
        self, message: NewMessage, duplicate_window: timedelta, *, audit: AuditOf | None = None
    ) -> EnqueueResult:
        """Commit the message, its recipients and their ``queued`` events, settling the
        quota holds of ``message.hold``; ``audit`` builds an admin audit entry written in
        the same transaction."""
        ...

    async def record_event(self, event: Event) -> int: ...

    async def count_accepted(self, tenant: str, since: datetime) -> int: ...

    async def recipients_of(self, queue_id: str) -> list[RecipientView]: ...

    async def load_content(self, queue_id: str) -> bytes | None: ...

    async def update_recipient(self, recipient_id: int, status: Status | None, event: Event) -> int:
        """Set a recipient's status (``None`` keeps the row's own), category and reply from
        ``event``, outside an attempt, and record ``event``; returns the event's id."""
        ...


class Quotas(Protocol):
    """Quota holds at ``RCPT`` (the intake's checks), and their check without a hold."""

    async def reserve_quota(
        self,
        tenant: str,
        holder: str,
        address: str,
        limits: Sequence[tuple[int, timedelta]],
        now: datetime,
        expires_at: datetime,
    ) -> int | None:
        """Hold one recipient of an open transaction (``holder``) against the tenant's
        (most recipients, window) ``limits``, counting what every session and node holds or
        queued, atomically: ``None`` when held (or held already), else the index of the
        first limit it would exceed. ``NewMessage.hold`` settles the holds at enqueue;
        ``release_quota`` gives them back; unsettled, they lapse at ``expires_at``."""
        ...

    async def quota_exceeded(
        self, tenant: str, limits: Sequence[tuple[int, timedelta]], now: datetime
    ) -> int | None:
        """``reserve_quota``'s answer for one more recipient, counted the same way, without
        holding it (``gateway check``, the admin API's address check)."""
        ...

    async def release_quota(self, holder: str) -> int: ...


class Suppressions(Protocol):
    """The suppression list (intake checks, policy, relay, bounce sink, admin API)."""

    async def find_suppression(
        self, tenant: str, address: str, now: datetime
    ) -> Suppression | None: ...

    async def find_hashed_suppression(
        self, tenant: str, address: str, now: datetime
    ) -> Suppression | None: ...

    async def suppression_for(
        self, tenant: str, address: str, stream: Stream, now: datetime
    ) -> Suppression | None:
        """The active suppression of ``address`` that stops ``stream`` (scope ``all`` or the
        stream's, ``all`` first) in clear, else the hashed one an erasure left, in one
        round trip."""
        ...

    async def active_suppressions(
        self, address: str, tenant: str | None, now: datetime
    ) -> list[Suppression]: ...

    async def suppressions_among(
        self, recipients: Sequence[tuple[str, str, Stream]], now: datetime
    ) -> dict[tuple[str, str, Stream], Suppression]:
        """The active suppression of each ``(tenant, address, stream)`` that has one (scope
        ``all`` or the stream's), in clear or hashed (an erased address), the clear one
        first, as ``suppression_for`` finds it: for a whole claimed batch, in one query."""
        ...

    async def add_suppression(self, suppression: Suppression) -> None: ...

    async def suppress_with_event(
        self,
        suppression: Suppression,
        event: Event,
        *,
        keep_permanent: bool = False,
        audit: AuditOf | None = None,
    ) -> tuple[Suppression, int] | None:
        """Write ``suppression`` and its ``suppressed`` ``event`` in one transaction: both or
        neither (issue 13). An ``event_id`` of ``None`` on the suppression becomes the new
        event's. ``keep_permanent``: an existing suppression without expiry is kept, and
        nothing is written (``None``). Returns the stored suppression and the event's id."""
        ...

    async def lift_suppressions(
        self,
        address: str,
        tenant: str | None,
        make_event: Callable[[Suppression], Event],
        *,
        audit: AuditOf | None = None,
        scope: Scope | None = None,
        probation: Callable[[str], timedelta | None] | None = None,
    ) -> list[tuple[Suppression, int]]:
        """Remove the address's suppressions (of ``scope`` only, when given) with an
        ``unsuppressed`` event each; ``probation`` gives a tenant's probation length, started
        from each event in the same transaction (``None``: no probation)."""
        ...

    async def remove_suppression(self, tenant: str | None, address: str) -> int: ...

    async def list_suppressions(
        self, tenant: str | None, reason: SuppressionReason | None, limit: int, after: str = ""
    ) -> list[Suppression]: ...


class RelayQueue(Protocol):
    """The relay's side of the queue: claims under a lease, outcomes fenced by it."""

    async def claim_due(
        self, now: datetime, limit: int, owner: str, lease: timedelta
    ) -> list[Delivery]: ...

    async def claim_due_with_content(
        self, now: datetime, limit: int, owner: str, lease: timedelta
    ) -> tuple[list[Delivery], dict[str, bytes | None]]:
        """``claim_due`` by whole messages (every due recipient of a claimed message, even
        past ``limit``), with queue id -> content (``None`` if gone) of each claimed message."""
        ...

    async def next_due(self) -> datetime | None: ...

    async def record_outcomes(self, outcomes: Sequence[Outcome], owner: str) -> dict[int, int]:
        """Record attempt results (with their ``Outcome.suppress`` and ``Outcome.notice``)
        in one transaction; rows no longer leased to ``owner`` are fenced off. Returns
        recipient id -> event id of each outcome recorded."""
        ...

    async def release_claims(
        self,
        owner: str,
        recipient_ids: Sequence[int] | None = None,
        due: datetime | None = None,
    ) -> int: ...

    async def suppressions_among(
        self, recipients: Sequence[tuple[str, str, Stream]], now: datetime
    ) -> dict[tuple[str, str, Stream], Suppression]: ...


class History(Protocol):
    """What happened to an address or a message (the policy, the support page, the API)."""

    async def events_for(self, address: str, tenant: str | None, limit: int) -> list[Event]: ...

    async def events_of_message(self, queue_id: str) -> list[Event]: ...

    async def event_by_id(self, event_id: int) -> Event | None: ...

    async def latest_event(
        self, address: str, tenant: str | None, kind: EventType
    ) -> Event | None: ...

    async def latest_rejection(self, address: str, tenant: str | None) -> Event | None: ...

    async def latest_recipient(self, address: str, tenant: str | None) -> RecipientView | None: ...

    async def recipient(self, recipient_id: int) -> RecipientView | None: ...

    async def recipients_of(self, queue_id: str) -> list[RecipientView]: ...

    async def failure_streak(self, tenant: str, address: str, since: datetime) -> list[Event]: ...


class AdminQueries(Protocol):
    """The admin API's message list, queue control, erasure, statistics and audit trail."""

    async def list_messages(
        self, where: MessageFilter, limit: int, after: tuple[float, str] | None
    ) -> list[MessageRow]: ...

    async def message(self, queue_id: str) -> MessageRow | None: ...

    async def recipients_summary(
        self, queue_ids: Sequence[str]
    ) -> dict[str, list[tuple[str, str, str | None]]]: ...

    async def set_held(
        self,
        queue_id: str,
        held: bool,
        make_event: Callable[[RecipientView], Event],
        *,
        audit: AuditOf | None = None,
    ) -> int | None: ...

    async def cancel_message(
        self,
        queue_id: str,
        make_event: Callable[[RecipientView], Event],
        *,
        audit: AuditOf | None = None,
    ) -> int | None: ...

    async def erase_address(
        self, address: str, now: datetime, *, audit: AuditOf | None = None
    ) -> Erasure: ...

    async def event_counts(
        self, since: datetime
    ) -> list[tuple[str, str, str | None, str, int]]: ...

    async def recipient_counts(self, since: datetime) -> list[tuple[str, str, str | None, int]]: ...

    async def audit(self, entry: AuditEntry) -> int: ...

    async def list_audit(self, limit: int, before_id: int | None) -> list[AuditEntry]: ...


class Outbox(Protocol):
    """The webhook endpoints and the durable outbox fed from the events log."""

    async def set_webhook(self, tenant: str, url: str, secret: str) -> None: ...

    async def get_webhook(self, tenant: str) -> WebhookTarget | None: ...

    async def delete_webhook(self, tenant: str) -> int: ...

    async def webhook_tenants(self) -> frozenset[str]: ...

    async def webhook_message_ids(self, queue_ids: Sequence[str]) -> dict[str, str]: ...

    async def webhook_events(
        self, limit: int, tenants: frozenset[str] | None = None
    ) -> EventBatch: ...

    async def commit_webhooks(
        self, cursor: tuple[int, int], next: tuple[int, int], items: Sequence[OutboxItem]
    ) -> bool: ...

    async def enqueue_webhook(self, item: OutboxItem) -> None: ...

    async def enqueue_webhooks(self, items: Sequence[OutboxItem]) -> None: ...

    async def claim_webhooks(
        self, now: datetime, limit: int, lease: timedelta = timedelta(seconds=120)
    ) -> list[ClaimedWebhook]: ...

    async def mark_webhook_delivered(self, id: str, at: datetime | None = None) -> None: ...

    async def mark_webhook_failed(self, id: str, next_at: datetime | None, error: str) -> None: ...

    async def webhook_history(self, tenant: str, limit: int = 50) -> list[WebhookRecord]: ...

    async def webhook_deliveries(
        self,
        tenant: str | None,
        state: str | None,
        limit: int,
        before: tuple[float, str] | None = None,
    ) -> list[WebhookRecord]: ...


class Retention(Protocol):
    """What the retention task deletes (``services.retention``)."""

    async def purge_content(self, before: datetime, limit: int) -> int: ...

    async def purge_events(self, before: datetime, limit: int) -> int: ...

    async def purge_quota(self, now: datetime) -> int: ...

    async def purge_feedback_reports(self, before: datetime) -> int: ...


class Gauges(Protocol):
    """What the metrics' gauges read (``observe.metrics``)."""

    async def queue_summary(self) -> QueueSummary: ...

    async def oldest_waiting_recipient(self) -> datetime | None: ...

    async def webhook_backlog(self) -> tuple[int, datetime | None]: ...

    async def pause_states(self) -> list[tuple[str, bool]]:
        """(tenant, paused) of every tenant ever paused or given a policy (issue 15)."""
        ...

    async def quota_use(self, now: datetime) -> list[QuotaUse]:
        """Each tenant's use of each of its quotas at ``now`` (tenants with a quota only)."""
        ...


class Store(
    StoreLifecycle,
    TenantStore,
    QueueStore,
    Quotas,
    Suppressions,
    RelayQueue,
    History,
    AdminQueries,
    Outbox,
    Retention,
    Gauges,
    SuppressionTransfer,
    FeedbackReports,
    TenantTokens,
    SupportViews,
    Holds,
    StreamStore,
    Protocol,
):
    """Durable state, every port of it: what each store adapter implements."""


__all__ = [
    "AdminQueries",
    "AuditEntry",
    "AuditOf",
    "ClaimedWebhook",
    "Clock",
    "EnqueueResult",
    "Erasure",
    "EventBatch",
    "FeedbackReports",
    "Gauges",
    "History",
    "Holds",
    "MessageFilter",
    "MessageRow",
    "MxAnswer",
    "MxHost",
    "Outbox",
    "OutboxItem",
    "Outcome",
    "QueueStore",
    "QueueSummary",
    "QuotaUse",
    "Quotas",
    "RecipientView",
    "RelayQueue",
    "Reply",
    "Resolver",
    "Retention",
    "Store",
    "StoreLifecycle",
    "StreamStore",
    "SupportViews",
    "SuppressionTransfer",
    "Suppressions",
    "SystemClock",
    "TenantSettings",
    "TenantStore",
    "TenantTokens",
    "Tenants",
    "WebhookRecord",
    "WebhookTarget",
    "notices_of",
]
