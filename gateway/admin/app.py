"""The admin listener and the public listener: route tables, auth guard, HTTP serving.

Owns: the explicit route tables (docs/style.md §14) of the private admin app (JSON API, support
page, probes, ``/metrics``) and of the public app (RFC 8058 one-click unsubscribe), the
guard that authenticates every ``/api/v1`` route, the body cap, and running an app under
uvicorn until the gateway stops. Does not own: the handlers (``api``, ``suppressions``,
``tenants``, ``pages``, ``public``, ``health``) or building the dependencies
(``gateway.app``).

Auth per route kind: ``api`` routes need a bearer token (read-only tokens: GET only);
``page`` routes take the session cookie or a bearer token and answer with a login form or
a redirect; ``open`` routes (probes, metrics, the OpenAPI document, the public listener)
need none, which is why the admin listener must stay private (loopback by default).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import msgspec
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.admin import (
    api,
    customer_texts,
    deliveries,
    feedback,
    health,
    overview,
    pages,
    policy_pages,
    public,
    scope,
    search,
    suppression_csv,
    suppressions,
    tenants,
    tokens,
)
from gateway.admin.auth import TokenAuth, bearer_token, require
from gateway.admin.deps import AdminDeps
from gateway.admin.errors import BodyCap, NoNul, exception_handlers
from gateway.admin.openapi import openapi_document
from gateway.admin.operations import described

__all__ = ["AdminDeps", "admin_routes", "build_admin_app", "build_public_app", "serve_http"]

Endpoint = Callable[[Request], Awaitable[Response]]


@described("This document", media="application/json")
async def openapi(request: Request) -> Response:
    return Response(_document(), media_type="application/json")


@functools.cache
def _document() -> bytes:
    """The document of ``ROUTES``, made once (the table and the models are fixed)."""
    return msgspec.json.encode(openapi_document(ROUTES))


#: (path, methods, endpoint, kind); kind is "api", "page" or "open" (module docstring).
ROUTES: tuple[tuple[str, tuple[str, ...], Endpoint, str], ...] = (
    ("/api/v1/recipients/{address}", ("GET",), api.get_recipient, "api"),
    ("/api/v1/messages", ("GET",), api.list_messages, "api"),
    ("/api/v1/messages/{queue_id}", ("GET",), api.get_message, "api"),
    ("/api/v1/messages/{queue_id}", ("DELETE",), api.delete_message, "api"),
    ("/api/v1/messages/{queue_id}/hold", ("POST",), api.hold_message, "api"),
    ("/api/v1/messages/{queue_id}/release", ("POST",), api.release_message, "api"),
    ("/api/v1/suppressions", ("GET",), suppressions.list_suppressions, "api"),
    ("/api/v1/suppressions", ("POST",), suppressions.add_suppression, "api"),
    # Before /{address}: a path parameter would match "export" and "import" too.
    ("/api/v1/suppressions/export", ("GET",), suppression_csv.export_suppressions, "api"),
    ("/api/v1/suppressions/import", ("POST",), suppression_csv.import_suppressions, "api"),
    ("/api/v1/suppressions/{address}", ("DELETE",), suppressions.delete_suppression, "api"),
    ("/api/v1/addresses/check", ("POST",), api.check_address, "api"),
    ("/api/v1/addresses/{address}/data", ("DELETE",), api.erase_address, "api"),
    ("/api/v1/tenants", ("GET",), tenants.list_tenants, "api"),
    ("/api/v1/tenants", ("POST",), tenants.create_tenant, "api"),
    ("/api/v1/tenants/{name}", ("GET",), tenants.get_tenant, "api"),
    ("/api/v1/tenants/{name}", ("PATCH",), tenants.update_tenant, "api"),
    ("/api/v1/tenants/{name}/credentials", ("POST",), tenants.rotate_credentials, "api"),
    ("/api/v1/tenants/{name}/texts", ("GET",), customer_texts.get_texts, "api"),
    ("/api/v1/tenants/{name}/texts/{lang}", ("PUT",), customer_texts.put_texts, "api"),
    ("/api/v1/overview", ("GET",), overview.get_overview, "api"),
    ("/api/v1/tenants/{name}/tokens", ("GET",), tokens.list_tokens, "api"),
    ("/api/v1/tenants/{name}/tokens", ("POST",), tokens.create_token, "api"),
    ("/api/v1/tenants/{name}/tokens/{token_id}", ("DELETE",), tokens.revoke_token, "api"),
    ("/api/v1/send-test", ("POST",), api.send_test, "api"),
    ("/api/v1/stats", ("GET",), api.stats, "api"),
    ("/api/v1/destinations", ("GET",), api.list_destinations, "api"),
    ("/api/v1/audit", ("GET",), api.list_audit, "api"),
    ("/api/v1/webhooks/deliveries", ("GET",), deliveries.list_deliveries, "api"),
    ("/api/v1/feedback-reports", ("GET",), feedback.list_feedback_reports, "api"),
    ("/api/openapi.json", ("GET",), openapi, "open"),
    ("/healthz", ("GET",), health.healthz, "open"),
    ("/readyz", ("GET",), health.readyz, "open"),
    ("/metrics", ("GET",), health.metrics, "open"),
    ("/", ("GET",), pages.index, "page"),
    ("/login", ("GET",), pages.login_page, "page"),
    ("/login", ("POST",), pages.login, "page"),
    ("/logout", ("POST",), pages.logout, "page"),
    ("/support", ("GET",), pages.support, "page"),
    ("/support/unblock", ("POST",), pages.unblock_form, "page"),
    ("/support/suppressions", ("GET",), pages.suppressions_page, "page"),
    ("/support/tenants", ("GET",), policy_pages.tenants_page, "page"),
    ("/support/tenants/pause", ("POST",), policy_pages.pause_form, "page"),
    ("/overview", ("GET",), overview.overview_page, "page"),
    ("/messages", ("GET",), search.messages_page, "page"),
)

PUBLIC_ROUTES: tuple[tuple[str, tuple[str, ...], Endpoint, str], ...] = (
    ("/u/{token}", ("GET",), public.confirm_page, "open"),
    ("/u/{token}", ("POST",), public.one_click, "open"),
    ("/healthz", ("GET",), health.healthz, "open"),
)


# Other modules' pages that scope their data through admin.scope (walked by
# tests/admin/test_admin_tenant_walk.py); a page not marked answers 403 to a tenant token.
for _page in (
    overview.overview_page,
    search.messages_page,
    policy_pages.tenants_page,
    policy_pages.pause_form,  # refuses a tenant token itself, with its own sentence
):
    scope.tenant_aware(_page)


def _page_guarded(endpoint: Endpoint) -> Endpoint:
    """A page not marked ``scope.tenant_aware``: 403 ``admin_only`` for a tenant token (a
    caller without a token is left to the page, which sends them to the login form)."""

    async def guarded(request: Request) -> Response:
        principal, _ = await scope.page_principal(request)
        if principal is not None:
            scope.refuse_tenant_token(principal)
        return await endpoint(request)

    guarded.__name__ = getattr(endpoint, "__name__", "guarded")
    guarded.__doc__ = endpoint.__doc__
    return guarded


def _guarded(endpoint: Endpoint) -> Endpoint:
    """Authenticate the bearer token before the handler runs (401/403 otherwise); a tenant
    token reaches only the handlers marked ``scope.tenant_aware`` (403 elsewhere)."""
    open_to_tenants = scope.is_tenant_aware(endpoint)

    async def guarded(request: Request) -> Response:
        token = bearer_token(request.headers.get("authorization", ""))
        principal = await scope.authenticate(request, token) if token is not None else None
        request.state.principal = require(principal, request.method)
        if not open_to_tenants:
            scope.refuse_tenant_token(request.state.principal)
        return await endpoint(request)

    guarded.__name__ = getattr(endpoint, "__name__", "guarded")
    guarded.__doc__ = endpoint.__doc__
    return guarded


def _by_method(entries: list[tuple[str, Endpoint]]) -> Endpoint:
    """One endpoint for a path's methods: a path served by two handlers (``GET`` and
    ``DELETE /api/v1/messages/{queue_id}``) is one Starlette route, so a method it does not
    take (``OPTIONS``) is answered 405 with an ``Allow`` header naming all of them (RFC 9110
    §15.5.6), not only the first route's."""
    table = dict(entries)
    if "GET" in table:
        table.setdefault("HEAD", table["GET"])  # as Starlette does for a GET route

    async def dispatch(request: Request) -> Response:
        return await table[request.method](request)

    return dispatch


