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
for without either answers 303 to ``/login``. Every value shown is
HTML-escaped; the only script is inline with a per-response CSP nonce.
"""

from __future__ import annotations

import html
import secrets
from importlib import resources
from string import Template
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from gateway.admin import params
from gateway.admin import request_models as rq
from gateway.admin.auth import SESSION_COOKIE, SESSION_LIFETIME, Principal, bearer_token
from gateway.admin.deps import auth_of, deps_of
from gateway.admin.errors import ApiError
from gateway.admin.operations import described
from gateway.admin.response_models import Lang
from gateway.admin.suppressions import MAX_REASON, unblock
from gateway.admin.texts import page_text
from gateway.admin.views import RecipientReport, normalise_lang, recipient_report, reply_text
from gateway.core.model import Status, SuppressionReason
from gateway.core.status_text import folded_label

_BASE = Template(
    resources.files("gateway.admin").joinpath("templates/base.html").read_text(encoding="utf-8")
)
_COLOURS = {
    Status.SENT: "green",
    Status.QUEUED: "amber",
    Status.DEFERRED: "amber",
    Status.HELD: "amber",
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
NOT_LOGGED_IN = "Not logged in: to /login?next=…"


def e(value: object) -> str:
    """HTML-escape anything shown (quotes too: values also go into attributes)."""
    return html.escape("" if value is None else str(value), quote=True)


def _fmt(value: Any) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _lang(request: Request) -> Lang:
    return normalise_lang(request.query_params.get("lang"))


def _switch(request: Request, lang: str) -> str:
    other = "en" if lang == "pt-BR" else "pt-BR"
    query = dict(request.query_params) | {"lang": other}
    label = page_text(lang)["switch"]
    return f'<a href="{e(request.url.path)}?{e(urlencode(query))}">{e(label)}</a>'


def render(
    request: Request,
    lang: str,
    title: str,
    body: str,
    *,
    status: int = 200,
    session: str | None = None,
) -> HTMLResponse:
    t = page_text(lang)
    nav = [_switch(request, lang)]
    if session is not None:
        csrf = auth_of(request).csrf_token(session)
        nav.insert(0, f'<a href="/support/suppressions?lang={e(lang)}">{e(t["suppressions"])}</a>')
        nav.append(
            '<form class="inline" method="post" action="/logout">'
            f'<input type="hidden" name="csrf" value="{e(csrf)}">'
            f'<button type="submit">{e(t["logout"])}</button></form>'
        )
    nonce = secrets.token_urlsafe(16)
    page = _BASE.substitute(
        lang=e(lang),
        title=e(title),
        heading=e(t["heading"]),
        nav=" · ".join(nav),
        body=body,
        nonce=nonce,
    )
    headers = {
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-{nonce}';"
            " form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        ),
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }
    return HTMLResponse(page, status_code=status, headers=headers)


def _who(request: Request) -> tuple[Principal | None, str | None]:
    """The caller, and their session cookie when they came with one."""
    auth = auth_of(request)
    token = bearer_token(request.headers.get("authorization", ""))
    if token is not None:
        return auth.authenticate(token), None
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        found = auth.read_session(cookie)
        return (found, cookie) if found is not None else (None, None)
    return None, None


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


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
) -> HTMLResponse:
    t = page_text(lang)
    message = f'<p class="error">{e(error)}</p>' if error else ""
    back = f'<input type="hidden" name="next" value="{e(after)}">' if after else ""
    body = (
        f"<h1>{e(t['login'])}</h1>{message}"
        '<form method="post" action="/login">'
        f'<input type="hidden" name="lang" value="{e(lang)}">{back}'
        f'<label>{e(t["token"])} <input type="password" name="token" autocomplete="off"'
        " required autofocus></label> "
        f'<button type="submit">{e(t["login"])}</button></form>'
    )
    return render(request, lang, t["login"], body, status=status)


def _search_form(lang: str, address: str = "", tenant: str = "") -> str:
    t = page_text(lang)
    return (
        '<form method="get" action="/support">'
        f'<input type="hidden" name="lang" value="{e(lang)}">'
        f'<label>{e(t["address"])} <input type="search" name="address" value="{e(address)}"'
        " required autofocus></label> "
        f'<label>{e(t["tenant"])} <input type="text" name="tenant" value="{e(tenant)}"'
        ' style="min-width:8em"></label> '
        f'<button type="submit">{e(t["search"])}</button></form>'
    )


# --- routes -------------------------------------------------------------------------------


@described("Support page: the address search", query=rq.PageQuery, see_other=NOT_LOGGED_IN)
async def index(request: Request) -> Response:
    lang = _lang(request)
    principal, session = _who(request)
    if principal is None:
        return _to_login(request, lang)
    return render(request, lang, page_text(lang)["heading"], _search_form(lang), session=session)


@described(
    "The login form (303 to the page, or to next, when already logged in)",
    query=rq.LoginQuery,
    see_other="Already logged in: to the page, or to next",
)
async def login_page(request: Request) -> Response:
    lang = _lang(request)
    after = _local_next(request.query_params.get("next"))
    principal, _ = _who(request)
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
async def login(request: Request) -> Response:
    form = await _form(request)
    lang = normalise_lang(form.get("lang"))
    after = _local_next(form.get("next"))
    principal = auth_of(request).authenticate(form.get("token", ""))
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


@described("Log out (CSRF token required)", status=303, body=rq.LogoutForm, media="", errors=(403,))
async def logout(request: Request) -> Response:
    form = await _form(request)
    _, session = _who(request)
    if session is not None and not auth_of(request).check_csrf(session, form.get("csrf", "")):
        raise ApiError(403, "csrf", "The form's CSRF token is missing or wrong")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@described("Support page for an address", query=rq.SupportQuery, see_other=NOT_LOGGED_IN)
async def support(request: Request) -> Response:
    lang = _lang(request)
    principal, session = _who(request)
    if principal is None:
        return _to_login(request, lang)
    t = page_text(lang)
    raw = request.query_params.get("address", "").strip()
    tenant = request.query_params.get("tenant", "").strip()
    parts = [_search_form(lang, raw, tenant)]
    if raw:
        deps = deps_of(request)
        try:
            address = params.address_key(raw)
        except ApiError as exc:
            parts.append(f'<p class="error">{e(exc.message)}</p>')
        else:
            report = await recipient_report(
                deps.store, address, tenant or None, lang, deps.clock.now()
            )
            if report is None:
                parts.append(f"<p>{e(t['no_record'])} <code>{e(address)}</code></p>")
            else:
                csrf = auth_of(request).csrf_token(session) if session else ""
                parts.append(_report_html(report, lang, principal, csrf))
    return render(request, lang, f"{t['heading']} — {raw}", "".join(parts), session=session)


def _report_html(r: RecipientReport, lang: str, principal: Principal, csrf: str) -> str:
    t = page_text(lang)
    colour = _COLOURS.get(r.status, "red")
    label = folded_label(r.category, lang)
    status_line = f"{t['status_' + r.status.value]}" + (f" — {label}" if label else "")
    out = [
        f'<section class="card {colour}" data-status="{e(r.status.value)}"'
        f' data-reason="{e(r.reason or "")}">',
        f'<p class="badge {colour}">{e(status_line)}</p>',
        f"<h2>{e(r.guidance.title)}</h2>",
        f'<p class="meta"><code>{e(r.address)}</code> · {e(t["since"])} {e(_fmt(r.since))}</p>',
        _typo_html(r, t),
        f'<div class="todo"><h3>{e(t["what_to_do"])}</h3><p>{e(r.guidance.what_to_do)}</p></div>',
        "</section>",
        '<section class="message">',
        f'<h3><label for="customer-message">{e(t["customer_message"])}</label></h3>',
        f'<textarea id="customer-message" readonly>{e(r.guidance.customer_message)}</textarea>',
        f'<p><button type="button" class="primary" data-copy="customer-message"'
        f' data-done="{e(t["copied"])}">{e(t["copy"])}</button></p>',
        "</section>",
    ]
    if r.rejection is not None and r.status is Status.REJECTED:
        out.append(f"<p>{e(t['refusal'])}: <code>{e(reply_text(r.rejection))}</code></p>")
    for s in r.suppressions:
        cause = r.causes.get(s.event_id or -1)
        out.append(f'<section class="suppression"><h3>{e(t["suppression"])} ({e(s.tenant)})</h3>')
        out.append(
            f"<p>{e(t['reason'])}: <strong>{e(t['supp_' + s.reason.value])}</strong> · "
            f"{e(t['since'])} {e(_fmt(s.since))} · {e(t['expires'])} "
            f"{e(_fmt(s.expires_at) or t['never'])}</p>"
        )
        if s.note:
            out.append(f"<p>{e(s.note)}</p>")
        if cause is not None and reply_text(cause):
            out.append(f"<p>{e(t['cause'])}: <code>{e(reply_text(cause))}</code></p>")
        if not principal.read_only and csrf:
            # The Unblock button opens the form that asks for the reason (no JavaScript
            # needed: <details>); the reason is required by the browser and by the server.
            out.append(
                f'<details class="unblock"><summary class="button">{e(t["unblock"])}…</summary>'
                '<form method="post" action="/support/unblock">'
                f'<input type="hidden" name="csrf" value="{e(csrf)}">'
                f'<input type="hidden" name="address" value="{e(r.address)}">'
                f'<input type="hidden" name="tenant" value="{e(s.tenant)}">'
                f'<input type="hidden" name="lang" value="{e(lang)}">'
                f'<label>{e(t["unblock_reason"])}<br><input type="text" name="reason" required'
                f' maxlength="{MAX_REASON}" autocomplete="off"></label> '
                f'<button type="submit" class="danger">{e(t["unblock_confirm"])}</button>'
                "</form></details>"
            )
        out.append("</section>")
    out.append(f"<h3>{e(t['events'])}</h3>")
    if not r.events:
        out.append(f"<p>{e(t['no_events'])}</p>")
    else:
        head = "".join(
            f"<th>{e(t[k])}</th>" for k in ("time", "type", "category", "reply", "host", "queue")
        )
        rows = "".join(
            f'<tr class="ev {_EVENT_COLOURS.get(ev.type.value, "red")}">'
            f'<td>{e(_fmt(ev.at))}</td><td data-type="{e(ev.type.value)}"><span class="dot"></span>'
            f"{e(t.get('ev_' + ev.type.value, ev.type.value))}</td>"
            f"<td>{e(folded_label(ev.category, lang) or (ev.category or ''))}</td>"
            f"<td>{e(reply_text(ev))}</td><td>{e(ev.remote_host)}</td><td>{e(ev.queue_id)}</td>"
            "</tr>"
            for ev in r.events
        )
        out.append(
            f'<table class="events"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
        )
    return "".join(out)


def _typo_html(r: RecipientReport, t: dict[str, str]) -> str:
    """The "did you mean …?" line of a possible typo (an address accepted with a warning)."""
    suggestion = r.typo_suggestion
    if suggestion is None:
        return ""
    return (
        f'<p class="typo" data-suggestion="{e(suggestion)}">{e(t["possible_typo"])} — '
        f"{e(t['did_you_mean'])} <code>{e(suggestion)}</code>?</p>"
    )


@described(
    "Unblock form (CSRF token, reason)",
    status=303,
    body=rq.UnblockForm,
    media="",
    errors=(401, 403, 422),
)
async def unblock_form(request: Request) -> Response:
    form = await _form(request)
    lang = normalise_lang(form.get("lang"))
    principal, session = _who(request)
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
    tenant = form.get("tenant", "").strip() or None
    # The audit entry is written with the unblock, in its transaction (issue 13).
    await unblock(deps_of(request), principal.actor, address, tenant, reason, request)
    query = urlencode({"address": address, "lang": lang})
    return RedirectResponse(f"/support?{query}", status_code=303)


@described(
    "Suppression list page", query=rq.SuppressionListQuery, errors=(422,), see_other=NOT_LOGGED_IN
)
async def suppressions_page(request: Request) -> Response:
    lang = _lang(request)
    principal, session = _who(request)
    if principal is None:
        return _to_login(request, lang)
    t = page_text(lang)
    q = request.query_params
    tenant = q.get("tenant", "").strip()
    reason_raw = q.get("reason", "").strip()
    reason = _reason(reason_raw)
    after = params.decode_cursor(q.get("cursor"))
    after = after if isinstance(after, str) else ""
    limit = 100
    rows = await deps_of(request).store.list_suppressions(tenant or None, reason, limit + 1, after)
    options = "".join(
        f'<option value="{e(v.value)}"{" selected" if v is reason else ""}>'
        f"{e(t['supp_' + v.value])}</option>"
        for v in SuppressionReason
    )
    parts = [
        f"<h1>{e(t['suppressions'])}</h1>",
        '<form method="get" action="/support/suppressions">'
        f'<input type="hidden" name="lang" value="{e(lang)}">'
        f'<label>{e(t["tenant"])} <input type="text" name="tenant" value="{e(tenant)}"'
        ' style="min-width:8em"></label> '
        f'<label>{e(t["reason"])} <select name="reason"><option value="">{e(t["all"])}'
        f"</option>{options}</select></label> "
        f'<button type="submit">{e(t["filter"])}</button></form>',
    ]
    head = "".join(
        f"<th>{e(t[k])}</th>" for k in ("tenant", "address", "reason", "since_h", "expires", "note")
    )
    body_rows = []
    for s in rows[:limit]:
        link = urlencode({"address": s.address, "tenant": s.tenant, "lang": lang})
        shown = (
            f'<a href="/support?{e(link)}">{e(s.address)}</a>'
            if not s.address.startswith("sha256:")
            else f"<code>{e(s.address[:19])}…</code>"
        )
        body_rows.append(
            f"<tr><td>{e(s.tenant)}</td><td>{shown}</td><td>{e(t['supp_' + s.reason.value])}</td>"
            f"<td>{e(_fmt(s.since))}</td><td>{e(_fmt(s.expires_at) or t['never'])}</td>"
            f"<td>{e(s.note)}</td></tr>"
        )
    parts.append(
        f'<table class="suppressions"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body_rows)}</tbody></table>"
    )
    if len(rows) > limit:
        last = rows[limit - 1]
        query = dict(q) | {"cursor": params.encode_cursor(f"{last.tenant} {last.address}")}
        parts.append(f'<p><a href="?{e(urlencode(query))}">{e(t["next"])}</a></p>')
    return render(request, lang, t["suppressions"], "".join(parts), session=session)


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
