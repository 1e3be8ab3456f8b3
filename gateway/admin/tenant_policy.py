"""The tenant API's policy fields (issue 15 items 2 and 4): hold instead of refuse, the pause.

Owns: reading ``suppressed_action``, ``hold_window``, ``paused`` (with ``note``) and the
pause thresholds out of a tenant request body, writing them (``Store.update_tenant_policy``,
the pause through ``services.pause``, audited with the note), and showing them in the
tenant's response with the operator's defaults applied. Does not own: the other settings
(``admin.tenants``) or what a pause does (``services.pause``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from msgspec import UNSET

from gateway.admin.api import audit_entry
from gateway.admin.deps import deps_of
from gateway.admin.errors import invalid, not_found
from gateway.core.errors import ConfigError
from gateway.core.tenant_policy import PauseCause, PolicyDefaults, resolve
from gateway.core.units import parse_duration
from gateway.services.pause import TenantPauser, policy_defaults

if TYPE_CHECKING:
    from starlette.requests import Request

    from gateway.core.model import Tenant

#: The body's policy keys (``request_models.TenantSettings``), stored apart from the rest.
POLICY_KEYS = (
    "suppressed_action",
    "hold_window",
    "pause_bounce_rate",
    "pause_complaint_rate",
    "pause_min_messages",
    "pause_window",
    "pause_delivery",
)
_DURATIONS = ("hold_window", "pause_window")
_UNITS = (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def duration_text(value: timedelta) -> str:
    """``value`` as the config file writes it: the largest whole unit ("7d", "36h")."""
    seconds = value.total_seconds()
    for unit, size in _UNITS:
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def split_policy(changes: dict[str, Any]) -> dict[str, Any]:
    """Take the policy keys out of ``changes`` (the checked body), typed for the store.

    Raises:
        ApiError: 422 naming a duration that is not one.
    """
    policy = {key: changes.pop(key) for key in POLICY_KEYS if key in changes}
    for key in _DURATIONS:
        if policy.get(key) is not None:
            try:
                length = parse_duration(key, policy[key])
            except ConfigError:
                raise invalid(f'{key} must be a duration such as "7d", "24h" or "90m"') from None
            if length <= timedelta(0):
                raise invalid(f"{key} must be a positive duration")
            policy[key] = length
    return policy


def defaults_of(request: Request) -> PolicyDefaults:
    return policy_defaults(deps_of(request).config.policy)


def policy_fields(tenant: Tenant, defaults: PolicyDefaults) -> dict[str, Any]:
    """The response's policy fields (``response_models.Tenant``), defaults applied."""
    p = resolve(tenant.policy, defaults)
    return {
        "suppressed_action": p.suppressed_action.value,
        "hold_window": duration_text(p.hold_window),
        "paused": p.paused,
        "paused_at": None if p.paused_at is None else p.paused_at.isoformat(),
        "pause_cause": None if p.pause_cause is None else p.pause_cause.value,
        "pause_note": p.pause_note,
        "pause_bounce_rate": p.pause_bounce_rate,
        "pause_complaint_rate": p.pause_complaint_rate,
        "pause_min_messages": p.pause_min_messages,
        "pause_window": duration_text(p.pause_window),
        "pause_delivery": p.pause_delivery,
    }


async def apply_policy(request: Request, name: str, policy: dict[str, Any]) -> None:
    """Write the policy settings of a create or a PATCH (audited with the other fields by
    the caller's own entry; nothing to do when there are none)."""
    if not policy:
        return
    deps = deps_of(request)
    delivery = None
    if "pause_delivery" in policy:  # a pause in force follows the new value at once
        own = policy["pause_delivery"]
        delivery = defaults_of(request).pause_delivery if own is None else bool(own)
    found = await deps.store.update_tenant_policy(name, policy, delivery=delivery)
    if not found:
        raise not_found(f"No tenant {name}")


async def apply_pause(request: Request, name: str, paused: bool, note: str) -> None:
    """Pause or resume tenant ``name`` by hand, with the admin audit entry (and the note)
    in the pause's transaction. Pausing a paused tenant (or resuming a running one) changes
    nothing and writes nothing."""
    deps = deps_of(request)
    pauser = deps.pauser or TenantPauser(deps.store, deps.clock, defaults_of(request))
    action = "tenant.pause" if paused else "tenant.resume"
    entry = audit_entry(request, action, name, note=note)

    def audit(changed: Any) -> Any:
        return entry if changed else None

    if paused:
        settings = await deps.store.tenant_settings(name)
        if settings is None:
            raise not_found(f"No tenant {name}")
        result = await pauser.pause(settings.tenant, PauseCause.MANUAL, note, audit=audit)
    else:
        result = await pauser.resume(name, note, audit=audit)
    if not result.found:
        raise not_found(f"No tenant {name}")
    if deps.pauser is None and deps.tenants_changed is not None:
        deps.tenants_changed()


def pause_body(paused: object, note: object) -> tuple[bool, str] | None:
    """(paused, note) of a PATCH body, or ``None`` when it does not name ``paused`` (a
    ``note`` without it explains the other changes: ``tenants.update_tenant`` audits it)."""
    if paused is UNSET:
        return None
    return bool(paused), "" if note is UNSET or note is None else str(note)
