"""The store's ports for the delivery policy and the support answers: hold instead of refuse
and the tenant pause (issue 15 items 2 and 4), streams and probation (issue 15 items 1 and
3), and what the support pages read (issue 16 items 1, 3 and 4).

Owns: those three contracts; ``core.ports.Store`` includes them (and re-exports them), so
every store adapter implements them and ``observe.delegate`` restates them. Kept apart from
``core.ports`` only for that module's length.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from gateway.core.activity import OverviewCounts, TenantActivity
from gateway.core.model import Event
from gateway.core.records import AuditOf, RecipientView
from gateway.core.streams import Probation, Stream
from gateway.core.tenant_policy import PauseCause, TenantPolicy, WindowCounts


class Holds(Protocol):
    """Hold instead of refuse and the tenant pause (issue 15; ``services.holds``)."""

    async def tenant_policy(self, name: str) -> TenantPolicy | None: ...

    async def update_tenant_policy(
        self,
        name: str,
        changes: dict[str, Any],
        *,
        delivery: bool | None = None,
        audit: AuditOf | None = None,
    ) -> bool: ...

    async def set_tenant_paused(
        self,
        event: Event,
        *,
        paused: bool,
        delivery: bool,
        cause: PauseCause | None,
        audit: AuditOf | None = None,
    ) -> bool | None: ...

    async def outcome_counts(self, tenant: str, since: datetime) -> WindowCounts: ...

    async def delivery_paused(self) -> frozenset[str]: ...

    async def hold_recipients(
        self,
        queue_id: str,
        until: dict[str, datetime],
        make_event: Callable[[RecipientView], Event],
    ) -> list[RecipientView]: ...

    async def hold_leased(
        self,
        owner: str,
        until: dict[int, datetime],
        make_event: Callable[[RecipientView], Event],
    ) -> list[RecipientView]: ...

    async def held_until(self, recipient_ids: Sequence[int]) -> dict[int, datetime]: ...

    async def release_held(
        self,
        now: datetime,
        limit: int,
        make_event: Callable[[RecipientView], Event],
        *,
        tenant: str | None = None,
        address: str | None = None,
    ) -> list[RecipientView]: ...

    async def expire_held(
        self, now: datetime, limit: int, make_event: Callable[[RecipientView], Event]
    ) -> list[RecipientView]: ...


class SupportViews(Protocol):
    """What the support answers and the overview read (issue 16 items 1, 3 and 4); every
    method takes an explicit ``tenant`` (``None``: every tenant) so a caller restricted to
    one tenant asks only for its rows."""

    async def tenant_activity(
        self, tenant: str | None, starts: Sequence[datetime]
    ) -> TenantActivity: ...

    async def overview(self, tenant: str | None, starts: Sequence[datetime]) -> OverviewCounts: ...

    async def tenant_texts(self, tenant: str) -> dict[str, dict[str, str]]: ...

    async def set_tenant_texts(
        self,
        tenant: str,
        lang: str,
        values: Mapping[str, str],
        at: datetime,
        *,
        audit: AuditOf | None = None,
    ) -> int: ...


class StreamStore(Protocol):
    """Streams and probation (issue 15 items 1 and 3)."""

    async def probations(self, address: str, tenant: str | None, now: datetime) -> list[Probation]:
        """The probations of ``address`` running at ``now``, in one or every tenant."""
        ...

    async def set_login_stream(
        self, tenant: str, username: str, stream: Stream | None, *, audit: AuditOf | None = None
    ) -> bool: ...

    async def message_stream(self, queue_id: str) -> Stream | None: ...
