"""Bounce ingress: mail to ``bounce.domain`` becomes events on the right recipients.

Owns: which addresses at ``bounce.domain`` exist (``b+<token>`` return paths and
``u+<token>`` unsubscribe addresses, both HMAC-signed), attributing parsed reports to the
recipients the token names — never to other addresses a report's body mentions — and the
opt-out on any mail to an unsubscribe address. Does not own: parsing (``bounce``), what a
report does to the recipient (``core.lifecycle.effect``), the policy (``outcomes``) or the
SMTP session (``smtp_in.handler``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from gateway.bounce import parse_bounce
from gateway.core import replies, verp
from gateway.core.errors import StoreError
from gateway.core.lifecycle import Report, effect
from gateway.core.model import Event, EventType, Reason, Suppression, SuppressionReason
from gateway.core.streams import Scope
from gateway.observe.logging import log_event
from gateway.smtp_in.feedback_loop import FeedbackLoop

if TYPE_CHECKING:
    from collections.abc import Callable

    from gateway.bounce import BounceReport, Rules
    from gateway.config import BounceConfig
    from gateway.core.ports import Clock, RecipientView, Store
    from gateway.core.replies import Reply
    from gateway.services.outcomes import PolicyApplier

log = logging.getLogger("gateway.bounce_sink")


class BounceSink:
    """Validates bounce addresses and records what arrives at them.

    Args:
        config: the ``[bounce]`` section (domain, current and previous secret, lifetime).
        store: where events and suppressions go.
        policy: the auto-block policy, applied after each failure report.
        clock: time source.
        rules: the classifier's rules.
        on_feedback: counts each report to ``bounce.fbl_address`` by result (metrics).
    """

    def __init__(
        self,
        config: BounceConfig,
        store: Store,
        policy: PolicyApplier,
        clock: Clock,
        rules: Rules,
        on_feedback: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.policy = policy
        self.clock = clock
        self.rules = rules
        self.secrets = [s.encode() for s in (config.secret, config.previous_secret) if s]
        # bounce.fbl_address: reports attributed through the same recording as a report to
        # a message's own return path (issue 16 item 6).
        self.feedback = FeedbackLoop(
            config,
            store,
            clock,
            rules,
            token=self._return_path,
            by_token=self._report,
            record=self._record,
            observe=on_feedback,
        )

    def _return_path(self, address: str) -> verp.ReturnPathToken | None:
        return verp.parse_return_path(
            address,
            self.secrets,
            self.config.domain,
            self.clock.now(),
            self.config.token_lifetime,
        )

    def _unsubscribe(self, address: str) -> tuple[str, str] | None:
        local, _, domain = address.rpartition("@")
        if domain.lower() != self.config.domain.lower() or not local.lower().startswith("u+"):
            return None
        return verp.parse_unsubscribe_token(local[2:], self.secrets)

    def valid_address(self, address: str) -> bool:
        """True for a return path or unsubscribe address with a valid, unexpired token, and
        for the feedback-loop address."""
        return (
            self._return_path(address) is not None
            or self._unsubscribe(address) is not None
            or self.feedback.is_address(address)
        )

    async def receive(self, mail_from: str, recipients: list[str], content: bytes) -> Reply:
        """Record a report or an opt-out; always ``250`` once accepted (errors are logged)."""
        try:
            for address in recipients:
                if self.feedback.is_address(address):
                    await self.feedback.receive(content)
                    continue
                opt_out = self._unsubscribe(address)
                if opt_out is not None:
                    await self._opt_out(*opt_out)
                    continue
                token = self._return_path(address)
                if token is not None:
                    await self._report(token, content)
        except StoreError as exc:
            log_event(log, "bounce.store_failed", logging.ERROR, error=str(exc))
            return replies.STORE_FAILED
        return replies.BOUNCE_RECORDED

    async def _opt_out(self, tenant: str, address: str) -> None:
        now = self.clock.now()
        # The suppression and its event in one transaction, so a crash cannot leave one
        # without the other (issue 13); the suppression links to the event.
        await self.store.suppress_with_event(
            Suppression(
                tenant,
                address,
                SuppressionReason.OPT_OUT,
                now,
                None,
                None,
                "unsubscribe by e-mail",
                # The mailto address is in List-Unsubscribe, which only marketing messages
                # carry (issue 15): consent is withdrawn for marketing only.
                Scope.MARKETING,
            ),
            Event(
                None,
                tenant,
                address,
                EventType.SUPPRESSED,
                now,
                reason=Reason.OPT_OUT,
                text="The recipient unsubscribed (mail to the unsubscribe address)",
                details={"source": "mailto", "scope": Scope.MARKETING.value},
            ),
        )
        log_event(log, "bounce.opt_out", tenant=tenant, rcpt=address)

    async def _report(self, token: verp.ReturnPathToken, content: bytes) -> int:
        """Record ``content``'s reports on the recipients ``token`` names; how many."""
        named = await self._named_recipients(token)
        if not named:
            log_event(log, "bounce.no_recipients", logging.WARNING, queue_id=token.queue_id)
            return 0
        # In a worker thread: a report may be as large as smtp.max_message_size, and reading
        # one of megabytes takes the CPU for tens of milliseconds (issue 13).
        reports = await asyncio.to_thread(parse_bounce, content, self.rules)
        by_address = {r.address: r for r in named}
        recorded = 0
        for report in reports:
            target = by_address.get(report.recipient or "")
            if target is None and len(named) == 1:
                # One recipient per token: the token alone names it, whatever address the
                # report shows (forwarding and aliases rewrite it).
                target = named[0]
            if target is None:
                log_event(
                    log, "bounce.unattributed", queue_id=token.queue_id, reported=report.recipient
                )
                continue
            await self._record(target, report)
            recorded += 1
        return recorded

    async def _named_recipients(self, token: verp.ReturnPathToken) -> list[RecipientView]:
        rows = await self.store.recipients_of(token.queue_id)
        if token.recipient_ids:
            wanted = set(token.recipient_ids)
            return [r for r in rows if r.recipient_id in wanted]
        ids = [r.recipient_id for r in rows]
        # Digest format: the token binds a subset we can no longer list; only accept it when
        # the digest matches a set we can reconstruct (the whole message's recipients).
        if verp.recipient_set_digest(ids) == token.recipient_digest:
            return rows
        return []

    async def _record(self, target: RecipientView, report: BounceReport) -> None:
        """Record ``report`` on ``target`` as ``core.lifecycle.effect`` decides: the event
        always; the row's status, category and reply only when the effect says so."""
        now = self.clock.now()
        change = effect(
            target.status,
            Report(
                report.kind,
                report.category,
                report.feedback_type,
                report.action,
                report.provider_hint,
            ),
        )
        event = Event(
            target.recipient_id,
            target.tenant,
            target.address,
            change.event,
            now,
            queue_id=target.queue_id,
            category=change.category,
            reply_code=report.reply_code,
            enhanced=report.status,
            text=report.diagnostic[:1000],
            remote_host=report.remote_mta or "",
            reason=change.reason,
            details={
                k: v
                for k, v in (
                    ("feedback_type", report.feedback_type),
                    ("provider_hint", report.provider_hint),
                    ("challenge_url", report.challenge_url),
                    ("action", report.action),
                )
                if v
            },
        )
        if change.updates_row:
            # ``status`` None keeps the row's own (read now, in the write, not ``target``'s).
            event_id = await self.store.update_recipient(target.recipient_id, change.status, event)
        else:
            event_id = await self.store.record_event(event)
        log_event(
            log,
            "bounce.report",
            queue_id=target.queue_id,
            rcpt=target.address,
            category=report.category,
            kind=report.kind,
            status=report.status,
            new_status=change.status,
        )
        await self.policy.after(event, change, report.feedback_type, event_id=event_id)
