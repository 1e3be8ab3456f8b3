"""Feedback-loop reports and the quota gauges, written once for both stores.

Owns: the ``core.feedback.FeedbackReports`` port (the unattributed reports of migration 013:
storing, listing, purging; finding a message by its Message-ID alone for attribution) and
``Gauges.quota_use`` (each tenant's share of its quotas, for
``gateway_tenant_quota_used_ratio``). Does not own: attributing a report
(``smtp_in.feedback_loop``), the quota holds (``store.quota_queries``) or the limits' meaning
(``services.checks``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from gateway.core.feedback import (
    MAX_FIELD,
    MAX_KEPT,
    MAX_SAME_MESSAGE_ID,
    UnattributedReport,
    Why,
)
from gateway.core.records import QuotaUse
from gateway.store import rows
from gateway.store.mixins import Queries
from gateway.store.sql import Script, count, every, new_id, value

_COLUMNS = (
    "id, received_at, feedback_type, reporter, source_ip, original_mail_from,"
    " original_rcpt_to, original_message_id, arrival_date, why, size"
)
# The tenants with a quota and what each used in the last hour and day (``quota_usage`` is
# counted per minute, the minute a recipient was held or queued: ``store.quota_queries``).
_QUOTA_USE = (
    "SELECT t.name, t.hourly_quota, t.daily_quota,"
    " coalesce(sum(CASE WHEN u.minute >= ? THEN u.used ELSE 0 END), 0),"
    " coalesce(sum(u.used), 0)"
    " FROM tenants t LEFT JOIN quota_usage u ON u.tenant = t.name AND u.minute >= ?"
    " WHERE t.hourly_quota IS NOT NULL OR t.daily_quota IS NOT NULL"
    " GROUP BY t.name, t.hourly_quota, t.daily_quota ORDER BY t.name"
)


# An erasure (LGPD art. 18, VI) deletes the unattributed reports that name the address:
# ``original_rcpt_to`` is a ", " separated list, so the address is matched as a whole item.
ERASE = (
    "DELETE FROM feedback_reports WHERE original_mail_from = ?"
    " OR (', ' || original_rcpt_to || ', ') LIKE ? ESCAPE '!'"
)


def erase_args(address: str) -> tuple[str, str]:
    """``ERASE``'s arguments for ``address`` (its ``%`` and ``_`` taken literally)."""
    literal = address.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return address, f"%, {literal}, %"


class FeedbackQueries(Queries):
    """Unattributed feedback reports and the quota gauges; relies on ``_query``,
    ``_transact``."""

    async def add_feedback_report(self, report: UnattributedReport) -> int:
        def script() -> Script[int]:
            report_id: int = yield new_id(
                f"INSERT INTO feedback_reports ({_COLUMNS.partition(', ')[2]})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                report.received_at.timestamp(),
                report.feedback_type[:MAX_FIELD],
                report.reporter[:MAX_FIELD],
                report.source_ip[:MAX_FIELD],
                report.original_mail_from[:MAX_FIELD],
                report.original_rcpt_to[:MAX_FIELD],
                report.original_message_id[:MAX_FIELD],
                report.arrival_date[:MAX_FIELD],
                report.why.value,
                report.size,
            )
            return report_id

        return await self._transact(script())

    async def feedback_reports(
        self, limit: int, before_id: int | None = None
    ) -> list[UnattributedReport]:
        bound = "" if before_id is None else " WHERE id < ?"
        args = () if before_id is None else (before_id,)
        found = await self._query(
            every(
                f"SELECT {_COLUMNS} FROM feedback_reports{bound} ORDER BY id DESC LIMIT ?",
                *args,
                max(1, limit),
            )
        )
        return [_report_from(r) for r in found]

    async def purge_feedback_reports(self, before: datetime) -> int:
        def script() -> Script[int]:
            old: int = yield count(
                "DELETE FROM feedback_reports WHERE received_at < ?", before.timestamp()
            )
            # Beyond the newest MAX_KEPT: the id of the oldest row to keep, then the rest.
            floor = yield value(
                "SELECT id FROM feedback_reports ORDER BY id DESC LIMIT 1 OFFSET ?",
                MAX_KEPT - 1,
            )
            extra: int = 0
            if floor is not None:
                extra = yield count("DELETE FROM feedback_reports WHERE id < ?", floor)
            return old + extra

        return await self._transact(script(), durable=False)

    async def queue_ids_by_message_id(self, message_id: str) -> list[str]:
        found = await self._query(
            every(
                "SELECT queue_id FROM messages WHERE message_id = ?"
                " ORDER BY received_at DESC LIMIT ?",
                message_id,
                MAX_SAME_MESSAGE_ID,
            )
        )
        return [str(r[0]) for r in found]

    async def quota_use(self, now: datetime) -> list[QuotaUse]:
        hour = rows.minute_of((now - timedelta(hours=1)).timestamp())
        day = rows.minute_of((now - timedelta(days=1)).timestamp())
        found = await self._query(every(_QUOTA_USE, hour, day))
        uses: list[QuotaUse] = []
        for name, hourly, daily, used_hour, used_day in found:
            if hourly:
                uses.append(QuotaUse(str(name), "hourly", int(used_hour), int(hourly)))
            if daily:
                uses.append(QuotaUse(str(name), "daily", int(used_day), int(daily)))
        return uses


def _report_from(v: Any) -> UnattributedReport:
    """A row of ``_COLUMNS`` (a sqlite3 row or an asyncpg record)."""
    return UnattributedReport(
        id=int(v[0]),
        received_at=rows.utc(float(v[1])),
        feedback_type=str(v[2]),
        reporter=str(v[3]),
        source_ip=str(v[4]),
        original_mail_from=str(v[5]),
        original_rcpt_to=str(v[6]),
        original_message_id=str(v[7]),
        arrival_date=str(v[8]),
        why=Why(str(v[9])),
        size=int(v[10]),
    )
