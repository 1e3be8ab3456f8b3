"""JSON handlers for tenants: create, list, update settings, rotate SMTP credentials.

Owns: validating tenant settings, showing a new secret exactly once (the store keeps only
its scrypt hash; a webhook secret is kept because the sender must sign with it) and telling
this process's tenant directory that a tenant changed (``AdminDeps.tenants_changed``).
Does not own: the queries (``store.sqlite_admin``) or checking SMTP logins (``smtp_in``).
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.admin.api import audit_entry
from gateway.admin.deps import deps_of
from gateway.admin.errors import ApiError, invalid, not_found, read_json
from gateway.admin.views import tenant_json
from gateway.core.model import Tenant
from gateway.services.credentials import new_credentials
from gateway.store.sqlite_admin import TenantSettings

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")
_FIELDS = frozenset(
    {
        "allowed_sender_domains",
        "hourly_quota",
        "daily_quota",
        "list_unsubscribe",
        "bounce_notice",
        "webhook_url",
        "failure_threshold",
        "failure_window_seconds",
        "rotate_webhook_secret",
    }
)


def _positive_or_none(body: dict[str, Any], name: str) -> int | None:
    value = body[name]
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise invalid(f"{name} must be a positive integer or null")
    return value


def _bool(body: dict[str, Any], name: str) -> bool:
    value = body[name]
    if not isinstance(value, bool):
        raise invalid(f"{name} must be true or false")
    return value


def settings_changes(body: dict[str, Any]) -> dict[str, Any]:
    """The validated settings in a request body (only the keys present).

    Raises:
        ApiError: 422 naming the first bad or unknown field.
    """
    unknown = sorted(set(body) - _FIELDS - {"name", "username"})
    if unknown:
        raise invalid(f"unknown field: {unknown[0]}")
    changes: dict[str, Any] = {}
    if "allowed_sender_domains" in body:
        domains = body["allowed_sender_domains"]
        if not isinstance(domains, list) or not all(isinstance(d, str) for d in domains):
            raise invalid("allowed_sender_domains must be a list of domain names")
        cleaned = tuple(d.strip().rstrip(".").lower() for d in domains)
        bad = [d for d in cleaned if not _DOMAIN.match(d)]
        if bad:
            raise invalid(f"allowed_sender_domains: {bad[0]!r} is not a domain name")
        changes["allowed_sender_domains"] = cleaned
    for name in ("hourly_quota", "daily_quota", "failure_threshold"):
        if name in body:
            changes[name] = _positive_or_none(body, name)
    for name in ("list_unsubscribe", "bounce_notice"):
        if name in body:
            changes[name] = _bool(body, name)
    if "failure_window_seconds" in body:
        seconds = _positive_or_none(body, "failure_window_seconds")
        changes["failure_window"] = None if seconds is None else timedelta(seconds=seconds)
    if "webhook_url" in body:
        url = body["webhook_url"]
        if not isinstance(url, str) or len(url) > 2000:
            raise invalid("webhook_url must be a string")
        parts = urlsplit(url.strip())
        if url.strip() and (parts.scheme not in ("http", "https") or not parts.hostname):
            raise invalid("webhook_url must be an http:// or https:// URL")
        changes["webhook_url"] = url.strip()
    return changes


def _new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def _changed(request: Request) -> None:
    """This process's tenant directory reloads at its next look-up."""
    notify = deps_of(request).tenants_changed
    if notify is not None:
        notify()


async def list_tenants(request: Request) -> JSONResponse:
    rows = await deps_of(request).store.list_tenant_settings()
    return JSONResponse({"items": [tenant_json(s) for s in rows]})


async def get_tenant(request: Request) -> JSONResponse:
    name = request.path_params["name"]
    found = await deps_of(request).store.tenant_settings(name)
    if found is None:
        raise not_found(f"No tenant {name}")
    return JSONResponse(tenant_json(found))


