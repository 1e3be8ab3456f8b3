"""``StoreDelegate``: a ``Store`` that hands every call to another one.

Owns: the plain delegation of each store port's methods, written out so a wrapper is
type-checked against ``core.ports.Store`` (``observe.events.ObservedStore`` overrides the
writes it observes). Does not own: what a wrapper adds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.core.access import TenantToken
from gateway.core.activity import OverviewCounts, TenantActivity
from gateway.core.feedback import UnattributedReport
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
from gateway.core.ports import Store
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
)
from gateway.core.streams import Probation, Scope, Stream
from gateway.core.tenant_policy import PauseCause, TenantPolicy, WindowCounts
from gateway.core.transfer import ImportCounts, SuppressionExport


class StoreDelegate:
    """Every ``Store`` method, passed on to ``inner`` unchanged.

    Args:
        inner: the store that does the work.
    """

    def __init__(self, inner: Store) -> None:
        self.inner = inner

    # --- StoreLifecycle ------------------------------------------------------------------

    async def open(self) -> None:
        return await self.inner.open()

    async def close(self) -> None:
        return await self.inner.close()

    async def ping(self) -> None:
        return await self.inner.ping()

    async def backup(self, dest: str | Path) -> None:
        return await self.inner.backup(dest)

    def hold_node(self, node_id: str) -> None:
        return self.inner.hold_node(node_id)

    async def listen(self, callback: Callable[[], None]) -> None:
        return await self.inner.listen(callback)

    # --- TenantStore ---------------------------------------------------------------------

    async def ensure_tenant(self, tenant: Tenant) -> None:
        return await self.inner.ensure_tenant(tenant)

    async def update_tenant(self, tenant: Tenant) -> None:
        return await self.inner.update_tenant(tenant)

    async def get_tenant(self, name: str) -> Tenant | None:
        return await self.inner.get_tenant(name)

    async def list_tenants(self) -> list[Tenant]:
        return await self.inner.list_tenants()

    async def tenant_generation(self) -> int:
        return await self.inner.tenant_generation()

    async def get_credentials(self, username: str) -> tuple[str, str] | None:
        return await self.inner.get_credentials(username)

    async def set_credentials(
        self, tenant: str, username: str, secret_hash: str, *, audit: AuditOf | None = None
    ) -> None:
        return await self.inner.set_credentials(tenant, username, secret_hash, audit=audit)

    async def set_dkim_key(
        self, tenant: str, domain: str, selector: str, algorithm: str, private_key_pem: bytes
    ) -> None:
        return await self.inner.set_dkim_key(tenant, domain, selector, algorithm, private_key_pem)

    async def dkim_keys(self) -> list[tuple[str, str, str, str, bytes]]:
        return await self.inner.dkim_keys()

    async def create_tenant(
        self,
        settings: TenantSettings,
        now: datetime,
        *,
        credentials: tuple[str, str] | None = None,
        audit: AuditOf | None = None,
    ) -> bool:
        return await self.inner.create_tenant(settings, now, credentials=credentials, audit=audit)

    async def tenant_settings(self, name: str) -> TenantSettings | None:
        return await self.inner.tenant_settings(name)

    async def list_tenant_settings(self) -> list[TenantSettings]:
        return await self.inner.list_tenant_settings()

    async def update_tenant_settings(
        self, name: str, changes: dict[str, Any], *, audit: AuditOf | None = None
    ) -> bool:
        return await self.inner.update_tenant_settings(name, changes, audit=audit)

    # --- QueueStore ----------------------------------------------------------------------

    async def enqueue(
        self, message: NewMessage, duplicate_window: timedelta, *, audit: AuditOf | None = None
    ) -> EnqueueResult:
        return await self.inner.enqueue(message, duplicate_window, audit=audit)

    async def record_event(self, event: Event) -> int:
        return await self.inner.record_event(event)

    async def count_accepted(self, tenant: str, since: datetime) -> int:
        return await self.inner.count_accepted(tenant, since)

    async def recipients_of(self, queue_id: str) -> list[RecipientView]:
        return await self.inner.recipients_of(queue_id)

    async def load_content(self, queue_id: str) -> bytes | None:
        return await self.inner.load_content(queue_id)

    async def update_recipient(self, recipient_id: int, status: Status | None, event: Event) -> int:
        return await self.inner.update_recipient(recipient_id, status, event)

    # --- Quotas --------------------------------------------------------------------------

    async def reserve_quota(
        self,
        tenant: str,
        holder: str,
        address: str,
        limits: Sequence[tuple[int, timedelta]],
        now: datetime,
        expires_at: datetime,
    ) -> int | None:
        return await self.inner.reserve_quota(tenant, holder, address, limits, now, expires_at)

    async def quota_exceeded(
        self, tenant: str, limits: Sequence[tuple[int, timedelta]], now: datetime
    ) -> int | None:
        return await self.inner.quota_exceeded(tenant, limits, now)

    async def release_quota(self, holder: str) -> int:
        return await self.inner.release_quota(holder)

    # --- Suppressions --------------------------------------------------------------------

    async def find_suppression(
        self, tenant: str, address: str, now: datetime
    ) -> Suppression | None:
        return await self.inner.find_suppression(tenant, address, now)

    async def find_hashed_suppression(
        self, tenant: str, address: str, now: datetime
    ) -> Suppression | None:
        return await self.inner.find_hashed_suppression(tenant, address, now)

    async def suppression_for(
        self, tenant: str, address: str, stream: Stream, now: datetime
    ) -> Suppression | None:
        return await self.inner.suppression_for(tenant, address, stream, now)

    async def active_suppressions(
        self, address: str, tenant: str | None, now: datetime
    ) -> list[Suppression]:
        return await self.inner.active_suppressions(address, tenant, now)

    async def suppressions_among(
        self, recipients: Sequence[tuple[str, str, Stream]], now: datetime
    ) -> dict[tuple[str, str, Stream], Suppression]:
        return await self.inner.suppressions_among(recipients, now)

    async def add_suppression(self, suppression: Suppression) -> None:
        return await self.inner.add_suppression(suppression)

    async def suppress_with_event(
        self,
        suppression: Suppression,
        event: Event,
        *,
        keep_permanent: bool = False,
        audit: AuditOf | None = None,
    ) -> tuple[Suppression, int] | None:
        return await self.inner.suppress_with_event(
            suppression, event, keep_permanent=keep_permanent, audit=audit
        )

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
        return await self.inner.lift_suppressions(
            address, tenant, make_event, audit=audit, scope=scope, probation=probation
        )

    # --- StreamStore ---------------------------------------------------------------------

    async def probations(self, address: str, tenant: str | None, now: datetime) -> list[Probation]:
        return await self.inner.probations(address, tenant, now)

    async def set_login_stream(
        self, tenant: str, username: str, stream: Stream | None, *, audit: AuditOf | None = None
    ) -> bool:
        return await self.inner.set_login_stream(tenant, username, stream, audit=audit)

    async def message_stream(self, queue_id: str) -> Stream | None:
        return await self.inner.message_stream(queue_id)

    async def remove_suppression(self, tenant: str | None, address: str) -> int:
        return await self.inner.remove_suppression(tenant, address)

    async def list_suppressions(
        self, tenant: str | None, reason: SuppressionReason | None, limit: int, after: str = ""
    ) -> list[Suppression]:
        return await self.inner.list_suppressions(tenant, reason, limit, after)

    # --- RelayQueue ----------------------------------------------------------------------

    async def claim_due(
        self, now: datetime, limit: int, owner: str, lease: timedelta
    ) -> list[Delivery]:
        return await self.inner.claim_due(now, limit, owner, lease)

    async def claim_due_with_content(
        self, now: datetime, limit: int, owner: str, lease: timedelta
    ) -> tuple[list[Delivery], dict[str, bytes | None]]:
        return await self.inner.claim_due_with_content(now, limit, owner, lease)

    async def next_due(self) -> datetime | None:
        return await self.inner.next_due()

    async def record_outcomes(self, outcomes: Sequence[Outcome], owner: str) -> dict[int, int]:
        return await self.inner.record_outcomes(outcomes, owner)

    async def release_claims(
        self,
        owner: str,
        recipient_ids: Sequence[int] | None = None,
        due: datetime | None = None,
    ) -> int:
        return await self.inner.release_claims(owner, recipient_ids, due)

    # --- History -------------------------------------------------------------------------

    async def events_for(self, address: str, tenant: str | None, limit: int) -> list[Event]:
        return await self.inner.events_for(address, tenant, limit)

    async def events_of_message(self, queue_id: str) -> list[Event]:
        return await self.inner.events_of_message(queue_id)

    async def event_by_id(self, event_id: int) -> Event | None:
        return await self.inner.event_by_id(event_id)

    async def latest_event(self, address: str, tenant: str | None, kind: EventType) -> Event | None:
        return await self.inner.latest_event(address, tenant, kind)

    async def latest_rejection(self, address: str, tenant: str | None) -> Event | None:
        return await self.inner.latest_rejection(address, tenant)

    async def latest_recipient(self, address: str, tenant: str | None) -> RecipientView | None:
        return await self.inner.latest_recipient(address, tenant)

    async def recipient(self, recipient_id: int) -> RecipientView | None:
        return await self.inner.recipient(recipient_id)

    async def failure_streak(self, tenant: str, address: str, since: datetime) -> list[Event]:
        return await self.inner.failure_streak(tenant, address, since)

    # --- AdminQueries --------------------------------------------------------------------

    async def list_messages(
        self, where: MessageFilter, limit: int, after: tuple[float, str] | None
    ) -> list[MessageRow]:
        return await self.inner.list_messages(where, limit, after)

    async def message(self, queue_id: str) -> MessageRow | None:
        return await self.inner.message(queue_id)

    async def recipients_summary(
        self, queue_ids: Sequence[str]
    ) -> dict[str, list[tuple[str, str, str | None]]]:
        return await self.inner.recipients_summary(queue_ids)

    async def set_held(
        self,
        queue_id: str,
        held: bool,
        make_event: Callable[[RecipientView], Event],
        *,
        audit: AuditOf | None = None,
    ) -> int | None:
        return await self.inner.set_held(queue_id, held, make_event, audit=audit)

    async def cancel_message(
        self,
        queue_id: str,
        make_event: Callable[[RecipientView], Event],
        *,
        audit: AuditOf | None = None,
    ) -> int | None:
        return await self.inner.cancel_message(queue_id, make_event, audit=audit)

    async def erase_address(
        self, address: str, now: datetime, *, audit: AuditOf | None = None
    ) -> Erasure:
        return await self.inner.erase_address(address, now, audit=audit)

    async def event_counts(self, since: datetime) -> list[tuple[str, str, str | None, str, int]]:
        return await self.inner.event_counts(since)

    async def recipient_counts(self, since: datetime) -> list[tuple[str, str, str | None, int]]:
        return await self.inner.recipient_counts(since)

    async def audit(self, entry: AuditEntry) -> int:
        return await self.inner.audit(entry)

    async def list_audit(self, limit: int, before_id: int | None) -> list[AuditEntry]:
        return await self.inner.list_audit(limit, before_id)

    # --- Outbox --------------------------------------------------------------------------

    async def set_webhook(self, tenant: str, url: str, secret: str) -> None:
        return await self.inner.set_webhook(tenant, url, secret)

    async def get_webhook(self, tenant: str) -> WebhookTarget | None:
        return await self.inner.get_webhook(tenant)

    async def delete_webhook(self, tenant: str) -> int:
        return await self.inner.delete_webhook(tenant)

    async def webhook_tenants(self) -> frozenset[str]:
        return await self.inner.webhook_tenants()

    async def webhook_message_ids(self, queue_ids: Sequence[str]) -> dict[str, str]:
        return await self.inner.webhook_message_ids(queue_ids)

    async def webhook_events(self, limit: int, tenants: frozenset[str] | None = None) -> EventBatch:
        return await self.inner.webhook_events(limit, tenants)

    async def commit_webhooks(
        self, cursor: tuple[int, int], next: tuple[int, int], items: Sequence[OutboxItem]
    ) -> bool:
        return await self.inner.commit_webhooks(cursor, next, items)

    async def enqueue_webhook(self, item: OutboxItem) -> None:
        return await self.inner.enqueue_webhook(item)

    async def enqueue_webhooks(self, items: Sequence[OutboxItem]) -> None:
        return await self.inner.enqueue_webhooks(items)

    async def claim_webhooks(
        self, now: datetime, limit: int, lease: timedelta = timedelta(seconds=120)
    ) -> list[ClaimedWebhook]:
        return await self.inner.claim_webhooks(now, limit, lease)

    async def mark_webhook_delivered(self, id: str, at: datetime | None = None) -> None:
        return await self.inner.mark_webhook_delivered(id, at)

    async def mark_webhook_failed(self, id: str, next_at: datetime | None, error: str) -> None:
        return await self.inner.mark_webhook_failed(id, next_at, error)

    async def webhook_history(self, tenant: str, limit: int = 50) -> list[WebhookRecord]:
        return await self.inner.webhook_history(tenant, limit)

    async def webhook_deliveries(
        self,
        tenant: str | None,
        state: str | None,
        limit: int,
        before: tuple[float, str] | None = None,
    ) -> list[WebhookRecord]:
        return await self.inner.webhook_deliveries(tenant, state, limit, before)

    # --- Retention -----------------------------------------------------------------------

    async def purge_content(self, before: datetime, limit: int) -> int:
        return await self.inner.purge_content(before, limit)

    async def purge_events(self, before: datetime, limit: int) -> int:
        return await self.inner.purge_events(before, limit)

    async def purge_quota(self, now: datetime) -> int:
        return await self.inner.purge_quota(now)

    # --- Gauges --------------------------------------------------------------------------

    async def queue_summary(self) -> QueueSummary:
        return await self.inner.queue_summary()

    async def oldest_waiting_recipient(self) -> datetime | None:
        return await self.inner.oldest_waiting_recipient()

    async def webhook_backlog(self) -> tuple[int, datetime | None]:
        return await self.inner.webhook_backlog()

    # --- SupportViews --------------------------------------------------------------------

    async def tenant_activity(
        self, tenant: str | None, starts: Sequence[datetime]
    ) -> TenantActivity:
        return await self.inner.tenant_activity(tenant, starts)

    async def overview(self, tenant: str | None, starts: Sequence[datetime]) -> OverviewCounts:
        return await self.inner.overview(tenant, starts)

    async def tenant_texts(self, tenant: str) -> dict[str, dict[str, str]]:
        return await self.inner.tenant_texts(tenant)

    async def set_tenant_texts(
        self,
        tenant: str,
        lang: str,
        values: Mapping[str, str],
        at: datetime,
        *,
        audit: AuditOf | None = None,
    ) -> int:
        return await self.inner.set_tenant_texts(tenant, lang, values, at, audit=audit)

    async def quota_use(self, now: datetime) -> list[QuotaUse]:
        return await self.inner.quota_use(now)

    # --- FeedbackReports (issue 16 item 6) -------------------------------------------------

    async def add_feedback_report(self, report: UnattributedReport) -> int:
        return await self.inner.add_feedback_report(report)

    async def feedback_reports(
        self, limit: int, before_id: int | None = None
    ) -> list[UnattributedReport]:
        return await self.inner.feedback_reports(limit, before_id)

    async def purge_feedback_reports(self, before: datetime) -> int:
        return await self.inner.purge_feedback_reports(before)

    async def queue_ids_by_message_id(self, message_id: str) -> list[str]:
        return await self.inner.queue_ids_by_message_id(message_id)

    # --- SuppressionTransfer ---------------------------------------------------------------

    async def export_suppressions(
        self, where: SuppressionExport, limit: int, after: tuple[str, str, str] | None
    ) -> list[Suppression]:
        return await self.inner.export_suppressions(where, limit, after)

    async def import_suppressions(
        self,
        batch: Sequence[Suppression],
        *,
        dry_run: bool = False,
        audit: AuditOf | None = None,
    ) -> ImportCounts:
        return await self.inner.import_suppressions(batch, dry_run=dry_run, audit=audit)

    # --- TenantTokens ----------------------------------------------------------------------

    async def create_tenant_token(
        self, token: TenantToken, *, audit: AuditOf | None = None
    ) -> None:
        return await self.inner.create_tenant_token(token, audit=audit)

    async def tenant_token_by_digest(self, digest: str) -> TenantToken | None:
        return await self.inner.tenant_token_by_digest(digest)

    async def list_tenant_tokens(self, tenant: str) -> list[TenantToken]:
        return await self.inner.list_tenant_tokens(tenant)

    async def revoke_tenant_token(
        self, tenant: str, token_id: str, now: datetime, *, audit: AuditOf | None = None
    ) -> bool:
        return await self.inner.revoke_tenant_token(tenant, token_id, now, audit=audit)

    # --- Holds (issue 15: hold instead of refuse, the tenant pause) ----------------------

    async def tenant_policy(self, name: str) -> TenantPolicy | None:
        return await self.inner.tenant_policy(name)

    async def update_tenant_policy(
        self,
        name: str,
        changes: dict[str, Any],
        *,
        delivery: bool | None = None,
        audit: AuditOf | None = None,
    ) -> bool:
        return await self.inner.update_tenant_policy(
            name, changes, delivery=delivery, audit=audit
        )

    async def set_tenant_paused(
        self,
        event: Event,
        *,
        paused: bool,
        delivery: bool,
        cause: PauseCause | None,
        audit: AuditOf | None = None,
    ) -> bool | None:
        return await self.inner.set_tenant_paused(
            event, paused=paused, delivery=delivery, cause=cause, audit=audit
        )

    async def outcome_counts(self, tenant: str, since: datetime) -> WindowCounts:
        return await self.inner.outcome_counts(tenant, since)

    async def delivery_paused(self) -> frozenset[str]:
        return await self.inner.delivery_paused()

    async def hold_recipients(
        self,
        queue_id: str,
        until: dict[str, datetime],
        make_event: Callable[[RecipientView], Event],
    ) -> list[RecipientView]:
        return await self.inner.hold_recipients(queue_id, until, make_event)

    async def hold_leased(
        self,
        owner: str,
        until: dict[int, datetime],
        make_event: Callable[[RecipientView], Event],
    ) -> list[RecipientView]:
        return await self.inner.hold_leased(owner, until, make_event)

    async def held_until(self, recipient_ids: Sequence[int]) -> dict[int, datetime]:
        return await self.inner.held_until(recipient_ids)

    async def release_held(
        self,
        now: datetime,
        limit: int,
        make_event: Callable[[RecipientView], Event],
        *,
        tenant: str | None = None,
        address: str | None = None,
    ) -> list[RecipientView]:
        return await self.inner.release_held(
            now, limit, make_event, tenant=tenant, address=address
        )

    async def expire_held(
        self, now: datetime, limit: int, make_event: Callable[[RecipientView], Event]
    ) -> list[RecipientView]:
        return await self.inner.expire_held(now, limit, make_event)

    async def pause_states(self) -> list[tuple[str, bool]]:
        return await self.inner.pause_states()
