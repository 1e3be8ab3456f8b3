"""JSON handlers for tenants: create, list, update settings, rotate SMTP credentials.

Owns: validating tenant settings, showing a new secret exactly once (the store keeps only
its scrypt hash; a webhook secret is kept because the sender must sign with it) and telling
this process's tenant directory that a tenant changed (``AdminDeps.tenants_changed``).
Does not own: the queries (``store.admin_queries``) or checking SMTP logins (``smtp_in``).
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import msgspec
from starlette.requests import Request

from gateway.admin import params, scope
from gateway.admin import request_models as rq
from gateway.admin import response_models as rm
from gateway.admin.api import audit_entry
from gateway.admin.deps import deps_of
from gateway.admin.errors import ApiError, invalid, not_found
from gateway.admin.operations import json_route
from gateway.admin.tenant_policy import (
    apply_pause,
    apply_policy,
    defaults_of,
    pause_body,
    policy_fields,
    split_policy,
)
from gateway.admin.views import tenant_model
from gateway.core.errors import ConfigError
from gateway.core.model import Tenant
from gateway.core.records import TenantSettings
from gateway.core.streams import Stream
from gateway.core.units import parse_duration
from gateway.services.credentials import new_credentials

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")
_SETTINGS = tuple(rq.TenantSettings.__struct_fields__)
_STREAM_SETTINGS = ("probation", "default_stream", "complaint_scope")


def settings_changes(body: rq.TenantSettings) -> dict[str, Any]:
    """The settings a request body sets (only the keys present), checked and normalised.

    Raises:
        ApiError: 422 naming the first bad field.
    """
    given = {name: getattr(body, name) for name in _SETTINGS}
    changes: dict[str, Any] = {k: v for k, v in given.items() if v is not rm.UNSET}
    if "allowed_sender_domains" in changes:
        cleaned = tuple(d.strip().rstrip(".").lower() for d in changes["allowed_sender_domains"])
        bad = [d for d in cleaned if not _DOMAIN.match(d)]
        if bad:
            raise invalid(f"allowed_sender_domains: {bad[0]!r} is not a domain name")
        changes["allowed_sender_domains"] = cleaned
    if "failure_window_seconds" in changes:
        seconds = changes.pop("failure_window_seconds")
        changes["failure_window"] = None if seconds is None else timedelta(seconds=seconds)
    if changes.get("probation") is not None:  # issue 15: a duration string, as the config
        try:
            length = parse_duration("probation", changes["probation"])
        except ConfigError:
            raise invalid('probation must be a duration such as "30d", "12h" or "90m"') from None
        if length <= timedelta(0):
            raise invalid("probation must be a positive duration")
        changes["probation"] = length
    if "webhook_url" in changes:
        url = changes["webhook_url"].strip()
        try:
            parts = urlsplit(url)
            scheme, host = parts.scheme, parts.hostname
        except ValueError:  # "http://[" and the like: urlsplit refuses what it cannot split
            scheme, host = "", None
        if url and (scheme not in ("http", "https") or not host):
            raise invalid("webhook_url must be an http:// or https:// URL")
        changes["webhook_url"] = url
    return changes


def _new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def _changed(request: Request) -> None:
    """This process's tenant directory reloads at its next look-up."""
    notify = deps_of(request).tenants_changed
    if notify is not None:
        notify()


@scope.tenant_aware
@json_route("Tenants and their settings (a tenant token: its own)", rm.TenantList)
async def list_tenants(request: Request) -> rm.TenantList:
    rows = await deps_of(request).store.list_tenant_settings()
    return rm.TenantList(
        items=[_shown(request, s) for s in rows if scope.visible(request, s.tenant.name)]
    )


@scope.tenant_aware
@json_route("One tenant", rm.Tenant, errors=(404,))
async def get_tenant(request: Request) -> rm.Tenant:
    name = request.path_params["name"]
    scope.ensure_visible(request, name, f"No tenant {name}")
    found = await deps_of(request).store.tenant_settings(name)
    if found is None:
        raise not_found(f"No tenant {name}")
    return _shown(request, found)


