"""Which tenants' data the caller may see and change: the ONE place that decides.

Owns: authenticating a request (the configured admin tokens, then the tenant tokens the
store holds), the rule "a route answers a tenant token only when it says it scopes its data"
and the helpers every such route calls. Does not own: the admin tokens or the session
cookie (``admin.auth``), making tenant tokens (``admin.tokens``) or the route table
(``admin.app``).

How to use it in a route (API handler or page) — read this before adding a route:

1. Routes are closed to tenant tokens by default: the guard (``admin.app``) answers 403
   ``admin_only`` to a tenant token for any handler — API route or page — not marked
   ``@scope.tenant_aware``
   (above or below ``@json_route``/``@described``: either works). Mark a handler only once
   it scopes everything it reads and writes with the helpers below.
   ``tests/admin/test_admin_tenant_walk.py`` walks every route of the OpenAPI document with
   a tenant token against another tenant's data and fails on a leak.
2. A filter the caller may give (``?tenant=``, a body's ``tenant``):
   ``tenant = tenant_filter(request, q.tenant)``. An admin gets what they asked for (``None``
   = every tenant); a tenant token gets its own tenant, whether it named it or named nothing,
   and a 404 for any other name — whether that tenant exists or not, so existence is never
   leaked. Pass the result to the store query, never the raw parameter.
3. A row found by id (a message by queue id, a tenant by name, a token): after reading it,
   ``ensure_visible(request, row.tenant, f"No message {queue_id}")`` answers 404 with the
   same sentence a missing row gets, when the row belongs to another tenant. Check BEFORE
   any write.
4. Rows of several tenants (statistics, a global list): keep only those where
   ``visible(request, tenant)``.
5. Writes: the guard already answers 403 to a read-only token (admin or tenant) on any
   method other than GET/HEAD. ``is_admin(request)`` tells the two kinds of caller apart
   when a route must do less for a tenant (e.g. never lift another tenant's suppression).

A tenant token's principal: ``Principal(actor="tt-<token id>", read_only=<access is read>,
tenant=<name>, token_id=<id>)``; it is on ``request.state.principal`` (``deps.principal_of``)
for API routes (set by the guard) and for pages (set by ``pages._who``).

Tenant tokens are ``gwt_`` + 32 random bytes (URL-safe base64). The store keeps the hex
SHA-256 only and is searched by it (a unique index); the found digest is compared again with
``hmac.compare_digest``. The time a look-up takes can depend only on the digest, which
reveals nothing of a token (a preimage would be needed), and an admin token is always
checked first, in constant time, against every configured digest (``admin.auth``).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import TypeVar

from starlette.requests import Request

from gateway.admin.auth import SESSION_COOKIE, Principal, bearer_token, token_digest_hex
from gateway.admin.deps import auth_of, deps_of
from gateway.admin.errors import ApiError
from gateway.core.access import Access, TenantToken

TENANT_TOKEN_PREFIX = "gwt_"  # noqa: S105 - a prefix that tells a tenant token, not a secret

F = TypeVar("F", bound=Callable[..., object])

#: The handlers that scope their data with this module's helpers (``tenant_aware``).
_TENANT_AWARE: set[object] = set()


def tenant_aware(handler: F) -> F:
    """Mark ``handler`` as open to tenant tokens: it scopes every read and write with
    ``tenant_filter``/``ensure_visible``/``visible`` (module docstring). Unmarked handlers
    answer 403 to a tenant token."""
    _TENANT_AWARE.add(handler)
    return handler


def is_tenant_aware(handler: object) -> bool:
    """Whether ``handler``, or a function it wraps (``functools.wraps``: ``json_route``,
    ``described``), is marked ``tenant_aware``: the decorators may come in either order."""
    seen = 0
    current: object = handler
    while current is not None and seen < 10:  # a wraps chain is a few levels deep
        if current in _TENANT_AWARE:
            return True
        current = getattr(current, "__wrapped__", None)
        seen += 1
    return False


def principal_of_token(found: TenantToken) -> Principal:
    """The principal a stored (unrevoked) tenant token stands for."""
    return Principal(
        actor=f"tt-{found.token_id}",
        read_only=found.access is Access.READ,
        tenant=found.tenant,
        token_id=found.token_id,
    )


async def authenticate(request: Request, token: str) -> Principal | None:
    """The principal of ``token``: an admin token (``admin.auth``) or a tenant token in the
    store; ``None`` for neither."""
    principal = auth_of(request).authenticate(token)
    if principal is not None or not token.startswith(TENANT_TOKEN_PREFIX):
        return principal
    digest = token_digest_hex(token)
    found = await deps_of(request).store.tenant_token_by_digest(digest)
    if found is None or not hmac.compare_digest(found.digest, digest):
        return None
    return principal_of_token(found)


async def still_valid(request: Request, principal: Principal) -> bool:
    """Whether a session's principal may still act: an admin's always; a tenant token's
    while the token is not revoked (a revoked token's sessions die at once)."""
    if principal.tenant is None:
        return True
    tokens = await deps_of(request).store.list_tenant_tokens(principal.tenant)
    return any(t.token_id == principal.token_id and t.revoked_at is None for t in tokens)


async def page_principal(request: Request) -> tuple[Principal | None, str | None]:
    """A page's caller (an ``Authorization: Bearer`` token, else the session cookie), and
    the cookie when they came with one; the principal is put on ``request.state``. A tenant
    token's session ends when its token is revoked."""
    token = bearer_token(request.headers.get("authorization", ""))
    found: Principal | None = None
    cookie = None
    if token is not None:
        found = await authenticate(request, token)
    elif cookie := request.cookies.get(SESSION_COOKIE):
        found = auth_of(request).read_session(cookie)
        if found is not None and not await still_valid(request, found):
            found = None
    if found is None:
        return None, None
    request.state.principal = found
    return found, cookie


def _principal(request: Request) -> Principal:
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:  # a route forgot to authenticate: refuse rather than show all
        raise ApiError(401, "unauthorized", "A valid bearer token is required")
    return principal


def is_admin(request: Request) -> bool:
    """Whether the caller sees every tenant (an admin token)."""
    return _principal(request).tenant is None


def tenant_filter(request: Request, requested: str | None) -> str | None:
    """The tenant filter a route must use (module docstring, rule 2).

    Args:
        request: the request (its principal).
        requested: the tenant the caller named (``?tenant=``, a body field), or ``None``/"".

    Returns:
        ``requested`` (``None`` for "" : every tenant) for an admin; the token's own tenant
        for a tenant token.

    Raises:
        ApiError: 404 for a tenant token naming another tenant (existing or not).
    """
    own = _principal(request).tenant
    if own is None:
        return requested or None
    if requested and requested != own:
        raise ApiError(404, "not_found", f"No tenant {requested}")
    return own


def visible(request: Request, tenant: str) -> bool:
    """Whether the caller may see a row of ``tenant``."""
    own = _principal(request).tenant
    return own is None or own == tenant


def ensure_visible(request: Request, tenant: str, message: str) -> None:
    """Answer 404 with ``message`` (the sentence a missing row gets) when the row of
    ``tenant`` is not the caller's to see (module docstring, rule 3).

    Raises:
        ApiError: 404 ``not_found``.
    """
    if not visible(request, tenant):
        raise ApiError(404, "not_found", message)


def refuse_tenant_token(principal: Principal) -> None:
    """The guard's rule for a handler not marked ``tenant_aware``.

    Raises:
        ApiError: 403 ``admin_only`` for a tenant token.
    """
    if principal.tenant is not None:
        raise ApiError(403, "admin_only", "This route needs an admin token")
