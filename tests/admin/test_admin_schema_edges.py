"""What schemathesis found (issue 14 item 8), one case each: a request the document allows
is answered 2xx (or a documented 404), one it refuses 4xx, and nothing is a 500."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from gateway.admin.request_models import NO_NUL, NOT_BLANK
from tests.admin.support import Env, auth

BIG = 2**31  # one past PostgreSQL's INTEGER


def _cursor(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        # JSON Schema's integer is any number without a fraction: 5.0 is 5.
        ({"hourly_quota": 5.0}, 200),
        ({"hourly_quota": 5.5}, 422),
        ({"hourly_quota": "5"}, 422),
        # Past a 32-bit column: refused by the schema (was a 500 on PostgreSQL).
        ({"failure_threshold": BIG}, 422),
        ({"daily_quota": 2**63}, 422),
        # Past timedelta (was a 500 on both stores).
        ({"failure_window_seconds": 46884848068162535424}, 422),
        # urlsplit refuses it (was a 500).
        ({"webhook_url": "http://["}, 422),
        ({"webhook_url": " https://hooks.example.com/x "}, 200),
        ({"webhook_url": ""}, 200),
        ({"allowed_sender_domains": ["Mail.Example.com."]}, 200),
        ({"allowed_sender_domains": ["not a domain"]}, 422),
    ],
)
async def test_tenant_settings(env: Env, body: dict[str, object], status: int) -> None:
    r = await env.client.patch("/api/v1/tenants/default", json=body, headers=auth())
    assert r.status_code == status, r.text


async def test_tenant_patch_and_credentials_take_an_empty_body(env: Env) -> None:
    assert (await env.client.patch("/api/v1/tenants/default", headers=auth())).status_code == 200
    r = await env.client.post("/api/v1/tenants/default/credentials", headers=auth())
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("since=2024-02-28T10:00Z", 200),
        ("since=1700000000.5", 200),
        ("since=", 200),  # empty is absent (allowEmptyValue)
        ("since=2024-02-30", 422),
        ("since=yesterday", 422),
        ("status=null", 422),  # not read as "no filter"
        ("status=sent&status=bounced", 422),  # one value per parameter
        (f"cursor={_cursor([1.5, 'x'])}", 200),
        ("cursor=*", 422),  # not base64url: outside the pattern
        ("cursor=AAAA", 404),  # well-formed, names no page
        (f"cursor={_cursor([float('inf'), 'x'])}", 404),
    ],
)
async def test_message_list_parameters(env: Env, query: str, status: int) -> None:
    r = await env.client.get(f"/api/v1/messages?{query}", headers=auth())
    assert r.status_code == status, r.text


@pytest.mark.parametrize(
    ("cursor", "status"), [(_cursor(2**70), 404), (_cursor(True), 404), (_cursor(3), 200)]
)
async def test_audit_cursor_out_of_range_finds_nothing(env: Env, cursor: str, status: int) -> None:
    r = await env.client.get(f"/api/v1/audit?cursor={cursor}", headers=auth())
    assert r.status_code == status, r.text


async def test_the_document_says_what_is_refused(env: Env) -> None:
    doc = (await env.client.get("/api/openapi.json")).json()
    messages = doc["paths"]["/api/v1/messages"]["get"]
    assert {"404", "422"} <= set(messages["responses"])
    params = {p["name"]: p for p in messages["parameters"]}
    assert params["since"]["schema"]["pattern"]
    assert params["cursor"]["allowEmptyValue"] is True
    assert "404" in doc["paths"]["/api/v1/addresses/{address}/data"]["delete"]["responses"]
    assert not doc["paths"]["/api/v1/tenants/{name}"]["patch"]["requestBody"]["required"]
    assert not doc["paths"]["/logout"]["post"]["requestBody"]["required"]
    schemas = doc["components"]["schemas"]
    assert schemas["SendTest"]["properties"]["to"]["pattern"] == NOT_BLANK
    assert "csrf" not in schemas["UnblockForm"].get("required", [])


@pytest.mark.parametrize(
    ("method", "url", "kwargs"),
    [
        ("GET", "/api/v1/messages?recipient=a%00b", {}),
        ("GET", "/api/v1/recipients/a%00b@example.com", {}),
        ("POST", "/api/v1/addresses/check", {"json": {"address": "a\x00b@example.com"}}),
        ("PATCH", "/api/v1/tenants/default", {"json": {"webhook_url": "https://h.example/\x00"}}),
        ("POST", "/api/v1/suppressions", {"json": {"address": "a@example.com", "note": "\x00"}}),
        ("GET", "/support?address=a%00b", {}),
        ("POST", "/support/unblock", {"data": {"address": "a\x00b", "reason": "T-1"}}),
    ],
)
async def test_a_nul_anywhere_is_422_on_both_stores(
    env: Env, method: str, url: str, kwargs: dict[str, Any]
) -> None:
    """PostgreSQL's text cannot hold a NUL: a filter holding one was a 500 there."""
    r = await env.client.request(method, url, headers=auth(), **kwargs)
    assert r.status_code == 422, r.text
    assert "NUL" in r.json()["error"]["message"]


async def test_the_document_refuses_a_nul_in_every_string(env: Env) -> None:
    doc = (await env.client.get("/api/openapi.json")).json()
    [address] = doc["paths"]["/api/v1/recipients/{address}"]["get"]["parameters"][:1]
    assert address["schema"]["pattern"] == NO_NUL
    check = doc["components"]["schemas"]["AddressCheck"]["properties"]["address"]
    assert check["pattern"] == NO_NUL
