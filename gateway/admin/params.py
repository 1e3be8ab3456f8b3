"""Parsing what a request carries: query parameters, JSON bodies, cursors, addresses.

Owns: filling the request models (``admin.request_models``) from a request, with a 422
``invalid_request`` naming the parameter when that fails (the model's sentence for the field,
else msgspec's words) and a 400 ``bad_json`` for a body that is not a JSON object; the
opaque pagination cursors; what a well-formed value means (a time, an address key). Does not
own: the routes or the queries.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request

from gateway.admin.errors import ApiError, invalid, nul_refused
from gateway.admin.request_models import Body, Query
from gateway.services.checks import canonical

Q = TypeVar("Q", bound=Query)
B = TypeVar("B", bound=Body)

# msgspec's error text: "<what> - at `$.field[0]`", or "Object missing required field `x`".
_AT = re.compile(r" - at `\$\.?([^`]*)`$")
_NAMED = re.compile(r"field `([^`]+)`")


def _sentence(model: type[Query] | type[Body], exc: msgspec.ValidationError) -> str:
    """The 422 sentence for ``exc``: the model's own for the field, else msgspec's words."""
    text = str(exc)
    found = _AT.search(text)
    detail = text[: found.start()] if found else text
    field = re.split(r"[.\[]", found.group(1), maxsplit=1)[0] if found else ""
    if not field and (named := _NAMED.search(detail)):
        field = named.group(1)
    if field in model.sentences:
        return model.sentences[field]
    if detail.startswith("Object contains unknown field"):
        return f"unknown field: {field}"
    if detail.startswith("Object missing required field"):
        return f"{field} is required"
    return f"{field}: {detail}" if field else detail


def query_of(request: Request, model: type[Q]) -> Q:
    """The request's query parameters as ``model`` (an empty parameter is absent).

    Args:
        request: the request.
        model: the route's query model (``admin.request_models``).

    Raises:
        ApiError: 422 naming the first bad parameter.
    """
    values: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if not value.strip():
            continue
        if key in values:  # the document names one value per parameter
            raise invalid(model.sentences.get(key, f"{key} is given more than once"))
        values[key] = value.strip()
    try:
        found = msgspec.convert(values, model, strict=False)
    except msgspec.ValidationError as exc:
        raise invalid(_sentence(model, exc)) from None
    # The lax conversion reads "null" as None: for a query parameter it is a value.
    for key, value in values.items():
        if getattr(found, key, "") is None:
            raise invalid(model.sentences.get(key, f"{key}: {value!r} is not a value"))
    return found


def _number(text: str) -> int | float:
    """A JSON number: JSON Schema's ``integer`` is any number without a fraction, so
    ``245.0`` is one; msgspec's typed decoder takes only ``245``, so such a float is read as
    the int it equals."""
    value = float(text)
    if value.is_integer() and abs(value) < 2**63:
        return int(value)
    return value


_JSON = msgspec.json.Decoder(float_hook=_number)


async def body_of(request: Request, model: type[B]) -> B:
    """The request's JSON body as ``model``; an empty body is ``{}``.

    Args:
        request: the request.
        model: the route's body model (``admin.request_models``).

    Raises:
        ApiError: 400 ``bad_json`` when the body is not a JSON object; 422 naming the first
            bad field; 413 (through the body cap) when it is too large.
    """
    raw = await request.body()
    try:
        decoded = _JSON.decode(raw if raw.strip() else b"{}")
        if isinstance(decoded, dict):  # the model's fields; another key is ignored anyway
            fields = {k: v for k, v in decoded.items() if k in model.__struct_encode_fields__}
            if (where := _nul_in(fields, "")) is not None:
                raise nul_refused(where)
        return msgspec.convert(decoded, model)
    except msgspec.ValidationError as exc:
        if str(exc).startswith("Expected `object`") and not _AT.search(str(exc)):
            raise ApiError(400, "bad_json", "The request body must be a JSON object") from None
        raise invalid(_sentence(model, exc)) from None
    except msgspec.DecodeError:
        raise ApiError(400, "bad_json", "The request body is not valid JSON") from None


def _nul_in(value: Any, where: str) -> str | None:
    """The path of the first string in ``value`` (keys too) that holds a NUL, else None."""
    if isinstance(value, str):
        return where if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{where}.{key}" if where else str(key)
            if "\x00" in key:
                return here
            if (found := _nul_in(item, here)) is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            if (found := _nul_in(item, f"{where}[{index}]")) is not None:
                return found
    return None


def parse_time(name: str, raw: str | None) -> datetime | None:
    """An ISO 8601 time (a naive one is UTC) or a UNIX timestamp; ``None`` when absent."""
    if raw is None or raw == "":
        return None
    try:
        if raw.replace(".", "", 1).isdigit():
            return datetime.fromtimestamp(float(raw), UTC)
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise invalid(f"{name} must be an ISO 8601 time or a UNIX timestamp") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def encode_cursor(value: Any) -> str:
    """An opaque cursor: clients pass it back unchanged (base64url of JSON)."""
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def bad_cursor() -> ApiError:
    """A 404 for a cursor this API did not return: the page it names does not exist.

    Not a 422: a cursor is opaque, so no schema can tell a well-formed one from another
    string; the document allows any, and a string that names no page finds nothing.
    """
    return ApiError(404, "unknown_cursor", "cursor is not one this API returned")


def cursor_int(value: Any) -> bool:
    """Whether a decoded cursor's ``value`` is an integer the store can compare (64 bits)."""
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


def cursor_time(value: Any) -> bool:
    """Whether a decoded cursor's ``value`` is a finite UNIX time (no NaN, no infinity)."""
    return cursor_int(value) or (isinstance(value, float) and math.isfinite(value))


def decode_cursor(raw: str | None) -> Any:
    """What ``encode_cursor`` wrote; ``None`` when absent.

    Raises:
        ApiError: 404 ``unknown_cursor`` (``bad_cursor``).
    """
    if raw is None or raw == "":
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad_cursor() from None


def address_key(raw: str) -> str:
    """The key the store files an address under: its canonical form when it parses,
    else the trimmed text as typed (intake refusals of invalid syntax are filed so)."""
    text = raw.strip()
    if not text:
        raise invalid("address must not be empty")
    if len(text) > 320:
        raise invalid("address is longer than 320 characters")
    return canonical(text) or text


def valid_address(value: str, name: str = "address") -> str:
    """The canonical form of a required address from a body.

    Raises:
        ApiError: 422 ``invalid_request`` when it is blank, ``invalid_address`` when it does
            not parse.
    """
    if not value.strip():
        raise invalid(f"{name} is required (a string)")
    norm = canonical(value.strip())
    if norm is None:
        raise ApiError(422, "invalid_address", f"{value!r} is not a valid e-mail address")
    return norm


def message_id_key(raw: str | None) -> str | None:
    """The Message-ID to search for, as the intake stores it (the header's value, trimmed):
    ``abc@app.example`` is looked up as ``<abc@app.example>``; ``None`` for none given."""
    text = (raw or "").strip()
    if not text:
        return None
    return text if text.startswith("<") else f"<{text}>"
