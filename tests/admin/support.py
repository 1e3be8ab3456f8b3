"""Helpers for the admin tests: tokens, config, a fake clock, and seeding the store."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from gateway import config as config_module
from gateway.admin.app import AdminDeps
from gateway.core import replies
from gateway.core.model import Category, Event, EventType, NewMessage, Reason, Status
from gateway.core.ports import Outcome
from gateway.store.sqlite import SqliteStore
from tests.fakes.dns_server import FakeDns

TOKEN = "full-token-0123456789"
RO_TOKEN = "read-only-token-0123456789"
HASHED_TOKEN = "hashed-token-abcdef"
SECRET = "test-bounce-secret-0123456789"
START = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


@dataclass
class FakeClock:
    at: datetime = START

    def now(self) -> datetime:
        return self.at

    def advance(self, delta: timedelta) -> None:
        self.at += delta


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_config(tmp: Path, dns: FakeDns, **admin: Any) -> config_module.Config:
    raw = {
        "smtp": {"hostname": "gateway.test", "typo_check": "reject"},
        "store": {"path": str(tmp / "gateway.db")},
        "dns": {"nameservers": [dns.address], "timeout": "2s"},
        "bounce": {"domain": "bounces.gateway.test", "secret": SECRET},
        "admin": {
            "tokens": [TOKEN, "sha256:" + hashlib.sha256(HASHED_TOKEN.encode()).hexdigest()],
            "read_only_tokens": [RO_TOKEN],
            "max_body_size": "4KiB",
        }
        | admin,
        "log": {"level": "warning"},
    }
    return config_module.from_dict(raw)


@dataclass
class Env:
    store: SqliteStore
    clock: FakeClock
    deps: AdminDeps
    dns: FakeDns
    client: httpx.AsyncClient
    public: httpx.AsyncClient
    ready: dict[str, bool] = field(default_factory=lambda: {"intake": True, "relay": True})
    woken: list[int] = field(default_factory=list)

    async def record_refusal(
        self,
        address: str,
        reason: Reason,
        reply: replies.Reply,
        details: dict[str, str] | None = None,
    ) -> int:
        """A ``rejected`` event as the intake records a refusal at RCPT: its reply and typed
        reason (``details`` as the intake stores them); the event's id."""
        return await self.store.record_event(
            Event(
                None,
                "default",
                address,
                EventType.REJECTED,
                self.clock.now(),
                reply_code=reply.code,
                enhanced=reply.enhanced,
                text=reply.text,
                reason=reason,
                details=dict(details or {}),
            )
        )

    async def record_typo_refusal(self, details: dict[str, str] | None = None) -> None:
        """The refused typo ``maria@gmial.com``, replying with the catalogue's 553 naming
        ``maria@gmail.com``; ``details`` as the intake stores them (``None``: a refusal
        recorded before the suggestion was kept)."""
        reply = replies.RECIPIENT_TYPO.with_text(
            "The recipient domain looks misspelt: did you mean maria@gmail.com?"
        )
        await self.record_refusal("maria@gmial.com", Reason.TYPO, reply, details)

    async def seed(
        self,
        address: str,
        *,
        tenant: str = "default",
        status: Status = Status.BOUNCED,
        category: Category | None = Category.NONEXISTENT_ADDRESS,
        host: str = "mx.example.com",
        code: int = 550,
        enhanced: str = "5.1.1",
        text: str = "User unknown",
        queue_id: str | None = None,
    ) -> str:
        """Enqueue a message to ``address`` and record one attempt's outcome."""
        local = "".join(ch for ch in address.split("@", maxsplit=1)[0] if ch.isalnum())[:8]
        queue_id = queue_id or f"Q{len(self.seeded):05d}{local}"
        self.seeded.append(queue_id)
        await self.store.enqueue(
            NewMessage(
                queue_id=queue_id,
                tenant=tenant,
                mail_from="billing@app.test",
                recipients=(address,),
                content=b"Subject: Invoice\r\n\r\nbody\r\n",
                message_id=f"<{queue_id}@app.test>",
                subject="Invoice",
                received_at=self.clock.now(),
            ),
            timedelta(hours=1),
        )
        if status is Status.QUEUED:
            return queue_id
        claimed = [
            d
            for d in await self.store.claim_due(
                self.clock.now() + timedelta(seconds=1), 100, "node", timedelta(minutes=5)
            )
            if d.queue_id == queue_id
        ]
        kind = {
            Status.SENT: EventType.SENT,
            Status.DEFERRED: EventType.DEFERRED,
            Status.BOUNCED: EventType.BOUNCED,
        }[status]
        outcomes = [
            Outcome(
                d.recipient_id,
                status,
                Event(
                    d.recipient_id,
                    tenant,
                    address,
                    kind,
                    self.clock.now(),
                    queue_id=queue_id,
                    category=category,
                    reply_code=code,
                    enhanced=enhanced,
                    text=text,
                    remote_host=host,
                ),
                due_at=self.clock.now() + timedelta(hours=1) if status is Status.DEFERRED else None,
                category=category,
            )
            for d in claimed
        ]
        await self.store.record_outcomes(outcomes, "node")
        return queue_id

    seeded: list[str] = field(default_factory=list)