def _starlette_routes(
    routes: tuple[tuple[str, tuple[str, ...], Endpoint, str], ...], guard: bool
) -> list[Route]:
    """``routes`` as Starlette routes, one per path (API routes wrapped by the guard)."""
    paths: dict[str, list[tuple[str, Endpoint]]] = {}
    for path, methods, ep, kind in routes:
        endpoint = ep
        if guard and kind == "api":
            endpoint = _guarded(ep)
        elif guard and kind == "page" and not scope.is_tenant_aware(ep):
            endpoint = _page_guarded(ep)
        paths.setdefault(path, []).extend((method, endpoint) for method in methods)
    out = []
    for path, entries in paths.items():
        allowed = [method for method, _ in entries]
        only = entries[0][1] if len({id(ep) for _, ep in entries}) == 1 else None
        out.append(Route(path, only or _by_method(entries), methods=allowed))
    return out


def admin_routes() -> list[Route]:
    """The admin app's route table as Starlette routes (API routes wrapped by the guard)."""
    return _starlette_routes(ROUTES, guard=True)


def _app(routes: list[Route], deps: AdminDeps, auth: TokenAuth | None) -> Starlette:
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(
                BodyCap,
                limit=deps.config.admin.max_body_size,
                # A CSV import is read as it arrives, so it may be larger (issue 16 item 7).
                larger={"/api/v1/suppressions/import": deps.config.admin.max_import_size},
            ),
            Middleware(NoNul),
        ],
        exception_handlers=exception_handlers(),
    )
    app.state.deps = deps
    app.state.auth = auth
    return app


