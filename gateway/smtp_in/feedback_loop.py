"""The feedback-loop address: complaints from providers' loops, attributed or kept.

Owns: ``bounce.fbl_address`` at ``bounce.domain`` (the one address Yahoo's CFL, Microsoft's
JMRP and other ARF senders are told to report to), and attributing each report: first
through a signed return path of ours that the enclosed original carries (the same token the
per-message return path carries: ``core.verp``), else through the original's Message-ID and
the reported recipient (or the message's only recipient when the report names none). An
attributed report is recorded exactly as a report to the message's own return path is
(``BounceSink``'s recording: ``core.lifecycle.effect``, then the policy). A report that
names nobody is stored (``core.feedback.UnattributedReport``) and counted, and never
suppresses anybody. Does not own: reading the report (``bounce.feedback``, ``bounce.arf``),
what a complaint does (``core.lifecycle``, ``services.outcomes``) or the SMTP session.

Why a Message-ID is enough with the recipient: a forged report then needs both the
Message-ID, which only the recipient's mailbox shows, and that recipient; the one who can
forge it is the recipient, whose complaint it would be.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Protocol

from gateway.bounce import parse_bounce
from gateway.bounce.feedback import FeedbackLoopReport, read_feedback
from gateway.core.feedback import FeedbackReports, UnattributedReport, Why
from gateway.core.ports import History
from gateway.observe.logging import log_event

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from gateway.bounce import BounceReport, Rules
    from gateway.config import BounceConfig
    from gateway.core import verp
    from gateway.core.ports import Clock, RecipientView


class FeedbackStore(FeedbackReports, History, Protocol):
    """What attribution reads (messages by Message-ID, their recipients) and writes (the
    unattributed reports)."""


log = logging.getLogger("gateway.feedback_loop")


class FeedbackLoop:
    """Takes the reports sent to ``bounce.fbl_address``.

    Args:
        config: the ``[bounce]`` section.
        store: where messages are looked up and unattributed reports kept.
        clock: time source.
        rules: the classifier's rules (for the per-recipient complaint records).
        token: verifies a return path (``BounceSink``'s, with the current and previous
            secrets); ``None`` for anything not ours or not valid.
        by_token: records a report through a token, as mail to that return path is
            recorded; returns how many recipients it recorded.
        record: records one report on one recipient (``BounceSink``'s recording).
        observe: counts each report by result (``attributed``, ``unattributed``).
    """

    def __init__(
        self,
        config: BounceConfig,
        store: FeedbackStore,
        clock: Clock,
        rules: Rules,
        token: Callable[[str], verp.ReturnPathToken | None],
        by_token: Callable[[verp.ReturnPathToken, bytes], Awaitable[int]],
        record: Callable[[RecipientView, BounceReport], Awaitable[None]],
        observe: Callable[[str], None] | None = None,
    ) -> None:
        self.address = f"{config.fbl_address}@{config.domain}".lower()
        self.domain = config.domain
        self.store = store
        self.clock = clock
        self.rules = rules
        self.token = token
        self.by_token = by_token
        self.record = record
        self.observe = observe

    def is_address(self, address: str) -> bool:
        """True for ``bounce.fbl_address`` at ``bounce.domain`` (any case)."""
        return address.strip().strip("<>").lower() == self.address

    async def receive(self, content: bytes) -> int:
        """Attribute one report; returns how many recipients it was recorded on (0: kept
        as unattributed)."""
        # In a worker thread: a report may be as large as smtp.max_message_size.
        read = await asyncio.to_thread(read_feedback, content, self.domain)
        if read is None:
            await self._keep(None, content, Why.NOT_A_REPORT)
            return 0
        why = Why.NO_MATCH
        for address in read.return_paths:
            token = self.token(address)
            if token is None:
                why = Why.BAD_TOKEN
                continue
            recorded = await self.by_token(token, content)
            if recorded:
                return self._attributed(read, recorded, "token", token.queue_id)
        if read.message_id:
            queue_ids = await self.store.queue_ids_by_message_id(read.message_id)
            recorded = await self._by_message_id(read, queue_ids, content) if queue_ids else 0
            if recorded:
                return self._attributed(read, recorded, "message_id", read.message_id)
            if queue_ids and why is Why.NO_MATCH:
                why = Why.UNKNOWN_RECIPIENT
        await self._keep(read, content, why)
        return 0

    async def _by_message_id(
        self, read: FeedbackLoopReport, queue_ids: list[str], content: bytes
    ) -> int:
        """Record the report on the reported recipients of the newest of ``queue_ids`` (the
        messages with the original's Message-ID) that names them; how many."""
        reports = await asyncio.to_thread(parse_bounce, content, self.rules)
        complaints = [r for r in reports if r.kind == "arf"] or reports
        recorded = 0
        for queue_id in queue_ids:
            rows = await self.store.recipients_of(queue_id)
            if read.recipients:
                targets = [r for r in rows if r.address.lower() in read.recipients]
            else:
                # No recipient reported (redacted): only a message with one recipient says
                # whom it was about.
                targets = rows if len(rows) == 1 else []
            for target in targets:
                report = next(
                    (c for c in complaints if (c.recipient or "") == target.address.lower()),
                    complaints[0] if complaints else None,
                )
                if report is None:
                    continue
                await self.record(target, report)
                recorded += 1
            if recorded:
                break  # the newest message with that Message-ID that names them
        return recorded

    def _attributed(self, read: FeedbackLoopReport, recorded: int, how: str, key: str) -> int:
        log_event(
            log,
            "fbl.attributed",
            how=how,
            key=key[:200],
            recipients=recorded,
            feedback_type=read.feedback_type,
            reporter=read.reporter,
        )
        if self.observe is not None:
            self.observe("attributed")
        return recorded

    async def _keep(self, read: FeedbackLoopReport | None, content: bytes, why: Why) -> None:
        report = UnattributedReport(
            id=None,
            received_at=self.clock.now(),
            feedback_type=read.feedback_type if read else "",
            reporter=read.reporter if read else "",
            source_ip=read.source_ip if read else "",
            original_mail_from=read.original_mail_from if read else "",
            original_rcpt_to=", ".join(read.recipients) if read else "",
            original_message_id=read.message_id if read else "",
            arrival_date=read.arrival_date if read else "",
            why=why,
            size=len(content),
        )
        report_id = await self.store.add_feedback_report(report)
        log_event(
            log,
            "fbl.unattributed",
            logging.WARNING,
            id=report_id,
            why=why.value,
            reporter=report.reporter,
            feedback_type=report.feedback_type,
        )
        if self.observe is not None:
            self.observe("unattributed")
