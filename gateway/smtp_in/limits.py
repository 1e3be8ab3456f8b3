"""Per-client connection limits of the SMTP intake: who may open one more session.

Owns: the open sessions counted per client address and per client network (an IPv4 /24,
an IPv6 /64), the new connections per minute per client address, and the answer to "may
this client open a session now?" (``None`` or the ``421 4.7.0`` reply that says why).
Does not own: the listener's total ``smtp.max_sessions`` and the shutdown flag
(``smtp_in.server.Listener``), nor what a session does once open.

Postfix's anvil is the model (``smtpd_client_connection_count_limit``,
``smtpd_client_connection_rate_limit``): one client filling ``smtp.max_sessions`` would
otherwise lock every other client out. Clients in ``smtp.trusted_networks`` have their own
limits (``smtp.trusted_sessions_per_client``, ``smtp.trusted_connections_per_minute``; none
by default: they are the gateway's own applications) and no network limit, and so does an
address for an hour after a session from it logged in (an application that authenticates
opens a pool of connections, or one connection per message of a batch).

Memory is bounded: the session tables hold only clients with a session open (at most
``smtp.max_sessions`` entries), and the rate table is a token bucket per address, two
numbers each, at most ``_MAX_TRACKED_CLIENTS`` addresses, the least recently seen dropped
first (a dropped address starts again with a full bucket: the limit errs towards service).
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from dataclasses import dataclass
from typing import TypeVar

from gateway.core import replies
from gateway.core.replies import Reply

_MAX_TRACKED_CLIENTS = 10_000
_AUTHENTICATED_FOR = 3600.0  # seconds an AUTH success lifts its address's limits
_IPV4_NETWORK = 24
_IPV6_NETWORK = 64

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_K = TypeVar("_K")


@dataclass(frozen=True, slots=True)
class ClientLimits:
    """The limits for one kind of client; ``None`` means no limit.

    Args:
        sessions_per_client: open sessions from one address.
        sessions_per_network: open sessions from one /24 (IPv4) or /64 (IPv6).
        connections_per_minute: new connections from one address per minute (a token
            bucket: a burst of this many, refilled evenly over the minute).
    """

    sessions_per_client: int | None
    sessions_per_network: int | None
    connections_per_minute: int | None


NO_LIMITS = ClientLimits(None, None, None)


def client_address(peer: object) -> Address | None:
    """The client's IP address from a socket's peer name, ``None`` when it has none (a Unix
    socket). A dual-stack listener sees IPv4 clients as ``::ffff:a.b.c.d``: they are counted
    as IPv4 (their /24), or every IPv4 client would share one /64."""
    if not isinstance(peer, tuple | list) or not peer:
        return None
    try:
        address = ipaddress.ip_address(str(peer[0]).partition("%")[0])  # no scope id
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def network_of(address: Address) -> Network:
    """The client network an address is counted in: its /24 (IPv4) or /64 (IPv6)."""
    prefix = _IPV4_NETWORK if address.version == 4 else _IPV6_NETWORK
    return ipaddress.ip_network(f"{address}/{prefix}", strict=False)


class ClientTable:
    """Open sessions and connection rates per client (see the module docstring).

    Args:
        untrusted: the limits for every client outside ``trusted``.
        trusted_limits: the limits for clients in ``trusted``.
        trusted: ``smtp.trusted_networks``.
    """

    def __init__(
        self,
        untrusted: ClientLimits,
        trusted_limits: ClientLimits,
        trusted: tuple[Network, ...],
    ) -> None:
        self.untrusted = untrusted
        self.trusted_limits = trusted_limits
        self.trusted = trusted
        self._per_client: dict[Address, int] = {}
        self._per_network: dict[Network, int] = {}
        # address -> (tokens left, when last refilled, in loop seconds)
        self._buckets: OrderedDict[Address, tuple[float, float]] = OrderedDict()
        self._refused: OrderedDict[Address, float] = OrderedDict()  # last logged refusal
        self._authenticated: OrderedDict[Address, float] = OrderedDict()  # last AUTH success

    def is_trusted(self, address: Address) -> bool:
        return any(address in net for net in self.trusted)

    def limits_for(self, address: Address, now: float | None = None) -> ClientLimits:
        """The trusted limits for ``smtp.trusted_networks`` and for an address that
        authenticated within ``_AUTHENTICATED_FOR`` (``now`` given); else the others."""
        if self.is_trusted(address):
            return self.trusted_limits
        if now is not None:
            since = self._authenticated.get(address)
            if since is not None and now - since < _AUTHENTICATED_FOR:
                return self.trusted_limits
        return self.untrusted

    def authenticated(self, address: Address, now: float) -> None:
        """A session from ``address`` logged in: its next connections (an application's
        pool, a batch sent one connection a message) get the trusted limits for a while."""
        self._authenticated.pop(address, None)
        self._authenticated[address] = now
        while len(self._authenticated) > _MAX_TRACKED_CLIENTS:
            self._authenticated.popitem(last=False)

    def admit(self, address: Address, now: float) -> Reply | None:
        """Count a new connection from ``address``: ``None`` when it may open a session
        (then ``leave`` must be called when it ends), else the reply to close it with.

        Args:
            address: the client's IP address.
            now: a monotonic time in seconds (the event loop's clock).
        """
        limits = self.limits_for(address, now)
        if not self._take_token(address, limits.connections_per_minute, now):
            return replies.TOO_MANY_CONNECTIONS_PER_MINUTE
        if (
            limits.sessions_per_client is not None
            and self._per_client.get(address, 0) >= limits.sessions_per_client
        ):
            return replies.TOO_MANY_SESSIONS_FROM_CLIENT
        network = network_of(address)
        if (
            limits.sessions_per_network is not None
            and self._per_network.get(network, 0) >= limits.sessions_per_network
        ):
            return replies.TOO_MANY_SESSIONS_FROM_NETWORK
        self._per_client[address] = self._per_client.get(address, 0) + 1
        self._per_network[network] = self._per_network.get(network, 0) + 1
        return None

    def leave(self, address: Address) -> None:
        """A session admitted by ``admit`` has ended."""
        _decrement(self._per_client, address)
        _decrement(self._per_network, network_of(address))

    def first_refusal(self, address: Address, now: float) -> bool:
        """True the first time in a minute that ``address`` is refused a session: the log
        gets one line per client a minute, not one per connection of a flood."""
        last = self._refused.pop(address, None)
        first = last is None or now - last >= 60.0
        self._refused[address] = last if last is not None and not first else now
        while len(self._refused) > _MAX_TRACKED_CLIENTS:
            self._refused.popitem(last=False)
        return first

    def open_sessions(self, address: Address) -> int:
        return self._per_client.get(address, 0)

    def _take_token(self, address: Address, per_minute: int | None, now: float) -> bool:
        if per_minute is None:
            return True
        tokens, since = self._buckets.pop(address, (float(per_minute), now))
        tokens = min(float(per_minute), tokens + (now - since) * per_minute / 60.0)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[address] = (tokens, now)  # re-inserted last: the most recently seen
        while len(self._buckets) > _MAX_TRACKED_CLIENTS:
            self._buckets.popitem(last=False)
        return allowed

    @property
    def tracked(self) -> int:
        """How many entries the tables hold (for tests of the memory bound)."""
        return (
            len(self._per_client)
            + len(self._per_network)
            + len(self._buckets)
            + len(self._refused)
            + len(self._authenticated)
        )


def _decrement(table: dict[_K, int], key: _K) -> None:
    count = table.get(key, 0) - 1
    if count > 0:
        table[key] = count
    else:
        table.pop(key, None)
