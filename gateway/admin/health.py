"""Probes and the metrics route: ``/healthz``, ``/readyz``, ``/metrics``.

Owns: answering whether the process is up (``/healthz``: always, while it can answer)
and whether it can do its work (``/readyz``: the store answers a ping within a bound,
and every component the composition root reports is ok; a 503 names what fails). Does
not own: the metrics themselves (``deps.metrics`` renders them).
"""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import Response

from gateway.admin import response_models as rm
from gateway.admin.deps import deps_of
from gateway.admin.errors import not_found
from gateway.admin.operations import described, json_route, respond
from gateway.core.errors import StoreError

log = logging.getLogger("gateway.admin")

PING_TIMEOUT = 2.0  # seconds: a store slower than this is not ready to take mail


@json_route("The process is up", rm.Health)
async def healthz(request: Request) -> rm.Health:
    return rm.Health(status="ok")


@described(
    "Store reachable, intake listening, relay running",
    response=rm.Readiness,
    media="application/json",
    also={503: rm.Readiness},
)
async def readyz(request: Request) -> Response:
    deps = deps_of(request)
    checks: dict[str, bool] = {}
    try:
        async with asyncio.timeout(PING_TIMEOUT):
            await deps.store.ping()
        checks["store"] = True
    except (StoreError, TimeoutError):
        checks["store"] = False
    try:
        reported = deps.readiness()
    except Exception:  # a broken probe must not break the probe endpoint
        log.exception("admin.readiness_failed")
        reported = {"readiness": False}
    for name, ok in reported.items():
        checks[name] = checks.get(name, True) and bool(ok)
    failing = sorted(name for name, ok in checks.items() if not ok)
    return respond(
        rm.Readiness(ready=not failing, checks=checks, failing=failing),
        503 if failing else 200,
    )


@described("Prometheus metrics", errors=(404,), media="text/plain")
async def metrics(request: Request) -> Response:
    deps = deps_of(request)
    if deps.metrics is None:
        raise not_found("Metrics are not enabled in this process")
    body, content_type = await deps.metrics()
    return Response(body, headers={"Content-Type": content_type})
