"""One delivery attempt: where a domain's mail goes (its site and MX hosts), and the SMTP
transaction with the first host that answers.

Routing faults and what they mean for the recipients:

* null MX (RFC 7505) → bounced ``5.1.10``, without connecting; NXDOMAIN or no MX and no
  address → bounced ``5.1.2``; SERVFAIL or a DNS timeout → deferred ``4.4.3``;
* an MX that is this gateway → bounced ``5.4.6`` (``MAIL_LOOP``), before any message is
  sent: by name (``local_names``), by address and port (``local_endpoints``: one of our
  SMTP listeners), or by the server greeting us with our own name (``relay.client``);
* a ``5xx`` greeting (RFC 5321 §3.1 "no SMTP service here") → the next MX, then deferred:
  it names no recipient and is as often a rate limit, a blocklist or maintenance on one
  MX as a refusal of the domain; if it never changes, the recipient expires after
  ``relay.max_queue_lifetime``.

Owns: the MX order and the bounded number of addresses tried (RFC 5321 §5.1), the loop
checks, and telling the caller whether a session was set up at all (what a site's health
counts). Does not own: the SMTP dialogue (``relay.client``) or what the outcome means
(``relay.recording``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from gateway.core import replies
from gateway.core.errors import (
    DnsPermanent,
    DnsTemporary,
    PermanentRelayError,
    Phase,
    RelayError,
    TransientRelayError,
)
from gateway.core.routing import order_mx, provider_of, site_of

if TYPE_CHECKING:
    from gateway.config import RelayConfig
    from gateway.core.ports import Resolver
    from gateway.relay.client import SmtpClient, TransactionResult

_MAX_ADDRESSES = 6  # RFC 5321 §5.1: try a bounded number of addresses per attempt
SMARTHOST_SITE = "smarthost"


@dataclass(frozen=True, slots=True)
class Route:
    """Where a domain's mail goes: its site (the sorted set of its MX host names, or the
    smarthost), the provider that runs it, and the MX hosts in the order to try."""

    site: str
    provider: str
    hosts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Attempt:
    """What an attempt did: the transaction's result, or the failure for every recipient;
    ``reached``: a session was set up with some host (its greeting and EHLO worked)."""

    result: TransactionResult | None
    failure: RelayError | None
    reached: bool

    @property
    def unreachable(self) -> bool:
        """No host could be reached: refused, no route, no greeting, TLS failure where TLS
        is required — what suspends a site after a few in a row."""
        failure = self.failure
        if self.reached or failure is None:
            return False
        if failure.phase is Phase.CONNECT:
            return True
        enhanced = failure.reply.enhanced
        return (failure.phase is Phase.GREETING and enhanced in ("4.4.2", "4.4.1")) or (
            failure.phase is Phase.STARTTLS and enhanced == "4.7.5"
        )


class Attempter:
    """Routes domains and makes attempts (see the module docstring).

    Args:
        config: the ``[relay]`` section (smarthost, MX port).
        resolver: DNS.
        client: the SMTP client.
        local_names: our own host names; an MX naming one is a mail loop.
        local_endpoints: our SMTP listeners' ``(address, port)`` pairs, read at each
            attempt; an MX address and ``relay.mx_port`` equal to one of them is a loop.
    """

    def __init__(
        self,
        config: RelayConfig,
        resolver: Resolver,
        client: SmtpClient,
        local_names: Iterable[str] = (),
        local_endpoints: Callable[[], Iterable[tuple[str, int]]] | None = None,
    ) -> None:
        self.config = config
        self.resolver = resolver
        self.client = client
        self.local_names = {n.lower().rstrip(".") for n in local_names if n}
        self.local_endpoints = local_endpoints

    async def route(self, domain: str) -> Route | RelayError:
        """The route for ``domain``, or the error that ends the attempt before any
        connection (no such domain, null MX, DNS failing, an MX that is ourselves)."""
        smarthost = self.config.smarthost
        if smarthost is not None:
            return Route(f"{SMARTHOST_SITE}:{smarthost.host}:{smarthost.port}", SMARTHOST_SITE)
        try:
            answer = await self.resolver.mx(domain)
        except DnsPermanent:
            return PermanentRelayError(replies.NO_SUCH_DOMAIN, Phase.RESOLVE, domain)
        except DnsTemporary:
            return TransientRelayError(replies.DNS_TEMPFAIL, Phase.RESOLVE, domain)
        if answer.null:
            return PermanentRelayError(replies.NULL_MX, Phase.RESOLVE, domain)
        hosts = tuple(order_mx(answer))
        for host in hosts:
            if host.lower().rstrip(".") in self.local_names:
                # RFC 5321 §5.1: an MX naming ourselves means a loop, not a destination.
                return PermanentRelayError(replies.MAIL_LOOP, Phase.RESOLVE, host)
        if not hosts:
            return TransientRelayError(replies.CONNECT_FAILED, Phase.CONNECT, domain)
        return Route(site_of(hosts), provider_of(hosts[0]), hosts)

    async def attempt(
        self,
        route: Route,
        return_path: str,
        rcpts: list[str],
        content: bytes,
        max_messages: int | None = None,
    ) -> Attempt:
        """One transaction through the route's first host that answers."""
        smarthost = self.config.smarthost
        if smarthost is not None:
            auth = None
            if self.config.smarthost_user:
                auth = (self.config.smarthost_user, self.config.smarthost_password)
            try:
                result = await self.client.send(
                    smarthost.host,
                    smarthost.port,
                    return_path,
                    rcpts,
                    content,
                    auth=auth,
                    max_messages=max_messages,
                )
            except PermanentRelayError as exc:
                return Attempt(None, _greeting_refusal(exc) or exc, _reached(exc))
            except TransientRelayError as exc:
                return Attempt(None, exc, _reached(exc))
            return Attempt(result, None, True)
        last: RelayError = TransientRelayError(replies.CONNECT_FAILED, Phase.CONNECT, route.site)
        reached = False
        tried = 0
        own = self._own_endpoints()
        for host in route.hosts:
            try:
                addresses = await self.resolver.addresses(host)
            except (DnsPermanent, DnsTemporary):
                continue
            for address in addresses:
                if _is_own(address, self.config.mx_port, own):
                    text = f"{host} ({address}:{self.config.mx_port}) is this gateway: mail loop"
                    loop = PermanentRelayError(
                        replies.MAIL_LOOP.with_text(text), Phase.RESOLVE, host
                    )
                    return Attempt(None, loop, reached)
                if tried >= _MAX_ADDRESSES:
                    return Attempt(None, last, reached)
                tried += 1
                try:
                    result = await self.client.send(
                        address,
                        self.config.mx_port,
                        return_path,
                        rcpts,
                        content,
                        server_name=host,
                        max_messages=max_messages,
                    )
                except PermanentRelayError as exc:
                    exc.host = host  # the MX name, not the address: stats group by MX host
                    reached = reached or _reached(exc)
                    deferral = _greeting_refusal(exc)
                    if deferral is None:
                        return Attempt(None, exc, reached)
                    last = deferral
                    continue
                except TransientRelayError as exc:
                    exc.host = host
                    reached = reached or _reached(exc)
                    last = exc
                    if exc.phase is Phase.DOT:
                        # The message may have been delivered: don't send it to another MX
                        # now, retry later (at-least-once, duplicates kept rare).
                        return Attempt(None, exc, reached)
                    continue
                return Attempt(replace(result, host=host), None, True)
        return Attempt(None, last, reached)

    def _own_endpoints(self) -> set[tuple[str, int]]:
        if self.local_endpoints is None:
            return set()
        return {(str(a), int(p)) for a, p in self.local_endpoints()}


