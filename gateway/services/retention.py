"""Retention: delete message content, old events and spent quota rows on a schedule.

Owns: the retention task. Message content is deleted ``store.retain_content`` after the
message's final status (the last recipient's final update); events are deleted
``store.retain_events`` after they happened; quota holds whose session died with its
process are given back and deleted once they lapse, and per-minute quota usage older than
the longest quota window is deleted, for every tenant (``purge_quota``: the intake's hold
cleans up only its own tenant's, so a tenant that stopped sending kept its rows). Work is
done in bounded batches with a pause
between them, so a large backlog never holds the store's single writer for long. Does not
own: the queries (the store's ``Retention`` port) or erasure on request (``admin``).

What stays: message envelopes and recipient rows (status, category, last reply) keep
answering "what happened to this message"; suppressions are never aged out here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from gateway.core.errors import StoreError
from gateway.core.feedback import KEEP as FEEDBACK_KEEP
from gateway.observe.logging import log_event

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.core.ports import Clock, Retention

log = logging.getLogger("gateway.services.retention")


@dataclass(frozen=True, slots=True)
class JanitorSettings:
    """How the janitor paces itself.

    Args:
        batch: rows per transaction.
        pause: the pause between two batches of one pass, in seconds.
        interval: the pause between two passes.
        max_batches: batches per kind in one pass (the rest waits for the next pass).
    """

    batch: int = 500
    pause: float = 0.2
    interval: timedelta = timedelta(minutes=15)
    max_batches: int = 200


@dataclass(frozen=True, slots=True)
class PassResult:
    contents: int
    events: int
    quota: int = 0
    feedback: int = 0


async def _wait(stopping: asyncio.Event, seconds: float) -> bool:
    """Sleep up to ``seconds``; ``True`` when the gateway is stopping."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stopping.wait()
    return stopping.is_set()


async def run_pass(
    store: Retention,
    config: Config,
    clock: Clock,
    stopping: asyncio.Event,
    settings: JanitorSettings = JanitorSettings(),
) -> PassResult:
    """One retention pass: contents first, then events, each in bounded batches, then the
    spent quota rows (few: one write).

    Args:
        store: the store.
        config: the config (``store.retain_content``, ``store.retain_events``).
        clock: the time source.
        stopping: checked between batches.
        settings: batch size and pacing.
    """
    totals = {"contents": 0, "events": 0}
    for kind, keep, purge in (
        ("contents", config.store.retain_content, store.purge_content),
        ("events", config.store.retain_events, store.purge_events),
    ):
        for _ in range(settings.max_batches):
            done = await purge(clock.now() - keep, settings.batch)
            totals[kind] += done
            if done < settings.batch or await _wait(stopping, settings.pause):
                break
    quota = 0 if stopping.is_set() else await store.purge_quota(clock.now())
    # Unattributed feedback-loop reports: 30 days, the newest 10,000 (``core.feedback``).
    before = clock.now() - FEEDBACK_KEEP
    feedback = 0 if stopping.is_set() else await store.purge_feedback_reports(before)
    return PassResult(totals["contents"], totals["events"], quota, feedback)


async def run_janitor(
    store: Retention,
    config: Config,
    clock: Clock,
    stopping: asyncio.Event,
    settings: JanitorSettings = JanitorSettings(),
) -> None:
    """Run retention passes until ``stopping`` is set (a task in the gateway's TaskGroup).

    A store error is logged and retried at the next pass: retention is never urgent.

    Args:
        store: the store.
        config: the config (``store.retain_content``, ``store.retain_events``).
        clock: the time source.
        stopping: set by the gateway to stop.
        settings: batch size and pacing.
    """
    while not stopping.is_set():
        try:
            result = await run_pass(store, config, clock, stopping, settings)
        except StoreError as exc:
            log_event(log, "janitor.failed", logging.WARNING, error=str(exc))
        else:
            if result.contents or result.events or result.quota or result.feedback:
                log_event(
                    log,
                    "janitor.purged",
                    contents=result.contents,
                    events=result.events,
                    quota=result.quota,
                    feedback_reports=result.feedback,
                )
        if await _wait(stopping, settings.interval.total_seconds()):
            return
