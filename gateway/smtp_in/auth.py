"""SMTP AUTH (RFC 4954): the PLAIN and LOGIN dialogue, and brute-force throttling (``535``,
then ``421 4.7.0`` and a closed connection).

Owns: reading the credentials off the wire, checking them against the store's logins, the
session's tenant once logged in, and the per-client failure counter. Does not own: the hash
format and verification (``gateway.services.credentials``), or when AUTH is allowed (TLS
first, not inside a transaction: ``smtp_in.server`` and ``smtp_in.guard``).
"""

from __future__ import annotations

import base64
import logging
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from aiosmtpd.smtp import MISSING, SMTP, Session

from gateway.core import replies
from gateway.observe.logging import log_event
from gateway.services.credentials import verify_async

if TYPE_CHECKING:
    from gateway.core.ports import Clock
    from gateway.core.replies import Reply

log = logging.getLogger("gateway.smtp_in")

_MAX_TRACKED_CLIENTS = 10_000


class AuthThrottle:
    """Counts AUTH failures per client address within a window (bounded memory)."""

    def __init__(self, max_failures: int, window: timedelta) -> None:
        self.max_failures = max_failures
        self.window = window
        self._failures: OrderedDict[str, list[datetime]] = OrderedDict()

    def _recent(self, client: str, now: datetime) -> list[datetime]:
        times = [t for t in self._failures.get(client, []) if now - t < self.window]
        if times:
            self._failures[client] = times
        else:
            self._failures.pop(client, None)
        return times

    def blocked(self, client: str, now: datetime) -> bool:
        return len(self._recent(client, now)) >= self.max_failures

    def fail(self, client: str, now: datetime) -> bool:
        """Record a failure; true when the client has now reached the limit."""
        times = self._recent(client, now)
        times.append(now)
        self._failures[client] = times
        self._failures.move_to_end(client)
        while len(self._failures) > _MAX_TRACKED_CLIENTS:
            self._failures.popitem(last=False)
        return len(times) >= self.max_failures

    def succeed(self, client: str) -> None:
        self._failures.pop(client, None)


class Logins(Protocol):
    """The store's SMTP logins (``core.ports.TenantStore``)."""

    async def get_credentials(self, username: str) -> tuple[str, str] | None: ...


def client_ip(session: Session) -> str:
    """The client's IP address (aiosmtpd types ``peer`` loosely; it is a socket address)."""
    peer: Any = session.peer
    return str(peer[0]) if peer else ""


class AuthDialogue:
    """``AUTH PLAIN`` and ``AUTH LOGIN`` against the store's logins, throttled per client.

    Args:
        store: the logins.
        clock: time source for the throttle's window.
        throttle: the per-client failure counter.
    """

    def __init__(self, store: Logins, clock: Clock, throttle: AuthThrottle) -> None:
        self.store = store
        self.clock = clock
        self.throttle = throttle

    async def __call__(self, server: SMTP, session: Session, args: list[str]) -> str | None:
        """Answer ``AUTH <mechanism> [initial response]``: the reply, or ``None`` when one
        was pushed already (a ``501``/``504``, or the ``421`` of a client that failed too
        often, after which the connection is closed)."""
        client = client_ip(session)
        now = self.clock.now()
        if self.throttle.blocked(client, now):
            await _hang_up(server, replies.TOO_MANY_AUTH_FAILURES)
            return None
        mechanism = args[0].upper()
        credentials = await _read_credentials(server, mechanism, args)
        if credentials is None:
            return None  # a 501 was already sent
        username, password = credentials
        found = await self.store.get_credentials(username)
        if await verify_async(password, found[1] if found else None) and found:
            self.throttle.succeed(client)
            session.authenticated = True
            session.auth_data = found[0]  # type: ignore[assignment]  # the tenant name only
            session.gateway_login = username  # type: ignore[attr-defined]  # its default stream
            log_event(log, "smtp.auth_ok", client=client, tenant=found[0])
            return str(replies.AUTH_OK)
        limit = self.throttle.fail(client, now)
        log_event(log, "smtp.auth_failed", logging.WARNING, client=client, user=username[:64])
        if limit:
            await _hang_up(server, replies.TOO_MANY_AUTH_FAILURES)
            return None
        return str(replies.AUTH_FAILED)


async def _read_credentials(
    server: SMTP, mechanism: str, args: list[str]
) -> tuple[str, bytes] | None:
    if mechanism == "PLAIN":
        blob = await _initial_or_challenge(server, args, "")
        if blob is None:
            return None
        parts = blob.split(b"\x00")
        if len(parts) != 3:
            await server.push("501 5.5.2 Cannot split the AUTH PLAIN value")
            return None
        return parts[1].decode("utf-8", "replace"), parts[2]
    if mechanism == "LOGIN":
        user = await _initial_or_challenge(server, args, "Username:")
        if user is None:
            return None
        password = await server.challenge_auth("Password:")
        if password is MISSING:
            return None
        assert isinstance(password, bytes)
        return user.decode("utf-8", "replace"), password
    await server.push("504 5.5.4 Unrecognized authentication type")
    return None


async def _initial_or_challenge(server: SMTP, args: list[str], prompt: str) -> bytes | None:
    if len(args) > 1:
        try:
            return base64.b64decode(args[1].encode(), validate=True)
        except ValueError:
            await server.push("501 5.5.2 Cannot decode base64")
            return None
    answer = await server.challenge_auth(prompt)
    return None if answer is MISSING else answer


async def _hang_up(server: SMTP, reply: Reply) -> None:
    await server.push(str(reply))
    if server.transport is not None:
        server.transport.close()
