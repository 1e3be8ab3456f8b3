"""The support page's side of issue 15 items 2 and 4: held mail and the tenant pause.

Owns: the words (Portuguese first, English) for a recipient held because its address is
blocked ("retida: endereço bloqueado por …, será enviada se for desbloqueado antes de …"),
the tenants page (``/support/tenants``: which tenants are paused, since when, why) and its
pause/resume form (``POST /support/tenants/pause``: CSRF-checked, audited with the note, as
``PATCH /api/v1/tenants/{name}`` with ``paused``). Does not own: the frame and the login
(``admin.pages``), the pause itself (``services.pause``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

from msgspec import Meta
from starlette.responses import RedirectResponse, Response

from gateway.admin import scope
from gateway.admin.deps import auth_of, deps_of
from gateway.admin.errors import ApiError, nul_refused
from gateway.admin.held import policy_text, when
from gateway.admin.operations import described
from gateway.admin.pages import NOT_LOGGED_IN, _form, _lang, _to_login, _who, render
from gateway.admin.request_models import MAX_REASON, Body, Csrf, PageQuery
from gateway.admin.tenant_policy import apply_pause, defaults_of
from gateway.core.tenant_policy import resolve

if TYPE_CHECKING:
    from starlette.requests import Request


class PauseForm(Body):
    tenant: Annotated[str, Meta(max_length=63)]
    action: Annotated[str, Meta(pattern="^(pause|resume)$")]
    note: Annotated[str, Meta(max_length=MAX_REASON)] = ""
    lang: str | None = None
    csrf: Csrf = ""


@dataclass(frozen=True, slots=True)
class _Row:
    name: str
    paused: bool
    since: str
    cause: str
    note: str
    thresholds: str
    delivery: str


@described("Tenants page: paused or sending (issue 15)", query=PageQuery, see_other=NOT_LOGGED_IN)
async def tenants_page(request: Request) -> Response:
    lang = _lang(request)
    principal, session = await _who(request)
    if principal is None:
        return _to_login(request, lang)
    p = policy_text(lang)
    defaults = defaults_of(request)
    rows = []
    for s in await deps_of(request).store.list_tenant_settings():
        if not scope.visible(request, s.tenant.name):
            continue
        pol = resolve(s.tenant.policy, defaults)
        rows.append(
            _Row(
                s.tenant.name,
                pol.paused,
                "" if pol.paused_at is None else when(pol.paused_at),
                "" if pol.pause_cause is None else p[f"cause_{pol.pause_cause.value}"],
                pol.pause_note,
                p["thresholds"].format(
                    bounce=f"{pol.pause_bounce_rate:.1%}",
                    complaint=f"{pol.pause_complaint_rate:.2%}",
                    minimum=pol.pause_min_messages,
                    window=str(pol.pause_window),
                ),
                p["delivery_too"] if pol.pause_delivery else p["delivery_not"],
            )
        )
    csrf = auth_of(request).csrf_token(session) if session else ""
    context: dict[str, Any] = {
        "rows": rows,
        "p": p,
        "can_change": not principal.read_only and principal.tenant is None and bool(csrf),
        "max_reason": MAX_REASON,
    }
    return render(request, lang, "tenants.html", p["tenants"], session=session, **context)


@described(
    "Pause or resume a tenant (CSRF token, note)",
    status=303,
    body=PauseForm,
    media="",
    errors=(401, 403, 404, 422),
)
async def pause_form(request: Request) -> Response:
    form = await _form(request)
    for key in ("tenant", "action", "note"):
        if "\x00" in form.get(key, ""):
            raise nul_refused(key)
    lang = _lang(request) if "lang" not in form else ("en" if form["lang"] == "en" else "pt-BR")
    principal, session = await _who(request)
    if principal is None:
        raise ApiError(401, "unauthorized", "Log in first")
    if session is not None and not auth_of(request).check_csrf(session, form.get("csrf", "")):
        raise ApiError(403, "csrf", "The form's CSRF token is missing or wrong")
    if principal.read_only or principal.tenant is not None:
        raise ApiError(403, "forbidden", "Only an administrator pauses or resumes a tenant")
    action = form.get("action", "")
    if action not in ("pause", "resume"):
        raise ApiError(422, "invalid_request", 'action must be "pause" or "resume"')
    name = form.get("tenant", "").strip()
    note = form.get("note", "").strip()[:MAX_REASON]
    await apply_pause(request, name, action == "pause", note)
    return RedirectResponse(f"/support/tenants?{urlencode({'lang': lang})}", status_code=303)
