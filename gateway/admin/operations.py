"""What each route takes and answers, declared on its handler.

Owns: the ``Operation`` of a handler (summary, request models, response model and status,
the error statuses it can answer with), the two decorators that declare one (``json_route``
for a JSON handler, ``described`` for a page, a probe or a form), and encoding a response
model (``respond``). ``admin.openapi`` builds the OpenAPI document from the route table and
these declarations, so a route without one has no description and fails the suite. Does not
own: the route table (``admin.app``) or the models (``admin.request_models``,
``admin.response_models``).

A ``json_route`` handler returns its response model; the decorator encodes it with the
declared status, so every success body of the JSON API is a model of the declared type.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from gateway.admin.request_models import Body, Query
from gateway.admin.response_models import Model

M = TypeVar("M", bound=Model)
Endpoint = Callable[[Request], Awaitable[Response]]

JSON = "application/json"
HTML = "text/html"
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True, slots=True)
class Operation:
    """One (method, path)'s contract, for the OpenAPI document.

    Args:
        summary: one line.
        response: the success body's model; ``None`` for a body that is not JSON.
        status: the success status.
        query: the query parameters' model.
        body: the request body's model.
        body_media: the request body's media type.
        body_required: whether a request body must be sent.
        errors: statuses answered with the ``Error`` body (the guard's 401/403 and a body's
            400/413/422 are added by ``admin.openapi``).
        media: the success body's media type; ``""`` for none (a redirect).
        also: other statuses answered with a model of their own (``/readyz``'s 503).
        pages: other statuses answered with an HTML page, and what that page says.
        see_other: when the route also answers 303 (a page sends a caller who is not
            logged in to ``/login``), what that means.
    """

    summary: str
    response: type[Model] | None = None
    status: int = 200
    query: type[Query] | None = None
    body: type[Body] | None = None
    body_media: str = JSON
    body_required: bool = True
    errors: tuple[int, ...] = ()
    media: str = JSON
    also: dict[int, type[Model]] = field(default_factory=dict)
    pages: dict[int, str] = field(default_factory=dict)
    see_other: str = ""


#: endpoint -> its operation (the functions the route table names).
OPERATIONS: dict[Callable[..., object], Operation] = {}


def operation_of(endpoint: Callable[..., object]) -> Operation:
    """The operation declared on ``endpoint``.

    Raises:
        LookupError: ``endpoint`` declares none.
    """
    try:
        return OPERATIONS[endpoint]
    except KeyError:
        name = getattr(endpoint, "__qualname__", repr(endpoint))
        raise LookupError(f"{name} declares no operation (admin.operations)") from None


def respond(model: Model, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``model`` encoded as the JSON body of a response."""
    return Response(msgspec.json.encode(model), status, headers, media_type=JSON)


def json_route(
    summary: str,
    response: type[M],
    *,
    status: int = 200,
    query: type[Query] | None = None,
    body: type[Body] | None = None,
    body_required: bool = True,
    errors: tuple[int, ...] = (),
) -> Callable[[Callable[[Request], Awaitable[M]]], Endpoint]:
    """Declare a JSON handler's operation; the handler returns a ``response`` model.

    Args:
        summary: one line for the document.
        response: the success body's model; the handler must return one.
        status: the success status the body is sent with.
        query: the query model the handler reads (``params.query_of``).
        body: the body model the handler reads (``params.body_of``).
        body_required: whether the body must be sent (``False``: an empty body is ``{}``).
        errors: the statuses the handler answers with an ``Error`` of its own.
    """
    op = Operation(
        summary,
        response,
        status,
        query,
        body,
        body_required=body_required,
        errors=errors,
    )

    def wrap(handler: Callable[[Request], Awaitable[M]]) -> Endpoint:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            result = await handler(request)
            # A handler that answered with another model is a bug the document would hide.
            assert isinstance(result, response), (handler.__qualname__, type(result))
            return respond(result, status)

        OPERATIONS[endpoint] = op
        return endpoint

    return wrap


def described(
    summary: str,
    *,
    response: type[Model] | None = None,
    status: int = 200,
    query: type[Query] | None = None,
    body: type[Body] | None = None,
    body_media: str = FORM,
    body_required: bool | None = None,
    errors: tuple[int, ...] = (),
    media: str = HTML,
    also: dict[int, type[Model]] | None = None,
    pages: dict[int, str] | None = None,
    see_other: str = "",
) -> Callable[[Endpoint], Endpoint]:
    """Declare the operation of a handler that makes its own response (a page, a form, a
    probe); the handler is returned unchanged. ``body_required`` defaults to whether there
    is a ``body``."""
    op = Operation(
        summary,
        response,
        status,
        query,
        body,
        body_media,
        body is not None if body_required is None else body_required,
        errors,
        media,
        dict(also or {}),
        dict(pages or {}),
        see_other,
    )

    def wrap(handler: Endpoint) -> Endpoint:
        OPERATIONS[handler] = op
        return handler

    return wrap
