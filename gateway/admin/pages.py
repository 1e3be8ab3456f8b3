"""The support page: server-rendered HTML for support staff, pt-BR first, English too.

Owns: the login form and its session cookie, the address search with the status card
(colour, title, what to do), the ready-to-send customer message with a Copy button, the
suppression with an Unblock form (CSRF-protected), the event timeline, and the
suppression list view. Does not own: deciding the status (``admin.views``), the texts
(``core.status_text``) or the unblock itself (``admin.suppressions``).

Authentication: ``GET /login`` shows the form; ``POST /login`` takes an admin token once,
sets a session cookie (``HttpOnly``, ``SameSite=Strict``, ``Secure`` over HTTPS; see
``admin.auth``) and goes back to the page that sent the caller there (``next``, a path on
this site only); an ``Authorization: Bearer`` header works too, for scripts. A page asked
for without either answers 303 to ``/login``. The HTML comes from the Jinja2 templates in
``templates/`` (``admin.templating``), which escape every value shown; the only script is
inline with a per-response CSP nonce.
"""

from __future__ import annotations

import contextlib
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.admin import params, scope
from gateway.admin import request_models as rq
from gateway.admin.auth import SESSION_COOKIE, SESSION_LIFETIME, Principal
from gateway.admin.deps import auth_of, deps_of
from gateway.admin.errors import ApiError, nul_refused
from gateway.admin.held import held_view
from gateway.admin.no_record import no_record
from gateway.admin.operations import described
from gateway.admin.response_models import Lang
from gateway.admin.support_texts import support_text
from gateway.admin.suppressions import MAX_REASON, unblock
from gateway.admin.templating import render_support
from gateway.admin.texts import page_text
from gateway.admin.views import RecipientReport, normalise_lang, recipient_report, reply_text
from gateway.core.model import Status, SuppressionReason
from gateway.core.status_text import folded_label
from gateway.core.streams import Scope

_COLOURS = {
    Status.SENT: "green",
    Status.QUEUED: "amber",
    Status.DEFERRED: "amber",
    Status.HELD: "amber",
    Status.PROVIDER_HOLD: "amber",
}
# Timeline dots: good news green, waiting amber, final failures red, the rest grey.
_EVENT_COLOURS = {
    "sent": "green",
    "unsuppressed": "green",
    "released": "green",
    "queued": "grey",
    "deferred": "amber",
    "held": "amber",
    "duplicate": "grey",
    "report": "grey",
    "possible_typo": "amber",
}
_PAGE_SIZE = 100
NOT_LOGGED_IN = "Not logged in: to /login?next=…"


def _lang(request: Request) -> Lang:
    return normalise_lang(request.query_params.get("lang"))


def render(
    request: Request,
    lang: str,
    name: str,
    title: str,
    *,
    status: int = 200,
    session: str | None = None,
    **context: Any,
) -> Response:
    """The page ``name`` in the frame of ``base.html``: the language switch, and with a
    session the suppression-list link and the logout form (with its CSRF token)."""
    other = "en" if lang == "pt-BR" else "pt-BR"
    frame = {
        "lang": lang,
        "title": title,
        "t": page_text(lang),
        "session": session is not None,
        "csrf": auth_of(request).csrf_token(session) if session is not None else "",
        "switch_query": urlencode(dict(request.query_params) | {"lang": other}),
    }
    return render_support(request, name, {**context, **frame}, status)


async def _who(request: Request) -> tuple[Principal | None, str | None]:
    """The caller, and their session cookie when they came with one (``admin.scope``)."""
    return await scope.page_principal(request)


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", "replace")
    form = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
    for key, value in form.items():
        if key in _FORM_FIELDS and "\x00" in value:  # another key is never read
            raise nul_refused(key)
    return form


_FORM_FIELDS = frozenset(
    name
    for form in (rq.LoginForm, rq.LogoutForm, rq.UnblockForm)
    for name in form.__struct_encode_fields__
)


