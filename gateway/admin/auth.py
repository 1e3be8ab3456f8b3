"""Who may call the admin API and the support page.

Owns: the bearer tokens from ``admin.tokens`` and ``admin.read_only_tokens`` (each a token
or ``sha256:<hex>`` of one), checked in constant time, and making new ones with their
``sha256:`` entries (``gateway admin token create``); the actor id an action is recorded
under; the support page's session cookie and CSRF tokens. Does not own: the routes
(``admin.app``) or the error body (``admin.errors``).

Every presented token is hashed with SHA-256 and compared with *every* configured digest
by ``hmac.compare_digest``, without stopping at the first match: the time taken does not
depend on which token, if any, matched, nor on how much of it was right.

The page's session cookie holds no token: it is ``<actor>.<ro>.<expiry>.<mac>``, an HMAC
with a key drawn when the app is built, so a restart logs everyone out and a stolen
cookie dies with its expiry. It is ``HttpOnly``, ``SameSite=Strict``, and ``Secure``
whenever the request came over HTTPS (a browser drops a ``Secure`` cookie set over plain
HTTP except on localhost; the admin listener is loopback by default).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from gateway.admin.errors import ApiError
from gateway.core.errors import ConfigError

SESSION_COOKIE = "gw_session"
SESSION_LIFETIME = 8 * 3600  # one working day, in seconds
TOKEN_BYTES = 32  # of randomness in a token made by ``new_admin_token``


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller.

    Args:
        actor: the first 8 hex digits of the sha256 of the token: recorded with every
            action, never the token itself (a tenant token: ``tt-<token id>``).
        read_only: may only read (GET/HEAD).
        tenant: ``None`` for an admin token (every tenant); else the one tenant a tenant
            token sees (``admin.scope`` decides what that means for each route).
        token_id: a tenant token's id (its session is dropped once it is revoked).
    """

    actor: str
    read_only: bool
    tenant: str | None = None
    token_id: str = ""


def _token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def token_digest_hex(token: str) -> str:
    """The hex SHA-256 of a token: what the store keeps of a tenant token."""
    return _token_digest(token).hex()


def new_admin_token() -> str:
    """A new random token for ``admin.tokens`` (``gateway admin token create``)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def hashed_token_entry(token: str) -> str:
    """The ``sha256:<hex>`` config entry that stands for ``token``: the config can then hold
    the hash instead of the token, and ``TokenAuth`` accepts the token itself."""
    return "sha256:" + _token_digest(token).hex()


def _digest_of(entry: str, key: str) -> bytes:
    if entry.startswith("sha256:"):
        hexpart = entry[len("sha256:") :].strip().lower()
        try:
            digest = bytes.fromhex(hexpart)
        except ValueError:
            raise ConfigError(key, "a sha256: entry must be 64 hex digits") from None
        if len(digest) != hashlib.sha256().digest_size:
            raise ConfigError(key, "a sha256: entry must be 64 hex digits")
        return digest
    if not entry:
        raise ConfigError(key, "empty token")
    return _token_digest(entry)


class TokenAuth:
    """The configured tokens, as SHA-256 digests.

    Args:
        tokens: full-access entries (``admin.tokens``).
        read_only_tokens: read-only entries (``admin.read_only_tokens``).

    Raises:
        ConfigError: an entry is empty or a malformed ``sha256:`` hash (the key is named).
    """

    def __init__(self, tokens: tuple[str, ...], read_only_tokens: tuple[str, ...]) -> None:
        self._digests: list[tuple[bytes, bool]] = [
            (_digest_of(t, "admin.tokens"), False) for t in tokens
        ] + [(_digest_of(t, "admin.read_only_tokens"), True) for t in read_only_tokens]
        self._session_key = secrets.token_bytes(32)

    def authenticate(self, token: str) -> Principal | None:
        """The principal a token stands for, or ``None``; constant time (module docstring)."""
        presented = _token_digest(token)
        match: tuple[bytes, bool] | None = None
        for digest, read_only in self._digests:
            if hmac.compare_digest(presented, digest) and match is None:
                match = (digest, read_only)
        if match is None or not token:
            return None
        # A token listed as both full and read-only gets the first entry: full access.
        return Principal(match[0].hex()[:8], match[1])

    # --- the page's session ---------------------------------------------------------------

    def _mac(self, payload: str) -> str:
        return hmac.new(self._session_key, payload.encode(), hashlib.sha256).hexdigest()

    def make_session(self, principal: Principal, now: float | None = None) -> str:
        expiry = int((now if now is not None else time.time()) + SESSION_LIFETIME)
        # A tenant token's session names its tenant (hex: a tenant name may hold a dot) and
        # its token id; an admin's leaves that part empty.
        scope = ""
        if principal.tenant is not None:
            scope = f"{principal.tenant.encode().hex()}~{principal.token_id}"
        payload = f"{principal.actor}.{int(principal.read_only)}.{expiry}.{scope}"
        return f"{payload}.{self._mac(payload)}"

    def read_session(self, value: str, now: float | None = None) -> Principal | None:
        parts = value.split(".")
        if len(parts) != 5:  # actor, ro, expiry, scope, mac
            return None
        payload = ".".join(parts[:4])
        if not hmac.compare_digest(self._mac(payload), parts[4]):
            return None
        actor, read_only, expiry, scope = parts[:4]
        if not expiry.isdigit() or int(expiry) < (now if now is not None else time.time()):
            return None
        if not scope:
            return Principal(actor, read_only == "1")
        tenant_hex, _, token_id = scope.partition("~")
        return Principal(actor, read_only == "1", bytes.fromhex(tenant_hex).decode(), token_id)

    def csrf_token(self, session: str) -> str:
        """The CSRF token bound to a session: state-changing forms must echo it."""
        return self._mac("csrf:" + session)[:32]

    def check_csrf(self, session: str, token: str) -> bool:
        return hmac.compare_digest(self.csrf_token(session), token)


def bearer_token(authorization: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (RFC 6750 §2.1)."""
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def require(principal: Principal | None, method: str) -> Principal:
    """Enforce the rule: any token may read; only a full token may change anything.

    Raises:
        ApiError: 401 without a valid token, 403 for a read-only token on a write.
    """
    if principal is None:
        raise ApiError(
            401,
            "unauthorized",
            "A valid bearer token is required",
            {"WWW-Authenticate": 'Bearer realm="gateway-admin"'},
        )
    if principal.read_only and method not in ("GET", "HEAD"):
        raise ApiError(403, "forbidden", "This token is read-only")
    return principal
