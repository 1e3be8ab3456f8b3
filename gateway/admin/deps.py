"""What the admin and public apps are given by the composition root.

Owns: the ``AdminDeps`` record and the accessors handlers use to reach it from a request.
Does not own: building any of it (``gateway.app``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request

if TYPE_CHECKING:
    from gateway.admin.auth import Principal, TokenAuth
    from gateway.config import Config
    from gateway.core.ports import Clock, Store
    from gateway.core.shaping import SiteView
    from gateway.services.checks import RecipientChecker
    from gateway.services.holds import HoldKeeper
    from gateway.services.pause import TenantPauser


async def _no_sites() -> Sequence[SiteView]:
    return ()


@dataclass(slots=True)
class AdminDeps:
    """The admin listener's dependencies.

    Args:
        config: the whole config (``admin``, ``public``, ``smtp``, ``bounce``, ``store``).
        store: the store, every port of it (``core.ports.Store``).
        checker: the intake checklist, for ``POST /api/v1/addresses/check`` and send-test.
        clock: the time source.
        readiness: name -> ok of the other components (``intake``, ``relay``); ``/readyz``
            adds its own store ping.
        metrics: returns ``(body, content type)`` for ``/metrics`` (of the whole service: a
            worker of several merges the others'); ``None`` answers 404.
        on_queued: called after send-test queued a message, to wake the relay.
        tenants_changed: called after a tenant or its credentials changed, so this
            process's tenant directory reloads at once (other processes see the change
            about a second later).
        destinations: the relay's destination sites (``GET /api/v1/destinations``).
        holds: releases an unblocked address's held recipients (issue 15).
        pauser: pauses and resumes tenants (issue 15).
    """

    config: Config
    store: Store
    checker: RecipientChecker
    clock: Clock
    readiness: Callable[[], dict[str, bool]]
    metrics: Callable[[], Awaitable[tuple[bytes, str]]] | None = None
    on_queued: Callable[[], None] | None = None
    tenants_changed: Callable[[], None] | None = None
    destinations: Callable[[], Awaitable[Sequence[SiteView]]] = _no_sites
    holds: HoldKeeper | None = None
    pauser: TenantPauser | None = None


def deps_of(request: Request) -> AdminDeps:
    deps: AdminDeps = request.app.state.deps
    return deps


def auth_of(request: Request) -> TokenAuth:
    auth: TokenAuth = request.app.state.auth
    return auth


def principal_of(request: Request) -> Principal:
    principal: Principal = request.state.principal
    return principal