def _local_next(value: str | None) -> str | None:
    """``value`` when it is a path on this site to go back to after logging in; ``None`` for
    anything else, so that ``next`` can never send the caller to another host."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    if not value.isprintable() or urlsplit(value).path.startswith("/login"):
        return None
    return value


def _to_login(request: Request, lang: str) -> RedirectResponse:
    """303 to the login form, which comes back here once the caller has logged in."""
    query = {"lang": lang}
    if request.url.path != "/":
        query["next"] = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?{urlencode(query)}", status_code=303)


def _login_form(
    request: Request, lang: str, error: str = "", status: int = 200, after: str | None = None
) -> Response:
    t = page_text(lang)
    return render(
        request, lang, "login.html", t["login"], status=status, error=error, after=after or ""
    )


# --- routes -------------------------------------------------------------------------------


@described("Support page: the address search", query=rq.PageQuery, see_other=NOT_LOGGED_IN)
@scope.tenant_aware
async def index(request: Request) -> Response:
    lang = _lang(request)
    principal, session = await _who(request)
    if principal is None:
        return _to_login(request, lang)
    title = page_text(lang)["heading"]
    return render(request, lang, "index.html", title, session=session, address="", tenant="")


@described(
    "The login form (303 to the page, or to next, when already logged in)",
    query=rq.LoginQuery,
    see_other="Already logged in: to the page, or to next",
)
@scope.tenant_aware
async def login_page(request: Request) -> Response:
    lang = _lang(request)
    after = _local_next(request.query_params.get("next"))
    principal, _ = await _who(request)
    if principal is not None:
        return RedirectResponse(after or f"/?lang={lang}", status_code=303)
    return _login_form(request, lang, after=after)


@described(
    "Log in with a token (sets an HttpOnly session cookie)",
    status=303,
    body=rq.LoginForm,
    media="",
    pages={401: "A wrong token: the form again, with the error"},
)
@scope.tenant_aware
async def login(request: Request) -> Response:
    form = await _form(request)
    lang = normalise_lang(form.get("lang"))
    after = _local_next(form.get("next"))
    principal = await scope.authenticate(request, form.get("token", ""))
    if principal is None:
        return _login_form(request, lang, page_text(lang)["bad_login"], 401, after)
    response = RedirectResponse(after or f"/?lang={lang}", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        auth_of(request).make_session(principal),
        max_age=SESSION_LIFETIME,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@described(
    "Log out (CSRF token required with a session)",
    status=303,
    body=rq.LogoutForm,
    body_required=False,  # without a session there is nothing to protect: no form is read
    media="",
    errors=(403,),
)
@scope.tenant_aware
async def logout(request: Request) -> Response:
    form = await _form(request)
    _, session = await _who(request)
    if session is not None and not auth_of(request).check_csrf(session, form.get("csrf", "")):
        raise ApiError(403, "csrf", "The form's CSRF token is missing or wrong")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@described("Support page for an address", query=rq.SupportQuery, see_other=NOT_LOGGED_IN)
@scope.tenant_aware
async def support(request: Request) -> Response:
    lang = _lang(request)
    principal, session = await _who(request)
    if principal is None:
        return _to_login(request, lang)
    t = page_text(lang)
    raw = request.query_params.get("address", "").strip()
    tenant = request.query_params.get("tenant", "").strip()
    context: dict[str, Any] = {"address": raw, "tenant": tenant, "error": "", "unknown": ""}
    report = None
    if raw:
        deps = deps_of(request)
        try:
            address = params.address_key(raw)
        except ApiError as exc:
            context["error"] = exc.message
        else:
            # A tenant token sees its own tenant only; another tenant's name is answered
            # as an address without a record (admin.scope: existence is not leaked).
            visible = principal.tenant is None or tenant in ("", principal.tenant)
            report = (
                await recipient_report(
                    deps.store,
                    address,
                    scope.tenant_filter(request, tenant),
                    lang,
                    deps.clock.now(),
                )
                if visible
                else None
            )
            if report is None:
                context["unknown"] = address
                # What to check in the application, beside the tenant's activity and the
                # address check (issue 16 item 1); not for another tenant's name.
                with contextlib.suppress(ApiError):
                    only = scope.tenant_filter(request, tenant)
                    context["nr"] = await no_record(deps, address, only, lang)
            else:
                csrf = auth_of(request).csrf_token(session) if session else ""
                context |= _report_context(report, lang, principal, csrf)
    context.setdefault("r", None)
    context.setdefault("nr", None)
    context["x"] = support_text(lang)
    title = f"{t['heading']} — {raw}"
    return render(request, lang, "support.html", title, session=session, **context)


def _report_context(
    r: RecipientReport, lang: str, principal: Principal, csrf: str
) -> dict[str, Any]:
    """What ``report.html`` shows of a report, worked out here so the template only prints."""
    label = folded_label(r.category, lang)
    status_line = page_text(lang)["status_" + r.status.value] + (f" — {label}" if label else "")
    refused = r.rejection is not None and r.status is Status.REJECTED
    return {
        "r": r,
        "colour": _COLOURS.get(r.status, "red"),
        "status_line": status_line,
        "refusal": reply_text(r.rejection) if refused and r.rejection else "",
        "suppressions": [
            (s, reply_text(cause) if (cause := r.causes.get(s.event_id or -1)) else "")
            for s in r.suppressions
        ],
        "can_unblock": not principal.read_only and bool(csrf),
        "held": held_view(r, lang),  # issue 15: kept for a blocked address, or by an admin
        "max_reason": MAX_REASON,
        "events": [
            (
                ev,
                _EVENT_COLOURS.get(ev.type.value, "red"),
                folded_label(ev.category, lang) or (ev.category or ""),
                reply_text(ev),
            )
            for ev in r.events
        ],
    }


@described(
    "Unblock form (CSRF token, reason)",
    status=303,
    body=rq.UnblockForm,
    media="",
    errors=(401, 403, 404, 422),
)
@scope.tenant_aware
async def unblock_form(request: Request) -> Response:
    form = await _form(request)
    lang = normalise_lang(form.get("lang"))
    principal, session = await _who(request)
    if principal is None:
        raise ApiError(401, "unauthorized", "Log in first")
    if session is not None and not auth_of(request).check_csrf(session, form.get("csrf", "")):
        raise ApiError(403, "csrf", "The form's CSRF token is missing or wrong")
    if principal.read_only:
        raise ApiError(403, "forbidden", "This token is read-only")
    reason = form.get("reason", "").strip()[:MAX_REASON]
    address = params.address_key(form.get("address", ""))
    if not reason:
        raise ApiError(422, "invalid_request", "reason is required")
    request.state.principal = principal
    tenant = scope.tenant_filter(request, form.get("tenant", "").strip())
    # The audit entry is written with the unblock, in its transaction (issue 13).
    wanted = form.get("scope", "").strip()  # the suppression's own scope (issue 15)
    lift = Scope(wanted) if wanted in {s.value for s in Scope} else None
    await unblock(
        deps_of(request), principal.actor, address, tenant, reason, request, block_scope=lift
    )
    query = urlencode({"address": address, "lang": lang})
    return RedirectResponse(f"/support?{query}", status_code=303)


@described(
    "Suppression list page",
    query=rq.SuppressionListQuery,
    errors=(404, 422),
    see_other=NOT_LOGGED_IN,
)
@scope.tenant_aware
async def suppressions_page(request: Request) -> Response:
    lang = _lang(request)
    principal, session = await _who(request)
    if principal is None:
        return _to_login(request, lang)
    t = page_text(lang)
    q = request.query_params
    tenant = q.get("tenant", "").strip()
    reason = _reason(q.get("reason", "").strip())
    after = params.decode_cursor(q.get("cursor"))
    after = after if isinstance(after, str) else ""
    rows = await deps_of(request).store.list_suppressions(
        scope.tenant_filter(request, tenant), reason, _PAGE_SIZE + 1, after
    )
    shown = [
        (
            s,
            ""
            if s.address.startswith("sha256:")
            else urlencode({"address": s.address, "tenant": s.tenant, "lang": lang}),
        )
        for s in rows[:_PAGE_SIZE]
    ]
    next_query = ""
    if len(rows) > _PAGE_SIZE:
        last = rows[_PAGE_SIZE - 1]
        cursor = params.encode_cursor(f"{last.tenant} {last.address} {last.scope.value}")
        next_query = urlencode(dict(q) | {"cursor": cursor})
    return render(
        request,
        lang,
        "suppressions.html",
        t["suppressions"],
        session=session,
        tenant=tenant,
        reason=reason,
        reasons=list(SuppressionReason),
        rows=shown,
        next_query=next_query,
    )


def _reason(raw: str) -> SuppressionReason | None:
    """The list's reason filter.

    Raises:
        ApiError: 422 naming the choices, for a value that is not a reason.
    """
    if not raw:
        return None
    try:
        return SuppressionReason(raw)
    except ValueError:
        choices = ", ".join(m.value for m in SuppressionReason)
        raise ApiError(422, "invalid_request", f"reason must be one of: {choices}") from None
