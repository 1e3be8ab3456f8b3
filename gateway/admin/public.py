"""The public listener: RFC 8058 one-click unsubscribe at ``/u/{token}``.

Owns: verifying the signed opt-out token (``core.verp``) and suppressing the token's
(tenant, address) with reason ``opt_out``; its pages come from ``templates/public.html``.
Does not own: making the tokens and the ``List-Unsubscribe`` headers (``relay``), the admin
API (``admin.app``, a private listener).

* ``POST /u/{token}`` with the body ``List-Unsubscribe=One-Click`` (RFC 8058 §3.1; sent
  form-urlencoded or as multipart/form-data) unsubscribes and answers 200.
* ``GET /u/{token}`` only shows a page with a button that POSTs: link scanners and
  prefetchers follow GET links, and must never unsubscribe anyone (RFC 8058 §4).
* A token that does not verify changes nothing: 404. No login, no cookie.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response

from gateway.admin import request_models as rq
from gateway.admin.deps import deps_of
from gateway.admin.operations import described
from gateway.admin.templating import render_public
from gateway.core import verp
from gateway.core.model import Event, EventType, Reason, Suppression, SuppressionReason
from gateway.core.streams import Scope

ONE_CLICK = "One-Click"


def _mask(address: str) -> str:
    local, _, domain = address.rpartition("@")
    shown = local[:2] if len(local) > 2 else local[:1]
    return f"{shown}***@{domain}"


def _token(request: Request) -> tuple[str, str] | None:
    secrets: list[bytes] = request.app.state.unsubscribe_secrets
    return verp.parse_unsubscribe_token(request.path_params["token"], secrets)


def _page(request: Request, page: str, title: str, masked: str = "", status: int = 200) -> Response:
    return render_public(request, {"page": page, "title": title, "masked": masked}, status)


def _invalid(request: Request) -> Response:
    return _page(request, "invalid", "Link inválido / Invalid link", status=404)


@described(
    "A page that asks before unsubscribing (never unsubscribes itself: RFC 8058 §4)",
    pages={404: "The token does not verify"},
)
async def confirm_page(request: Request) -> Response:
    """``GET /u/{token}``: a confirmation page; never unsubscribes."""
    found = _token(request)
    if found is None:
        return _invalid(request)
    _, address = found
    return _page(request, "confirm", "Descadastro / Unsubscribe", _mask(address))


def _is_one_click(content_type: str, body: bytes) -> bool:
    text = body.decode("utf-8", "replace")
    if content_type.startswith("multipart/form-data"):
        # RFC 8058 §3.1 allows multipart; one field, so a plain scan suffices.
        marker = 'name="List-Unsubscribe"'
        return marker in text and ONE_CLICK in text.split(marker, 1)[1].split("--", 1)[0]
    values = parse_qs(text, keep_blank_values=True).get("List-Unsubscribe", [])
    return ONE_CLICK in values


@described(
    "RFC 8058 one-click unsubscribe of the token's (tenant, address)",
    body=rq.OneClick,
    pages={400: "Not a one-click body", 404: "The token does not verify"},
)
async def one_click(request: Request) -> Response:
    """``POST /u/{token}``: unsubscribe the token's (tenant, address)."""
    found = _token(request)
    if found is None:
        return _invalid(request)
    body = await request.body()
    if not _is_one_click(request.headers.get("content-type", ""), body):
        return _page(request, "bad_request", "Pedido inválido / Bad request", status=400)
    tenant, address = found
    deps = deps_of(request)
    now = deps.clock.now()
    note = "RFC 8058 one-click unsubscribe"
    event = Event(
        None,
        tenant,
        address,
        EventType.SUPPRESSED,
        now,
        reason=Reason.OPT_OUT,
        text=f"Suppressed ({SuppressionReason.OPT_OUT.value}): {note}",
        details={"source": "one_click", "scope": Scope.MARKETING.value},
    )
    # An existing permanent suppression (a complaint, say) is the stronger record: keep it.
    # The token came in a List-Unsubscribe header, which only marketing messages carry
    # (issue 15): the opt-out withdraws consent for marketing, invoices go on.
    await deps.store.suppress_with_event(
        Suppression(
            tenant, address, SuppressionReason.OPT_OUT, now, None, None, note, Scope.MARKETING
        ),
        event,
        keep_permanent=True,
    )
    return _page(request, "done", "Descadastro confirmado / Unsubscribed", _mask(address))
