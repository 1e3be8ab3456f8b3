"""The store's everyday queries, written once for both stores: tenants and their settings,
logins, DKIM keys, events, suppressions, history, a recipient's status outside an attempt,
the queue summary.

Owns: each of those queries as a ``store.sql`` script, run by the store as a read
(``_query``), a one-statement write (``_autocommit``) or a transaction (``_transact``).
Does not own: what differs by database (the enqueue, the relay's claims and outcomes,
quota holds, notifications: ``store.sqlite*``, ``store.postgres*``), connections or errors
(the stores), nor what the rows mean (``core``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from gateway.core.model import Event, Status, Suppression, SuppressionReason, Tenant
from gateway.core.records import (
    AuditOf,
    QueueSummary,
    RecipientView,
    TenantSettings,
    hashed_address,
)
from gateway.core.streams import Stream
from gateway.store import rows
from gateway.store.admin_queries import AdminQueries
from gateway.store.feedback_queries import FeedbackQueries
from gateway.store.mixins import Queries
from gateway.store.outbox_queries import OutboxQueries
from gateway.store.policy_queries import (
    DELIVERING,
    PolicyQueries,
    policies,
    policies_of,
    with_policy,
)
from gateway.store.quota_queries import QuotaQueries
from gateway.store.sql import Script, changed, count, every, one, row, single, value
from gateway.store.sql import rows as fetch
from gateway.store.stream_queries import StreamQueries, with_streams
from gateway.store.support_queries import SupportQueries
from gateway.store.suppression_transfer import SuppressionTransfer
from gateway.store.token_queries import TokenQueries
from gateway.store.writes import audited, insert_event, upsert_credentials, upsert_suppression

_TENANT = "SELECT name, allowed_sender_domains, hourly_quota, daily_quota FROM tenants"
_ACTIVE = "(expires_at IS NULL OR expires_at > ?)"


class TenantQueries(Queries):
    """Tenants, their settings (the admin API's too), SMTP logins and DKIM keys."""

    async def ensure_tenant(self, tenant: Tenant) -> None:
        await self._autocommit(
            changed(
                "INSERT INTO tenants (name, allowed_sender_domains, hourly_quota, daily_quota,"
                " created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
                tenant.name,
                ",".join(tenant.allowed_sender_domains),
                tenant.hourly_quota,
                tenant.daily_quota,
                datetime.now(UTC).timestamp(),
            )
        )

    async def update_tenant(self, tenant: Tenant) -> None:
        await self._autocommit(
            changed(
                "UPDATE tenants SET allowed_sender_domains = ?, hourly_quota = ?,"
                " daily_quota = ? WHERE name = ?",
                ",".join(tenant.allowed_sender_domains),
                tenant.hourly_quota,
                tenant.daily_quota,
                tenant.name,
            )
        )

    async def get_tenant(self, name: str) -> Tenant | None:
        found = await self._query(one(_TENANT + " WHERE name = ?", name))
        return None if found is None else rows.tenant_from(found)

    async def list_tenants(self) -> list[Tenant]:
        return [rows.tenant_from(r) for r in await self._query(every(_TENANT + " ORDER BY name@C"))]

    async def tenant_generation(self) -> int:
        """The counter every change to tenants, credentials and DKIM keys moves (triggers
        of migration 006, in the change's own transaction): the tenant directory's cue."""
        return int(await self._query(single("SELECT generation FROM tenant_generation")))

    async def set_credentials(
        self, tenant: str, username: str, secret_hash: str, *, audit: AuditOf | None = None
    ) -> None:
        """Set (or replace) a login's secret; ``audit`` builds the admin audit entry, written
        in the same transaction (issue 13)."""

        def script() -> Script[None]:
            yield from upsert_credentials(tenant, username, secret_hash, datetime.now(UTC))
            yield from audited(audit, None)

        await self._transact(script())

    async def get_credentials(self, username: str) -> tuple[str, str] | None:
        found = await self._query(
            one("SELECT tenant, secret_hash FROM credentials WHERE username = ?", username)
        )
        return None if found is None else (found[0], found[1])

    async def set_dkim_key(
        self, tenant: str, domain: str, selector: str, algorithm: str, private_key_pem: bytes
    ) -> None:
        await self._autocommit(
            changed(
                "INSERT INTO dkim_keys (tenant, domain, selector, algorithm, private_key_pem,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, domain) DO UPDATE"
                " SET selector = excluded.selector, algorithm = excluded.algorithm,"
                " private_key_pem = excluded.private_key_pem, created_at = excluded.created_at",
                tenant,
                domain,
                selector,
                algorithm,
                private_key_pem,
                datetime.now(UTC).timestamp(),
            )
        )

    async def dkim_keys(self) -> list[tuple[str, str, str, str, bytes]]:
        """Every DKIM key: (tenant, domain, selector, algorithm, private key PEM)."""
        found = await self._query(
            every("SELECT tenant, domain, selector, algorithm, private_key_pem FROM dkim_keys")
        )
        return [(r[0], r[1], r[2], r[3], bytes(r[4])) for r in found]

    async def create_tenant(
        self,
        settings: TenantSettings,
        now: datetime,
        *,
        credentials: tuple[str, str] | None = None,
        audit: AuditOf | None = None,
    ) -> bool:
        """Insert a tenant with its settings; ``False`` if the name is taken.

        Args:
            settings: the tenant and its settings.
            now: its creation time.
            credentials: (username, secret hash) of its SMTP login, written with it.
            audit: builds the admin audit entry from the result; the tenant, its credentials
                and the entry commit in one transaction (issue 13).
        """
        t = settings.tenant
        window = settings.failure_window

        def script() -> Script[bool]:
            created: bool = (
                yield count(
                    "INSERT INTO tenants (name, allowed_sender_domains, hourly_quota,"
                    " daily_quota, created_at, list_unsubscribe, bounce_notice, webhook_url,"
                    " webhook_secret, failure_threshold, failure_window_seconds)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
                    t.name,
                    ",".join(t.allowed_sender_domains),
                    t.hourly_quota,
                    t.daily_quota,
                    now.timestamp(),
                    int(settings.list_unsubscribe),
                    int(settings.bounce_notice),
                    settings.webhook_url,
                    settings.webhook_secret,
                    settings.failure_threshold,
                    None if window is None else window.total_seconds(),
                )
            ) == 1
            if created and credentials is not None:
                yield from upsert_credentials(t.name, *credentials, now)
            yield from audited(audit, created)
            return created

        return await self._transact(script())

    async def tenant_settings(self, name: str) -> TenantSettings | None:
        def script() -> Script[TenantSettings | None]:
            found = yield row(f"SELECT {rows.TENANT_COLUMNS} FROM tenants WHERE name = ?", name)
            if found is None:
                return None
            users = yield fetch(
                "SELECT username FROM credentials WHERE tenant = ? ORDER BY username@C", name
            )
            own = yield from policies_of(name)
            settings = with_policy(rows.settings_from(found, tuple(u[0] for u in users)), own)
            return (yield from with_streams([settings]))[0]

        return await self._query(script())

    async def list_tenant_settings(self) -> list[TenantSettings]:
        def script() -> Script[list[TenantSettings]]:
            users: dict[str, list[str]] = {}
            for tenant, username in (
                yield fetch("SELECT tenant, username FROM credentials ORDER BY username@C")
            ):
                users.setdefault(tenant, []).append(username)
            found = yield fetch(f"SELECT {rows.TENANT_COLUMNS} FROM tenants ORDER BY name@C")
            own = yield from policies()
            settings = [
                with_policy(rows.settings_from(r, tuple(users.get(r[0], ()))), own) for r in found
            ]
            return (yield from with_streams(settings))

        return await self._query(script())

    async def update_tenant_settings(
        self, name: str, changes: dict[str, Any], *, audit: AuditOf | None = None
    ) -> bool:
        """Apply ``changes`` (keys of ``rows.SETTINGS_COLUMNS``); ``False`` if no tenant.
        ``audit`` builds the admin audit entry from the result, in the same transaction."""
        # A KeyError here is a programming error: the keys are the API's settings.
        assignments = [f"{rows.SETTINGS_COLUMNS[key]} = ?" for key in changes]
        args = [rows.column_value(v) for v in changes.values()]

        def script() -> Script[bool]:
            if assignments:
                sql = f"UPDATE tenants SET {', '.join(assignments)} WHERE name = ?"
                found: bool = (yield count(sql, *args, name)) == 1
            else:
                found = (yield row("SELECT 1 FROM tenants WHERE name = ?", name)) is not None
            yield from audited(audit, found)
            return found

        return await self._transact(script())


class SuppressionQueries(Queries):
    """The suppression list's look-ups and plain writes (the admin ones with their events
    are ``store.admin_queries``')."""

    async def find_suppression(
        self, tenant: str, address: str, now: datetime
    ) -> Suppression | None:
        found = await self._query(
            one(
                f"SELECT {rows.SUPPRESSION_COLUMNS} FROM suppressions WHERE tenant = ?"
                f" AND address = ? AND {_ACTIVE} ORDER BY scope = 'all' DESC, scope@C LIMIT 1",
                tenant,
                address,
                now.timestamp(),
            )
        )
        return None if found is None else rows.suppression_from(found)

    async def suppression_for(
        self, tenant: str, address: str, stream: Stream, now: datetime
    ) -> Suppression | None:
        """``find_suppression``, else ``find_hashed_suppression``, in one look-up (the intake
        asks at every RCPT), of the scopes that stop ``stream`` (``all`` first): primary-key
        probes, the plain address first. On SQLite, on the reader's thread like every read:
        a page not in the cache is a disk read, and on the event loop it would stall every
        SMTP session (issue 13)."""
        found = await self._query(
            one(
                f"SELECT {rows.SUPPRESSION_COLUMNS} FROM suppressions WHERE tenant = ?"
                f" AND address IN (?, ?) AND scope IN ('all', ?) AND {_ACTIVE}"
                " ORDER BY address = ? DESC, scope = 'all' DESC LIMIT 1",
                tenant,
                address,
                hashed_address(address),
                stream.value,
                now.timestamp(),
                address,
            )
        )
        return None if found is None else rows.suppression_from(found)

    async def add_suppression(self, suppression: Suppression) -> None:
        await self._autocommit(upsert_suppression(suppression))

    async def remove_suppression(self, tenant: str | None, address: str) -> int:
        if tenant is None:
            return await self._autocommit(
                changed("DELETE FROM suppressions WHERE address = ?", address)
            )
        return await self._autocommit(
            changed("DELETE FROM suppressions WHERE tenant = ? AND address = ?", tenant, address)
        )

    async def list_suppressions(
        self, tenant: str | None, reason: SuppressionReason | None, limit: int, after: str = ""
    ) -> list[Suppression]:
        # @C: byte order, as SQLite compares, whatever PostgreSQL's locale.
        key = "(tenant || ' ' || address || ' ' || scope)@C"
        if after and after.count(" ") == 1:
            # A cursor "tenant address" (before scopes, issue 15): after every scope of it.
            after += " \x7f"
        sql = f"SELECT {rows.SUPPRESSION_COLUMNS} FROM suppressions WHERE {key} > ?"
        args: list[Any] = [after]
        if tenant is not None:
            sql += " AND tenant = ?"
            args.append(tenant)
        if reason is not None:
            sql += " AND reason = ?"
            args.append(reason.value)
        found = await self._query(every(sql + f" ORDER BY {key} LIMIT ?", *args, limit))
        return [rows.suppression_from(r) for r in found]


class HistoryQueries(Queries):
    """Events and recipients as they were recorded; a recipient's status outside an
    attempt; the queue's summary."""

    async def record_event(self, event: Event) -> int:
        return await self._autocommit(insert_event(event))

    async def count_accepted(self, tenant: str, since: datetime) -> int:
        found = await self._query(
            single(
                "SELECT count(*) FROM events WHERE tenant = ? AND type = 'queued' AND at >= ?",
                tenant,
                since.timestamp(),
            )
        )
        return int(found)

    async def events_for(self, address: str, tenant: str | None, limit: int) -> list[Event]:
        sql = f"SELECT {rows.EVENT_COLUMNS} FROM events WHERE address = ?"
        args: list[Any] = [address]
        if tenant is not None:
            sql += " AND tenant = ?"
            args.append(tenant)
        found = await self._query(every(sql + " ORDER BY at DESC, id DESC LIMIT ?", *args, limit))
        return [rows.event_from(r) for r in found]

    async def events_of_message(self, queue_id: str) -> list[Event]:
        found = await self._query(
            every(
                f"SELECT {rows.EVENT_COLUMNS} FROM events WHERE queue_id = ? ORDER BY at, id",
                queue_id,
            )
        )
        return [rows.event_from(r) for r in found]

    async def recipients_of(self, queue_id: str) -> list[RecipientView]:
        found = await self._query(
            every(f"SELECT {rows.RECIPIENT_VIEW} WHERE r.queue_id = ? ORDER BY r.id", queue_id)
        )
        return [rows.recipient_view_from(r) for r in found]

    async def recipient(self, recipient_id: int) -> RecipientView | None:
        found = await self._query(one(f"SELECT {rows.RECIPIENT_VIEW} WHERE r.id = ?", recipient_id))
        return None if found is None else rows.recipient_view_from(found)

    async def failure_streak(self, tenant: str, address: str, since: datetime) -> list[Event]:
        """Final outcomes (bounced, expired, sent, reports) for the address, newest first."""
        found = await self._query(
            every(
                f"SELECT {rows.EVENT_COLUMNS} FROM events WHERE tenant = ? AND address = ?"
                " AND at >= ?"
                " AND type IN ('bounced', 'expired', 'sent', 'report', 'unsuppressed')"
                " ORDER BY at DESC, id DESC LIMIT 100",
                tenant,
                address,
                since.timestamp(),
            )
        )
        return [rows.event_from(r) for r in found]

    async def update_recipient(self, recipient_id: int, status: Status | None, event: Event) -> int:
        """Set a recipient's status outside an attempt (async report, hold); returns the
        event's id. ``None`` keeps the row's status (whatever it is when the write runs). A
        final status clears ``due_at`` so the relay leaves the row alone."""
        final = status is not None and status.is_final

        def script() -> Script[int]:
            yield count(
                "UPDATE recipients SET status = coalesce(?, status), updated_at = ?,"
                " category = coalesce(?, category), last_reply = ?,"
                " due_at = CASE WHEN ? THEN NULL ELSE due_at END,"
                " lease_owner = CASE WHEN ? THEN NULL ELSE lease_owner END WHERE id = ?",
                status.value if status is not None else None,
                rows.ts(event.at),
                event.category.value if event.category else None,
                rows.reply_text(event),
                final,
                final,
                recipient_id,
            )
            event_id: int = yield from insert_event(event)
            return event_id

        return await self._transact(script())

    async def release_claims(
        self,
        owner: str,
        recipient_ids: Sequence[int] | None = None,
        due: datetime | None = None,
    ) -> int:
        """Make rows leased to ``owner`` due at ``due`` (now when ``None``): every such row
        (a restarted node's old leases), or only ``recipient_ids`` (jobs the relay gives
        back unsent). Nothing else changes: no attempt is counted, no event written. Every
        node's relay is woken (``Dialect.notify``)."""
        at, d = (due or datetime.now(UTC)).timestamp(), self.dialect
        sql = "UPDATE recipients SET due_at = @LEAST(due_at, ?), lease_owner = NULL"

        def script() -> Script[int]:
            released: int = 0
            if recipient_ids is None:
                released = yield count(sql + " WHERE lease_owner = ?", at, owner)
            else:
                for chunk in d.chunks(list(recipient_ids)):
                    among, args = d.among("id", chunk, "bigint")
                    released += yield count(
                        sql + f" WHERE lease_owner = ? AND {among}", at, owner, *args
                    )
            if released and d.notify:
                yield value(d.notify)
            return released

        return await self._transact(script())

    async def next_due(self) -> datetime | None:
        return rows.dt(
            await self._query(
                single(
                    "SELECT min(r.due_at) FROM recipients r JOIN messages m"
                    " ON m.queue_id = r.queue_id WHERE r.due_at IS NOT NULL AND m.held = 0"
                    f" AND {DELIVERING}"
                )
            )
        )

    async def load_content(self, queue_id: str) -> bytes | None:
        found = await self._query(one("SELECT content FROM messages WHERE queue_id = ?", queue_id))
        return None if found is None or found[0] is None else bytes(found[0])

    async def queue_summary(self) -> QueueSummary:
        def script() -> Script[QueueSummary]:
            counts = yield fetch("SELECT status, count(*) FROM recipients GROUP BY status")
            oldest = yield value(rows.OLDEST_DEFERRED)
            return QueueSummary({r[0]: int(r[1]) for r in counts}, rows.dt(oldest))

        return await self._query(script())


class CommonQueries(
    TenantQueries,
    SuppressionQueries,
    HistoryQueries,
    AdminQueries,
    OutboxQueries,
    QuotaQueries,
    FeedbackQueries,
    SupportQueries,
    TokenQueries,
    SuppressionTransfer,
    PolicyQueries,
    StreamQueries,
):
    """Every query written once: what both stores mix in, beside their dialect's own."""