def _reached(exc: RelayError) -> bool:
    """Whether the session got past its set-up (greeting, EHLO, STARTTLS) before ``exc``."""
    return exc.phase not in (Phase.RESOLVE, Phase.CONNECT, Phase.GREETING, Phase.STARTTLS)


def _greeting_refusal(exc: PermanentRelayError) -> TransientRelayError | None:
    """A ``5xx`` greeting as a deferral (see the module docstring); ``None`` for anything
    else, including a server that greeted us with our own name (a loop stays permanent)."""
    if exc.phase is not Phase.GREETING or exc.reply.enhanced == replies.MAIL_LOOP.enhanced:
        return None
    text = f"{exc.host} refused service at the greeting: {exc.reply}"
    return TransientRelayError(replies.GREETING_REFUSED.with_text(text), exc.phase, exc.host)


def _is_own(address: str, port: int, own: set[tuple[str, int]]) -> bool:
    """Whether ``address:port`` is one of our listeners. A wildcard listener (``0.0.0.0``,
    ``::``) answers on every local address; loopback addresses are the ones we can know
    without asking the system for its interfaces."""
    if not own:
        return False
    if (address, port) in own:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    wildcard = any(p == port and a in ("0.0.0.0", "::", "") for a, p in own)  # noqa: S104
    return wildcard and ip.is_loopback