@json_route(
    "Create a tenant; its SMTP secret is shown once",
    rm.TenantCreated,
    status=201,
    body=rq.TenantCreate,
    errors=(409,),
)
async def create_tenant(request: Request) -> rm.TenantCreated:
    """``POST /api/v1/tenants``: the SMTP secret (and webhook secret) are shown only here."""
    deps = deps_of(request)
    body = await params.body_of(request, rq.TenantCreate)
    name = body.name
    username = name if body.username is rm.UNSET else body.username
    changes = settings_changes(body)
    policy = split_policy(changes)  # issue 15's hold and pause settings: stored apart
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
    streams = {k: v for k, v in changes.items() if k in _STREAM_SETTINGS}
    if streams:  # issue 15's settings: not columns of create_tenant's insert
        await deps.store.update_tenant_settings(name, streams)
    await apply_policy(request, name, policy)
    _changed(request)
    created = await deps.store.tenant_settings(name)
    assert created is not None
    return rm.TenantCreated(
        tenant=_shown(request, created),
        credentials=rm.SmtpCredentials(username=username, secret=secret),
        webhook_secret=webhook_secret or rm.UNSET,
    )


@json_route(
    "Update quotas, sender domains, list-unsubscribe, bounce notices, webhook",
    rm.TenantUpdated,
    body=rq.TenantPatch,
    body_required=False,  # an empty body changes nothing (and answers the tenant)
    errors=(404,),
)
async def update_tenant(request: Request) -> rm.TenantUpdated:
    deps = deps_of(request)
    name = request.path_params["name"]
    raw = await request.body()
    body = await params.body_of(request, rq.TenantPatch)
    changes = settings_changes(body)
    policy = split_policy(changes)
    pause = pause_body(body.paused, body.note)
    current = await deps.store.tenant_settings(name)
    if current is None:
        raise not_found(f"No tenant {name}")
    rotate = body.rotate_webhook_secret
    new_secret = ""
    url = changes.get("webhook_url", current.webhook_url)
    if url and (rotate or not current.webhook_secret):
        new_secret = _new_webhook_secret()
        changes["webhook_secret"] = new_secret
    note = {"note": body.note} if pause is None and isinstance(body.note, str) else {}
    entry = audit_entry(request, "tenant.update", name, fields=_fields_named(raw), **note)
    await deps.store.update_tenant_settings(
        name, changes, audit=lambda found: entry if found else None
    )
    await apply_policy(request, name, policy)
    if pause is not None:  # its own audit entry, with the note (issue 15)
        await apply_pause(request, name, *pause)
    _changed(request)
    updated = await deps.store.tenant_settings(name)
    assert updated is not None
    return rm.TenantUpdated(tenant=_shown(request, updated), webhook_secret=new_secret or rm.UNSET)


def _shown(request: Request, settings: TenantSettings) -> rm.Tenant:
    """The tenant's response body, its policy fields with the operator's defaults applied."""
    return msgspec.structs.replace(
        tenant_model(settings), **policy_fields(settings.tenant, defaults_of(request))
    )


def _fields_named(raw: bytes) -> list[str]:
    """The keys of a validated body, sorted, as the audit entry lists them."""
    return sorted(msgspec.json.decode(raw, type=dict[str, Any])) if raw.strip() else []


@json_route(
    "Rotate the SMTP credentials; the secret is shown once",
    rm.Credentials,
    body=rq.CredentialsRequest,
    body_required=False,  # an empty body: the tenant's name is the username
    errors=(404, 409),
)
async def rotate_credentials(request: Request) -> rm.Credentials:
    """``POST /api/v1/tenants/{name}/credentials``: a new SMTP secret, shown once."""
    deps = deps_of(request)
    name = request.path_params["name"]
    body = await params.body_of(request, rq.CredentialsRequest)
    username = name if body.username is rm.UNSET else body.username
    if await deps.store.get_tenant(name) is None:
        raise not_found(f"No tenant {name}")
    owner = await deps.store.get_credentials(username)
    if owner is not None and owner[0] != name:
        raise ApiError(409, "conflict", f"The SMTP username {username} belongs to another tenant")
    secret, hashed = await new_credentials()
    entry = audit_entry(request, "tenant.rotate_credentials", name, username=username)
    await deps.store.set_credentials(name, username, hashed, audit=lambda _: entry)
    if body.default_stream is not rm.UNSET:  # the login's default stream (issue 15)
        stream = None if body.default_stream is None else Stream(body.default_stream)
        set_entry = audit_entry(
            request, "tenant.login_stream", name, username=username, stream=str(stream)
        )
        await deps.store.set_login_stream(name, username, stream, audit=lambda _: set_entry)
    _changed(request)
    settings = await deps.store.tenant_settings(name)
    own = dict(settings.streams.logins) if settings is not None else {}
    return rm.Credentials(
        tenant=name, username=username, secret=secret, default_stream=own.get(username)
    )
