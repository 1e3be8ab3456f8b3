"""Parsing what a request carries: query parameters, cursors, addresses.

Owns: turning request text into typed values, with a 422 naming the parameter when that
fails, and the opaque pagination cursors. Does not own: the routes or the queries.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from starlette.requests import Request

from gateway.admin.errors import ApiError, invalid
from gateway.services.checks import canonical

E = TypeVar("E", bound=StrEnum)

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def limit_of(request: Request) -> int:
    raw = request.query_params.get("limit")
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise invalid(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


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


def enum_of(cls: type[E], name: str, raw: str | None) -> E | None:
    if raw is None or raw == "":
        return None
    try:
        return cls(raw)
    except ValueError:
        choices = ", ".join(m.value for m in cls)
        raise invalid(f"{name} must be one of: {choices}") from None


def encode_cursor(value: Any) -> str:
    """An opaque cursor: clients pass it back unchanged (base64url of JSON)."""
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(raw: str | None) -> Any:
    if raw is None or raw == "":
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise invalid("cursor is not one this API returned") from None


def address_key(raw: str) -> str:
    """The key the store files an address under: its canonical form when it parses,
    else the trimmed text as typed (intake refusals of invalid syntax are filed so)."""
    text = raw.strip()
    if not text:
        raise invalid("address must not be empty")
    if len(text) > 320:
        raise invalid("address is longer than 320 characters")
    return canonical(text) or text


def required_address(body: dict[str, Any], name: str = "address") -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise invalid(f"{name} is required (a string)")
    norm = canonical(value.strip())
    if norm is None:
        raise ApiError(422, "invalid_address", f"{value!r} is not a valid e-mail address")
    return norm


def optional_str(body: dict[str, Any], name: str, max_length: int = 500) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_length:
        raise invalid(f"{name} must be a string of at most {max_length} characters")
    return value