def build_admin_app(deps: AdminDeps) -> Starlette:
    """The private admin app: JSON API, support page, ``/metrics``, probes.

    Raises:
        ConfigError: a malformed entry in ``admin.tokens`` or ``admin.read_only_tokens``.
    """
    auth = TokenAuth(deps.config.admin.tokens, deps.config.admin.read_only_tokens)
    return _app(admin_routes(), deps, auth)


def build_public_app(deps: AdminDeps) -> Starlette:
    """The public app: only ``/u/{token}`` (RFC 8058) and ``/healthz``; no auth, no cookie."""
    app = _app(_starlette_routes(PUBLIC_ROUTES, guard=False), deps, None)
    bounce = deps.config.bounce
    app.state.unsubscribe_secrets = [
        s.encode() for s in (bounce.secret, bounce.previous_secret) if s
    ]
    return app


class _Server(uvicorn.Server):
    """uvicorn without its signal handling: the gateway owns SIGTERM/SIGINT (``gateway.app``)
    and stops this server through ``should_exit``; uvicorn's ``capture_signals`` would
    replace the loop's handlers with its own and re-raise the signal afterwards."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    """Bind the listening socket here, so a busy port raises ``OSError`` naming it (uvicorn
    would call ``sys.exit``) and port 0 can be used."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on connections of a socket that says
    # so. Without it each response (head, then body) waited ~40 ms for the client's delayed
    # ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


async def serve_http(
    app: Starlette,
    host: str,
    port: int,
    stopping: asyncio.Event,
    *,
    on_listening: Callable[[int], Any] | None = None,
    grace: float = 5.0,
) -> None:
    """Serve ``app`` on ``host:port`` until ``stopping`` is set, then shut down cleanly.

    Args:
        app: the Starlette app.
        host: the address to listen on.
        port: the port; 0 picks a free one (reported through ``on_listening``).
        stopping: set by the gateway to stop.
        on_listening: called with the bound port once the socket listens.
        grace: seconds open requests get to finish at shutdown.

    Raises:
        OSError: the address cannot be bound.
    """
    sock = _bind(host, port)
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_config=None,
        access_log=False,
        ws="none",
        timeout_graceful_shutdown=int(grace),
    )
    server = _Server(config)
    if on_listening is not None:
        on_listening(sock.getsockname()[1])
    try:
        async with asyncio.TaskGroup() as tasks:
            serving = tasks.create_task(server.serve(sockets=[sock]))
            waiting = tasks.create_task(stopping.wait())
            await asyncio.wait({serving, waiting}, return_when=asyncio.FIRST_COMPLETED)
            server.should_exit = True
            waiting.cancel()
    finally:
        sock.close()
