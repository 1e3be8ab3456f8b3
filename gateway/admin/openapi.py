"""The OpenAPI 3.1 description of the admin listener, generated.

Owns: building the document from a route table (``admin.app.ROUTES``: path, methods,
handler, kind) and the operation each handler declares (``admin.operations``): its
parameters from the path and the query model, its request body from the body model, its
responses from the response model and the error statuses. The JSON Schemas are msgspec's
(``msgspec.json.schema_components``, JSON Schema 2020-12, as OpenAPI 3.1 takes it). Nothing
here is written by hand but the document's title and the words for the error statuses.
Does not own: the routes, the handlers or the models.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import msgspec

from gateway.admin.operations import JSON, Endpoint, Operation, operation_of
from gateway.admin.request_models import NO_NUL, Query
from gateway.admin.response_models import WEBHOOK_TYPES, Error, WebhookPayload

__all__ = ["WEBHOOK_TYPES", "openapi_document"]

#: (path, methods, endpoint, kind): kind "api" (bearer token), "page" or "open".
RouteEntry = tuple[str, tuple[str, ...], Endpoint, str]

REF = "#/components/schemas/{name}"
_PATH_PARAM = re.compile(r"{(\w+)}")
_STATUS_WORDS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    303: "See other",
    400: "Bad JSON",
    401: "No or unknown token",
    403: "Read-only token on a write route, a tenant token on an admin-only route"
    " (admin_only), or a wrong CSRF token",
    404: "Not found",
    409: "Conflict",
    413: "Body too large",
    422: "Validation failed",
    503: "Not ready",
}
_TEXT = {"text/html": {"schema": {"type": "string"}}}


def _ref(model: type[Any]) -> dict[str, str]:
    return {"$ref": REF.format(name=model.__name__)}


def _parameters(path: str, query: type[Query] | None, schemas: dict[str, Any]) -> list[Any]:
    out: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": _no_nul({"type": "string"})}
        for name in _PATH_PARAM.findall(path)
    ]
    if query is not None:
        shape = schemas[query.__name__]
        required = set(shape.get("required", ()))
        for name, schema in shape["properties"].items():
            # An empty parameter counts as absent (params.query_of; the pages read theirs so).
            param: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
            if name not in required:
                param["allowEmptyValue"] = True
            value = _no_nul(_present(schema))
            if "description" in value:
                param["description"] = value.pop("description")
            out.append(param | {"schema": value})
    return out


def _no_nul(schema: Any) -> Any:
    """``schema`` with ``NO_NUL`` on every string that has no pattern, enum or format of its
    own (the request models' patterns exclude a NUL themselves): the API refuses a NUL in
    any text it takes (``errors.NoNul``, ``params.body_of``)."""
    if isinstance(schema, list):
        return [_no_nul(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties":
            out[key] = {name: _no_nul(item) for name, item in value.items()}
        elif key in ("items", "anyOf", "oneOf", "allOf", "additionalProperties"):
            out[key] = _no_nul(value)
        else:
            out[key] = value
    if out.get("type") == "string" and not {"pattern", "enum", "const", "format"} & set(out):
        out["pattern"] = NO_NUL
    return out


def _present(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema without the ``null`` of ``X | None = None``: a parameter
    is absent or a string, never null."""
    alternatives = [a for a in schema.get("anyOf", ()) if a != {"type": "null"}]
    rest = {k: v for k, v in schema.items() if k != "anyOf" and not (k == "default" and v is None)}
    if "anyOf" in schema and len(alternatives) == 1:
        only: dict[str, Any] = alternatives[0]
        return rest | only
    return dict(schema)


def _errors(op: Operation, kind: str, path: str) -> set[int]:
    codes = set(op.errors)
    if _PATH_PARAM.search(path):
        codes.add(404)  # an empty path parameter matches no route
        codes.add(422)  # a NUL in one (errors.NoNul)
    if kind == "api":
        codes |= {401, 403}
    if op.body is not None and op.body_media == JSON:
        codes |= {400, 413, 422}
    if op.query is not None and kind == "api":
        codes.add(422)
    if op.query is not None or op.body is not None:
        codes.add(422)  # a NUL in a parameter or a field, on a page too (errors.NoNul)
    if op.query is not None and "cursor" in op.query.__struct_fields__:
        codes.add(404)  # a cursor this API did not return names no page (params.bad_cursor)
    return codes


def _operation(
    path: str, method: str, endpoint: Endpoint, kind: str, schemas: dict[str, Any]
) -> Any:
    op = operation_of(endpoint)
    ok: dict[str, Any] = {
        "description": op.summary if op.status == 303 else _STATUS_WORDS.get(op.status, "OK")
    }
    if op.response is not None:
        ok["content"] = {op.media: {"schema": _ref(op.response)}}
    elif op.media == "text/html":
        ok["content"] = _TEXT
    elif op.media:
        kind_of_body = "object" if op.media == JSON else "string"
        ok["content"] = {op.media: {"schema": {"type": kind_of_body}}}
    responses: dict[str, Any] = {str(op.status): ok}
    for status, model in op.also.items():
        responses[str(status)] = {
            "description": _STATUS_WORDS.get(status, "Other"),
            "content": {JSON: {"schema": _ref(model)}},
        }
    for status, words in op.pages.items():
        responses[str(status)] = {"description": words, "content": _TEXT}
    if op.see_other:
        responses["303"] = {"description": op.see_other}
    for status in sorted(_errors(op, kind, path)):
        responses.setdefault(
            str(status),
            {"description": _STATUS_WORDS[status], "content": {JSON: {"schema": _ref(Error)}}},
        )
    out: dict[str, Any] = {
        "operationId": endpoint.__name__,
        "summary": op.summary,
        "responses": dict(sorted(responses.items())),
    }
    if doc := (endpoint.__doc__ or "").strip():
        out["description"] = doc
    parameters = _parameters(path, op.query, schemas)
    if parameters:
        out["parameters"] = parameters
    if op.body is not None:
        media = op.body_media
        schema = _ref(op.body)
        if media == "text/csv":  # a file, described by the model's docstring
            schema = {"type": "string", "description": " ".join((op.body.__doc__ or "").split())}
        out["requestBody"] = {"required": op.body_required, "content": {media: {"schema": schema}}}
    if kind != "api":
        out["security"] = []
    return out


def _models(ops: Iterable[Operation]) -> list[type[Any]]:
    """Every type the document names, in a stable order, ``Error`` first."""
    seen: dict[type[Any], None] = {Error: None}
    for op in ops:
        body = op.body if op.body_media != "text/csv" else None  # a file: no schema
        for model in (op.response, op.query, body, *op.also.values()):
            if model is not None:
                seen[model] = None
    seen[WebhookPayload] = None  # what a tenant's webhook receives (no route returns it alone)
    return list(seen)


def openapi_document(routes: Iterable[RouteEntry]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes`` (served at ``/api/openapi.json``).

    Args:
        routes: the route table, ``(path, methods, handler, kind)``; every handler declares
            its operation (``admin.operations``).

    Raises:
        LookupError: a route's handler declares no operation.
    """
    table = [(path, method, ep, kind) for path, methods, ep, kind in routes for method in methods]
    _, components = msgspec.json.schema_components(
        _models(operation_of(ep) for _, _, ep, _ in table), ref_template=REF
    )
    paths: dict[str, dict[str, Any]] = {}
    for path, method, endpoint, kind in table:
        paths.setdefault(path, {})[method.lower()] = _operation(
            path, method, endpoint, kind, components
        )
    # Query models become parameters, not schemas of their own; a form is a schema.
    queries = {
        op.query.__name__ for _, _, ep, _ in table if (op := operation_of(ep)).query is not None
    }
    bodies = {
        op.body.__name__ for _, _, ep, _ in table if (op := operation_of(ep)).body is not None
    }
    schemas = {
        name: _no_nul(schema) if name in bodies else schema
        for name, schema in components.items()
        if name not in queries
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Mail gateway admin API",
            "version": "1",
            "description": (
                "Private admin listener. Bearer tokens from admin.tokens (full) and "
                "admin.read_only_tokens (GET only). Errors are "
                '{"error": {"code": ..., "message": ...}}. Generated from the route table '
                "and the request and response models (gateway/admin/openapi.py)."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
