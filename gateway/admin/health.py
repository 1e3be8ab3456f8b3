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
from starlette.responses import JSONResponse, Response

from gateway.admin.deps import deps_of
from gateway.admin.errors import not_found
from gateway.core.errors import StoreError

log = logging.getLogger("gateway.admin")

PING_TIMEOUT = 2.0  # seconds: a store slower than this is not ready to take mail


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
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
    return JSONResponse(
        {"ready": not failing, "checks": checks, "failing": failing},
        status_code=503 if failing else 200,
    )


async def metrics(request: Request) -> Response:
    deps = deps_of(request)
    if deps.metrics is None:
        raise not_found("Metrics are not enabled in this process")
    body, content_type = deps.metrics()
    return Response(body, headers={"Content-Type": content_type})