async def create_tenant(request: Request) -> JSONResponse:
    """``POST /api/v1/tenants``: the SMTP secret (and webhook secret) are shown only here."""
    deps = deps_of(request)
    body = await read_json(request)
    name = body.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise invalid("name must be 1-63 characters of a-z, 0-9, '.', '_', '-'")
    username = body.get("username", name)
    if not isinstance(username, str) or not _USERNAME.match(username):
        raise invalid("username must be 1-128 characters of letters, digits and ._@+-")
    changes = settings_changes(body)
    webhook_secret = _new_webhook_secret() if changes.get("webhook_url") else ""
    settings = TenantSettings(
        tenant=Tenant(
            name,
            changes.get("allowed_sender_domains", ()),
            changes.get("hourly_quota"),
            changes.get("daily_quota"),
        ),
        list_unsubscribe=changes.get("list_unsubscribe", False),
        bounce_notice=changes.get("bounce_notice", False),
        webhook_url=changes.get("webhook_url", ""),
        webhook_secret=webhook_secret,
        failure_threshold=changes.get("failure_threshold"),
        failure_window=changes.get("failure_window"),
    )
    if await deps.store.get_credentials(username) is not None:
        raise ApiError(409, "conflict", f"The SMTP username {username} is taken")
    secret, hashed = await new_credentials()
    # The tenant, its login and the audit entry in one transaction (issue 13).
    entry = audit_entry(request, "tenant.create", name)
    inserted = await deps.store.create_tenant(
        settings,
        deps.clock.now(),
        credentials=(username, hashed),
        audit=lambda done: entry if done else None,
    )
    if not inserted:
        raise ApiError(409, "conflict", f"Tenant {name} already exists")
    _changed(request)
    created = await deps.store.tenant_settings(name)
    assert created is not None
    body_out: dict[str, Any] = {
        "tenant": tenant_json(created),
        "credentials": {"username": username, "secret": secret},
    }
    if webhook_secret:
        body_out["webhook_secret"] = webhook_secret
    return JSONResponse(body_out, status_code=201)


async def update_tenant(request: Request) -> JSONResponse:
    deps = deps_of(request)
    name = request.path_params["name"]
    body = await read_json(request)
    if "name" in body or "username" in body:
        raise invalid("name and username cannot be changed; create a tenant or rotate credentials")
    changes = settings_changes(body)
    current = await deps.store.tenant_settings(name)
    if current is None:
        raise not_found(f"No tenant {name}")
    rotate = body.get("rotate_webhook_secret", False)
    if not isinstance(rotate, bool):
        raise invalid("rotate_webhook_secret must be true or false")
    new_secret = ""
    url = changes.get("webhook_url", current.webhook_url)
    if url and (rotate or not current.webhook_secret):
        new_secret = _new_webhook_secret()
        changes["webhook_secret"] = new_secret
    entry = audit_entry(request, "tenant.update", name, fields=sorted(body))
    await deps.store.update_tenant_settings(
        name, changes, audit=lambda found: entry if found else None
    )
    _changed(request)
    updated = await deps.store.tenant_settings(name)
    assert updated is not None
    out: dict[str, Any] = {"tenant": tenant_json(updated)}
    if new_secret:
        out["webhook_secret"] = new_secret
    return JSONResponse(out)


async def rotate_credentials(request: Request) -> JSONResponse:
    """``POST /api/v1/tenants/{name}/credentials``: a new SMTP secret, shown once."""
    deps = deps_of(request)
    name = request.path_params["name"]
    body = await read_json(request)
    username = body.get("username", name)
    if not isinstance(username, str) or not _USERNAME.match(username):
        raise invalid("username must be 1-128 characters of letters, digits and ._@+-")
    if await deps.store.get_tenant(name) is None:
        raise not_found(f"No tenant {name}")
    owner = await deps.store.get_credentials(username)
    if owner is not None and owner[0] != name:
        raise ApiError(409, "conflict", f"The SMTP username {username} belongs to another tenant")
    secret, hashed = await new_credentials()
    entry = audit_entry(request, "tenant.rotate_credentials", name, username=username)
    await deps.store.set_credentials(name, username, hashed, audit=lambda _: entry)
    _changed(request)
    return JSONResponse({"tenant": name, "username": username, "secret": secret})
