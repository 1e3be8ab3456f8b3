"""API errors: one exception type, one JSON shape, and the handlers that translate.

Owns: ``ApiError`` (an HTTP status, a machine code and a sentence), the error body
``{"error": {"code": ..., "message": ...}}`` (``response_models.Error``), the translation
of Starlette's own 404/405 and of anything unexpected into that body, and the request-body
cap. Does not own: which routes exist (``admin.app``), who may call them (``admin.auth``)
or reading a body (``admin.params``).

Tree::

    ApiError                      status, code, message
    ├── BodyTooLarge              413 body_too_large (raised while reading the body)
    └── (instances)               400 bad_json, 401 unauthorized, 403 forbidden,
                                  404 not_found, 409 conflict, 422 invalid_request
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.admin.response_models import Error, ErrorDetail

log = logging.getLogger("gateway.admin")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
}


class ApiError(Exception):
    """An error the API answers with.

    Args:
        status: the HTTP status.
        code: a stable machine code (``snake_case``).
        message: one human sentence.
        headers: extra response headers (``WWW-Authenticate``, ``Allow``).
    """

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


class BodyTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, "body_too_large", f"The request body exceeds {limit} bytes")


def invalid(message: str) -> ApiError:
    """A 422 for a request that parsed but does not make sense."""
    return ApiError(422, "invalid_request", message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    """The ``Error`` body (``admin.response_models``) with ``status``."""
    body = msgspec.json.encode(Error(error=ErrorDetail(code=code, message=message)))
    return Response(body, status, headers, media_type="application/json")


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 (no route) and 405 (route without that method), as JSON."""
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = {
        404: f"No route for {request.url.path}",
        405: f"Method {request.method} is not allowed on {request.url.path}",
    }.get(exc.status_code, str(exc.detail))
    return error_response(exc.status_code, code, message, dict(exc.headers or {}))


async def unexpected_error_handler(request: Request, exc: Exception) -> Response:
    log.exception("admin.unexpected_error", extra={"path": request.url.path})
    return error_response(500, "internal_error", "An unexpected error occurred")


def exception_handlers() -> dict[Any, Any]:
    return {
        ApiError: api_error_handler,
        HTTPException: http_error_handler,
        Exception: unexpected_error_handler,
    }


#: A request's text may not hold a NUL: PostgreSQL's text cannot store one (the query failed
#: with a 500), and no address, name or reason has one. The document says so on every string
#: the API takes (``admin.openapi``).
NUL_REFUSED = "NUL characters are not allowed"


def nul_refused(where: str) -> ApiError:
    """A 422 for a NUL in ``where`` (a parameter's or a field's name, or "path")."""
    return invalid(f"{where}: {NUL_REFUSED}")


class NoNul:
    """ASGI middleware: a NUL in the path or the query string is refused with 422 before a
    route runs (JSON bodies: ``params.body_of``; forms: the pages' reader)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = bytes(scope.get("query_string", b"")).lower()
            if "\x00" in scope.get("path", "") or b"%00" in query or b"\x00" in query:
                response = error_response(422, "invalid_request", nul_refused("request").message)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyCap:
    """ASGI middleware: refuse request bodies over ``limit`` bytes with 413.

    A declared ``Content-Length`` over the limit is refused before the app runs; a chunked
    body is counted as it is read and the read raises :class:`BodyTooLarge`, which the
    exception handlers turn into the same 413.
    """

    def __init__(self, app: ASGIApp, limit: int, larger: dict[str, int] | None = None) -> None:
        self.app = app
        self.default = limit
        #: path -> the limit of a route that streams its body (the CSV import).
        self.larger = dict(larger or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope.get("path", ""), self.default)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > limit:
                    if declared < 0:
                        response = error_response(400, "bad_request", "Bad Content-Length")
                    else:
                        response = error_response(
                            413, "body_too_large", f"The request body exceeds {limit} bytes"
                        )
                    await response(scope, receive, send)
                    return
        seen = 0

        async def capped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, capped, send)
