"""JSON handlers for tenant-scoped tokens: create (shown once), list, revoke (issue 16 item 2).

Owns: making a tenant token (``gwt_`` + 32 random bytes), its request and response models,
and the audit entries of creating and revoking one. Does not own: what such a token may see
(``admin.scope``) or storing it (``store.token_queries``; only the SHA-256 is kept).

Only an admin token manages tokens: these handlers are not ``tenant_aware``, so the guard
answers 403 to a tenant token, its own tenant's tokens included (a leaked tenant token must
not mint more).
"""

from __future__ import annotations

import secrets
from typing import Annotated, ClassVar, Literal

from msgspec import Meta
from starlette.requests import Request

from gateway.admin import params
from gateway.admin.api import audit_entry
from gateway.admin.auth import TOKEN_BYTES, token_digest_hex
from gateway.admin.deps import deps_of, principal_of
from gateway.admin.errors import not_found
from gateway.admin.operations import json_route
from gateway.admin.request_models import Body
from gateway.admin.response_models import Model, Time
from gateway.admin.scope import TENANT_TOKEN_PREFIX
from gateway.core.access import Access, TenantToken

AccessName = Literal["read", "write"]


class TokenCreate(Body, forbid_unknown_fields=True):
    """A new tenant token: read-only or read-write, and a label to know it by."""

    access: AccessName
    note: Annotated[str, Meta(max_length=200)] = ""

    sentences: ClassVar[dict[str, str]] = {
        "access": "access must be one of: read, write",
        "note": "note must be a string of at most 200 characters",
    }


class TokenInfo(Model):
    """A tenant token as listed: never the secret."""

    id: str
    tenant: str
    access: AccessName
    note: str
    created_at: Time
    created_by: str
    revoked_at: Time | None = None


class TokenCreated(Model):
    """The new token: ``token`` is shown here once and never again."""

    token: str
    info: TokenInfo


class TokenList(Model):
    items: list[TokenInfo]


class TokenRevoked(Model):
    id: str
    tenant: str
    revoked: bool


def _info(t: TenantToken) -> TokenInfo:
    return TokenInfo(
        id=t.token_id,
        tenant=t.tenant,
        access=t.access.value,
        note=t.note,
        created_at=t.created_at.isoformat(),
        created_by=t.created_by,
        revoked_at=None if t.revoked_at is None else t.revoked_at.isoformat(),
    )


@json_route(
    "Make a token bound to this tenant (read or write); the token is shown once",
    TokenCreated,
    status=201,
    body=TokenCreate,
    errors=(404,),
)
async def create_token(request: Request) -> TokenCreated:
    deps = deps_of(request)
    name = request.path_params["name"]
    body = await params.body_of(request, TokenCreate)
    if await deps.store.get_tenant(name) is None:
        raise not_found(f"No tenant {name}")
    secret = TENANT_TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    token = TenantToken(
        token_id=secrets.token_hex(8),
        tenant=name,
        access=Access(body.access),
        digest=token_digest_hex(secret),
        created_at=deps.clock.now(),
        created_by=principal_of(request).actor,
        note=body.note,
    )
    entry = audit_entry(request, "tenant.token.create", name, id=token.token_id, access=body.access)
    await deps.store.create_tenant_token(token, audit=lambda _: entry)
    return TokenCreated(token=secret, info=_info(token))


@json_route("This tenant's tokens (never their secrets)", TokenList, errors=(404,))
async def list_tokens(request: Request) -> TokenList:
    deps = deps_of(request)
    name = request.path_params["name"]
    if await deps.store.get_tenant(name) is None:
        raise not_found(f"No tenant {name}")
    return TokenList(items=[_info(t) for t in await deps.store.list_tenant_tokens(name)])


@json_route("Revoke a tenant token (at once, its sessions too)", TokenRevoked, errors=(404,))
async def revoke_token(request: Request) -> TokenRevoked:
    deps = deps_of(request)
    name = request.path_params["name"]
    token_id = request.path_params["token_id"]
    entry = audit_entry(request, "tenant.token.revoke", name, id=token_id)
    done = await deps.store.revoke_tenant_token(
        name, token_id, deps.clock.now(), audit=lambda found: entry if found else None
    )
    if not done:
        raise not_found(f"No active token {token_id} for tenant {name}")
    return TokenRevoked(id=token_id, tenant=name, revoked=True)
