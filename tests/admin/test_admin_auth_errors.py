"""Tokens (full, read-only, sha256:), constant-time checks, and the JSON error shape."""

from __future__ import annotations

import hashlib

import pytest

from gateway.admin.auth import Principal, TokenAuth
from gateway.core.errors import ConfigError
from tests.admin.support import HASHED_TOKEN, RO_TOKEN, TOKEN, Env, auth


async def test_no_token_is_401_with_error_body(env: Env) -> None:
    r = await env.client.get("/api/v1/tenants")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"
    assert r.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer wrong-token", "Basic Zm9vOmJhcg==", "Bearer ", TOKEN])
async def test_bad_or_malformed_token_is_401(env: Env, header: str) -> None:
    r = await env.client.get("/api/v1/tenants", headers={"Authorization": header})
    assert r.status_code == 401


async def test_full_token_reads_and_writes(env: Env) -> None:
    assert (await env.client.get("/api/v1/tenants", headers=auth())).status_code == 200
    r = await env.client.post(
        "/api/v1/suppressions", json={"address": "a@example.com"}, headers=auth()
    )
    assert r.status_code == 201


async def test_sha256_configured_token_is_accepted(env: Env) -> None:
    r = await env.client.get("/api/v1/tenants", headers=auth(HASHED_TOKEN))
    assert r.status_code == 200


async def test_read_only_token_reads_but_cannot_write(env: Env) -> None:
    assert (await env.client.get("/api/v1/tenants", headers=auth(RO_TOKEN))).status_code == 200
    r = await env.client.post(
        "/api/v1/suppressions", json={"address": "a@example.com"}, headers=auth(RO_TOKEN)
    )
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "forbidden"


def test_token_auth_compares_every_digest_and_names_actor() -> None:
    tokens = TokenAuth(("one", "sha256:" + hashlib.sha256(b"two").hexdigest()), ("three",))
    assert tokens.authenticate("one") == Principal(hashlib.sha256(b"one").hexdigest()[:8], False)
    assert tokens.authenticate("two") == Principal(hashlib.sha256(b"two").hexdigest()[:8], False)
    three = tokens.authenticate("three")
    assert three is not None
    assert three.read_only
    assert tokens.authenticate("four") is None
    assert tokens.authenticate("") is None
    # The sha256: form of a token is not itself a token.
    assert tokens.authenticate("sha256:" + hashlib.sha256(b"two").hexdigest()) is None


@pytest.mark.parametrize("entry", ["sha256:xyz", "sha256:abcd", ""])
def test_malformed_token_entries_stop_startup_naming_the_key(entry: str) -> None:
    with pytest.raises(ConfigError) as info:
        TokenAuth((entry,), ())
    assert "admin.tokens" in str(info.value)


def test_session_cookie_is_signed_and_expires() -> None:
    tokens = TokenAuth(("one",), ())
    principal = Principal("abcd1234", False)
    value = tokens.make_session(principal, now=1000.0)
    assert tokens.read_session(value, now=1001.0) == principal
    assert tokens.read_session(value, now=1000.0 + 9 * 3600) is None
    assert tokens.read_session(value.replace(".0.", ".1."), now=1001.0) is None
    assert tokens.check_csrf(value, tokens.csrf_token(value))
    assert not tokens.check_csrf(value, "0" * 32)


async def test_unknown_route_is_json_404(env: Env) -> None:
    r = await env.client.get("/api/v1/nothing", headers=auth())
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


async def test_wrong_method_is_json_405(env: Env) -> None:
    r = await env.client.put("/api/v1/tenants", headers=auth())
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed"


async def test_bad_json_is_400(env: Env) -> None:
    r = await env.client.post(
        "/api/v1/suppressions",
        content=b"{not json",
        headers=auth() | {"Content-Type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "bad_json"
    r = await env.client.post("/api/v1/suppressions", json=[1, 2], headers=auth())
    assert r.status_code == 400


async def test_body_over_the_cap_is_413(env: Env) -> None:
    big = {"address": "a@example.com", "note": "x" * 5000}
    r = await env.client.post("/api/v1/suppressions", json=big, headers=auth())
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "body_too_large"


async def test_chunked_body_over_the_cap_is_413(env: Env) -> None:
    async def chunks():  # no Content-Length: the cap counts while reading
        for _ in range(10):
            yield b"x" * 1024

    r = await env.client.post("/api/v1/send-test", content=chunks(), headers=auth())
    assert r.status_code == 413


async def test_validation_error_is_422(env: Env) -> None:
    r = await env.client.post(
        "/api/v1/suppressions", json={"address": "not an address"}, headers=auth()
    )
    assert r.status_code == 422
    r = await env.client.get("/api/v1/messages?limit=0", headers=auth())
    assert r.status_code == 422
    assert "limit" in r.json()["error"]["message"]
