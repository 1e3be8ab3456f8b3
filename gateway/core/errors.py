"""The gateway's exception tree. Third-party errors are translated at the adapter boundary.

::

    GatewayError
    ├── ConfigError            key: the dotted config key at fault
    ├── StoreError             the store could not do what was asked
    │   ├── StoreUnavailable   transient: locked, disk full, connection lost
    │   └── LeaseLost          a fencing check failed: another node owns the work now
    ├── DnsError               a lookup failed
    │   ├── DnsTemporary       SERVFAIL, timeout: try later
    │   └── DnsPermanent       NXDOMAIN/no data: the name cannot receive mail
    └── RelayError             carries ``reply`` and ``phase``
        ├── TransientRelayError  4xx, network errors, timeouts: defer
        └── PermanentRelayError  5xx: bounce

aiosmtplib, dnspython, aiosqlite and asyncpg exceptions never leave their adapters.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.core.replies import Reply


class GatewayError(Exception):
    """Root of every error the gateway raises on purpose."""


class ConfigError(GatewayError):
    """Bad configuration. ``key`` names the offending dotted key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"config key {key}: {message}")
        self.key = key


class StoreError(GatewayError):
    """The store failed."""


class StoreUnavailable(StoreError):
    """Transient store failure; ``full`` is true when storage ran out."""

    def __init__(self, message: str, *, full: bool = False) -> None:
        super().__init__(message)
        self.full = full


class LeaseLost(StoreError):
    """The claimed work was taken over by another owner; the result must not be recorded."""


class DnsError(GatewayError):
    """A DNS lookup failed."""


class DnsTemporary(DnsError):
    """SERVFAIL, timeout or no answer: retry later."""


class DnsPermanent(DnsError):
    """The name does not exist or has no usable records."""


class Phase(StrEnum):
    """Where in an SMTP client session a failure happened."""

    RESOLVE = "resolve"
    CONNECT = "connect"
    GREETING = "greeting"
    EHLO = "ehlo"
    STARTTLS = "starttls"
    AUTH = "auth"
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"
    DOT = "dot"


class RelayError(GatewayError):
    """A delivery attempt failed at ``phase`` with ``reply``."""

    def __init__(self, reply: Reply, phase: Phase, host: str = "") -> None:
        super().__init__(f"{phase}: {reply}")
        self.reply = reply
        self.phase = phase
        self.host = host


class TransientRelayError(RelayError):
    """Defer and retry."""


class PermanentRelayError(RelayError):
    """Bounce."""
