"""Methods a route does not take, and schema-valid requests (issue 14 item 7): ``OPTIONS``
on any path is 405 with an ``Allow`` header naming every method of the path, and the
address check answers any string with a verdict."""

from __future__ import annotations

import pytest

from gateway.admin.app import ROUTES
from gateway.core.model import Reason
from tests.admin.support import Env, auth

PATHS: dict[str, set[str]] = {}
for _path, _methods, _, _ in ROUTES:
    PATHS.setdefault(_path, set()).update(_methods)


def _concrete(path: str) -> str:
    return (
        path.replace("{address}", "a@example.com")
        .replace("{queue_id}", "q1")
        .replace("{name}", "default")
    )


@pytest.mark.parametrize("path", sorted(PATHS))
async def test_options_is_405_with_every_method_of_the_path(env: Env, path: str) -> None:
    r = await env.client.options(_concrete(path), headers=auth())
    assert r.status_code == 405
    allowed = {m.strip() for m in r.headers["allow"].split(",")}
    expected = PATHS[path] | ({"HEAD"} if "GET" in PATHS[path] else set())
    assert allowed == expected
    assert r.json()["error"]["code"] == "method_not_allowed"


async def test_a_path_with_two_handlers_sends_each_method_to_its_own(env: Env) -> None:
    got = await env.client.get("/api/v1/messages/nope", headers=auth())
    deleted = await env.client.delete("/api/v1/messages/nope", headers=auth())
    assert got.status_code == deleted.status_code == 404
    head = await env.client.head("/api/v1/tenants", headers=auth())
    assert head.status_code == 200
    listed = await env.client.post("/api/v1/tenants", json={}, headers=auth())
    assert listed.status_code == 422  # the create handler (name is required), not the list


@pytest.mark.parametrize("address", ["", "   ", "no-at-sign", "@", "a@"])
async def test_check_answers_an_address_that_does_not_parse_with_a_verdict(
    env: Env, address: str
) -> None:
    r = await env.client.post("/api/v1/addresses/check", json={"address": address}, headers=auth())
    assert r.status_code == 200
    verdict = r.json()
    assert verdict["accepted"] is False
    assert verdict["reason"] == Reason.INVALID.value
