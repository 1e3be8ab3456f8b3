"""Every route of the admin listener, called live, answers what the generated OpenAPI
document says: a documented status, the documented media type, and a JSON body that
validates against the documented schema (jsonschema, JSON Schema 2020-12).

Each route is called for a success and, where its document names an error, for at least
one error; a test at the end checks that nothing was left out. Object schemas are made
closed for the check (``additionalProperties: false``), so a key the models do not
declare fails too.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import jsonschema
import pytest

from gateway.admin.app import ROUTES, build_admin_app
from gateway.core.feedback import UnattributedReport, Why
from gateway.core.model import Category, Event, EventType, Status, Suppression, SuppressionReason
from gateway.core.records import OutboxItem
from gateway.core.shaping import SiteState, SiteView
from gateway.observe.events import RecipientChanged
from gateway.observe.webhooks import payload
from tests.admin.support import RO_TOKEN, TOKEN, Env, auth

FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    return not isinstance(value, str) or datetime.fromisoformat(value).tzinfo is not None


def _closed(schema: Any) -> Any:
    """``schema`` with every object that lists its properties closed to other keys."""
    if isinstance(schema, dict):
        out = {k: _closed(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_closed(v) for v in schema]
    return schema


@dataclass
class Checker:
    """Calls routes and checks each answer against the document; remembers what it saw."""

    doc: dict[str, Any]
    client: httpx.AsyncClient
    seen: dict[tuple[str, str], set[int]] = field(default_factory=dict)

    async def call(
        self, method: str, route: str, url: str | None = None, *, expect: int, **kwargs: Any
    ) -> httpx.Response:
        """``method`` on ``url`` (default: ``route``), filed under the route's template."""
        r = await self.client.request(method, url or route, **kwargs)
        assert r.status_code == expect, (method, url or route, r.status_code, r.text[:300])
        self.check(method, route, r)
        self.seen.setdefault((route, method), set()).add(r.status_code)
        return r

    def check(self, method: str, route: str, r: httpx.Response) -> None:
        responses = self.doc["paths"][route][method.lower()]["responses"]
        assert str(r.status_code) in responses, (method, route, r.status_code, "undocumented")
        documented = responses[str(r.status_code)].get("content", {})
        media = r.headers.get("content-type", "").split(";")[0]
        if not documented:
            assert not r.content, (method, route, r.status_code, "a body the document omits")
            return
        assert media in documented, (method, route, r.status_code, media, list(documented))
        if media != "application/json":
            return
        schema = documented[media]["schema"]
        components = _closed(copy.deepcopy(self.doc["components"]))
        jsonschema.validate(
            r.json(),
            {**schema, "components": components},
            cls=jsonschema.Draft202012Validator,
            format_checker=FORMATS,
        )


@pytest.fixture
async def checker(env: Env) -> Checker:
    r = await env.client.get("/api/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    for schema in doc["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)
    return Checker(doc, env.client)


async def _seed(env: Env) -> None:
    """A bounced, a deferred (pending) and a suppressed address, and a webhook delivery."""
    await env.seed("ana@example.com", category=Category.MAILBOX_FULL, code=552, enhanced="5.2.2")
    await env.seed("pending@example.com", status=Status.DEFERRED, queue_id="QPENDING01")
    await env.seed("bob@example.com", queue_id="QBOB000001")
    event = Event(
        None,
        "default",
        "bob@example.com",
        EventType.SUPPRESSED,
        env.clock.now(),
        reason=SuppressionReason.NONEXISTENT_ADDRESS.reason,
    )
    await env.store.suppress_with_event(
        Suppression(
            "default", "bob@example.com", SuppressionReason.NONEXISTENT_ADDRESS, env.clock.now()
        ),
        event,
    )
    bounced = Event(
        7,
        "default",
        "ana@example.com",
        EventType.BOUNCED,
        env.clock.now(),
        queue_id="Q1",
        category=Category.MAILBOX_FULL,
        reply_code=552,
        enhanced="5.2.2",
        text="Mailbox full",
        remote_host="mx.example.com",
        event_id=7,
    )
    body = json.dumps(payload(RecipientChanged(bounced, Status.BOUNCED), "wh1", "<q1@x>"))
    await env.store.enqueue_webhook(
        OutboxItem("wh1", "default", "bounced", body.encode(), env.clock.now())
    )


async def test_every_route_answers_as_documented(env: Env, checker: Checker) -> None:
    await _seed(env)
    c = checker.call
    full, ro = auth(), auth(RO_TOKEN)

    # Recipients.
    route = "/api/v1/recipients/{address}"
    r = await c("GET", route, "/api/v1/recipients/bob@example.com", expect=200, headers=ro)
    assert r.json()["status"] == "suppressed"
    await c("GET", route, "/api/v1/recipients/ana@example.com?lang=en", expect=200, headers=ro)
    r = await c("GET", route, "/api/v1/recipients/nobody@example.com", expect=200, headers=ro)
    assert r.json()["status"] == "no_record"
    await c("GET", route, "/api/v1/recipients/bob@example.com", expect=401)

    # Messages and queue control.
    route = "/api/v1/messages"
    r = await c("GET", route, expect=200, headers=ro, params={"limit": "2"})
    assert r.json()["next_cursor"]
    await c("GET", route, expect=200, headers=ro, params={"cursor": r.json()["next_cursor"]})
    await c("GET", route, expect=200, headers=ro, params={"status": "deferred"})
    await c("GET", route, expect=422, headers=ro, params={"limit": "0"})
    await c("GET", route, expect=422, headers=ro, params={"status": "lost"})
    route = "/api/v1/messages/{queue_id}"
    await c("GET", route, "/api/v1/messages/QBOB000001", expect=200, headers=ro)
    await c("GET", route, "/api/v1/messages/NOPE", expect=404, headers=ro)
    hold, release = route + "/hold", route + "/release"
    await c("POST", hold, "/api/v1/messages/QPENDING01/hold", expect=200, headers=full)
    await c("POST", hold, "/api/v1/messages/QPENDING01/hold", expect=403, headers=ro)
    await c("POST", release, "/api/v1/messages/QPENDING01/release", expect=200, headers=full)
    await c("POST", release, "/api/v1/messages/NOPE/release", expect=404, headers=full)
    await c("DELETE", route, "/api/v1/messages/QPENDING01", expect=200, headers=full)
    await c("DELETE", route, "/api/v1/messages/QPENDING01", expect=409, headers=full)
    await c("POST", hold, "/api/v1/messages/QPENDING01/hold", expect=409, headers=full)

    # Suppressions.
    route = "/api/v1/suppressions"
    await c("GET", route, expect=200, headers=ro)
    await c("GET", route, expect=422, headers=ro, params={"reason": "bored"})
    block = {"address": "eve@example.com", "note": "ticket 1", "expires": "2099-01-01T00:00:00Z"}
    await c("POST", route, expect=201, headers=full, json=block)
    await c("POST", route, expect=422, headers=full, json={"address": "not an address"})
    await c("POST", route, expect=422, headers=full, json={"note": "no address"})
    await c("POST", route, expect=400, headers=full, content=b"[1]")
    await c("POST", route, expect=400, headers=full, content=b"{nope")
    await c("POST", route, expect=413, headers=full, content=b"x" * 100_000)
    await c("POST", route, expect=404, headers=full, json=block | {"tenant": "nobody"})
    route = "/api/v1/suppressions/{address}"
    url = "/api/v1/suppressions/eve@example.com"
    await c("DELETE", route, url, expect=422, headers=full)
    await c("DELETE", route, url, expect=200, headers=full, params={"reason": "T-1"})
    await c("DELETE", route, url, expect=404, headers=full, json={"reason": "T-2"})

    # Addresses.
    route = "/api/v1/addresses/check"
    await c("POST", route, expect=200, headers=full, json={"address": "ana@gmial.com"})
    await c("POST", route, expect=200, headers=full, json={"address": "x@nomail.com.br"})
    await c("POST", route, expect=422, headers=full, json={})
    await c("POST", route, expect=404, headers=full, json={"address": "a@b.c", "tenant": "zz"})
    route = "/api/v1/addresses/{address}/data"
    await c("DELETE", route, "/api/v1/addresses/ana@example.com/data", expect=200, headers=full)
    await c("DELETE", route, "/api/v1/addresses/%20/data", expect=422, headers=full)

    # Tenants.
    route = "/api/v1/tenants"
    await c("GET", route, expect=200, headers=ro)
    await c("GET", route, expect=401, headers=auth("not-a-token"))
    new = {
        "name": "shop",
        "allowed_sender_domains": ["shop.example"],
        "hourly_quota": 100,
        "failure_window_seconds": 3600,
        "webhook_url": "https://hooks.example/x",
    }
    r = await c("POST", route, expect=201, headers=full, json=new)
    assert r.json()["webhook_secret"].startswith("whsec_")
    await c("POST", route, expect=409, headers=full, json=new)
    await c("POST", route, expect=422, headers=full, json={"name": "Bad Name"})
    await c("POST", route, expect=422, headers=full, json={"name": "ok", "bogus": 1})
    route = "/api/v1/tenants/{name}"
    await c("GET", route, "/api/v1/tenants/shop", expect=200, headers=ro)
    await c("GET", route, "/api/v1/tenants/nobody", expect=404, headers=ro)
    patch = {"daily_quota": None, "rotate_webhook_secret": True}
    r = await c("PATCH", route, "/api/v1/tenants/shop", expect=200, headers=full, json=patch)
    assert r.json()["webhook_secret"].startswith("whsec_")
    r = await c("PATCH", route, "/api/v1/tenants/acme", expect=200, headers=full, json={})
    assert "webhook_secret" not in r.json()
    await c("PATCH", route, "/api/v1/tenants/nobody", expect=404, headers=full, json={})
    # Hold and pause (issue 15): the settings, a pause with its note, the resume.
    hold = {"suppressed_action": "hold", "hold_window": "3d", "pause_bounce_rate": 0.1}
    await c("PATCH", route, "/api/v1/tenants/shop", expect=200, headers=full, json=hold)
    paused = {"paused": True, "note": "T-5"}
    await c("PATCH", route, "/api/v1/tenants/shop", expect=200, headers=full, json=paused)
    resumed = {"paused": False, "note": "T-5 done"}
    await c("PATCH", route, "/api/v1/tenants/shop", expect=200, headers=full, json=resumed)
    zero = {"hold_window": "0s"}  # the pattern refuses it: the answer says which key
    await c("PATCH", route, "/api/v1/tenants/shop", expect=422, headers=full, json=zero)
    bad = {"hourly_quota": 0}
    await c("PATCH", route, "/api/v1/tenants/shop", expect=422, headers=full, json=bad)
    route = "/api/v1/tenants/{name}/credentials"
    url = "/api/v1/tenants/shop/credentials"
    await c("POST", route, url, expect=200, headers=full, json={"username": "shop2"})
    await c("POST", route, "/api/v1/tenants/zz/credentials", expect=404, headers=full)
    taken = {"username": "shop2"}
    await c("POST", route, "/api/v1/tenants/acme/credentials", expect=409, headers=full, json=taken)

    # Tenant tokens (issue 16 item 2).
    route = "/api/v1/tenants/{name}/tokens"
    url = "/api/v1/tenants/shop/tokens"
    r = await c("POST", route, url, expect=201, headers=full, json={"access": "read"})
    token_id, tenant_token = r.json()["info"]["id"], r.json()["token"]
    await c("POST", route, url, expect=422, headers=full, json={"access": "all"})
    read = {"access": "read"}
    await c("POST", route, "/api/v1/tenants/zz/tokens", expect=404, headers=full, json=read)
    await c("POST", route, url, expect=403, headers=auth(tenant_token), json={"access": "read"})
    await c("GET", route, url, expect=200, headers=full)
    await c("GET", route, "/api/v1/tenants/zz/tokens", expect=404, headers=full)
    route = "/api/v1/tenants/{name}/tokens/{token_id}"
    await c("DELETE", route, f"{url}/{token_id}", expect=200, headers=full)
    await c("DELETE", route, f"{url}/{token_id}", expect=404, headers=full)

    # Suppression CSV (issue 16 item 7).
    route = "/api/v1/suppressions/import"
    csv_body = {"content": b"EmailAddress,Reason\nx@example.com,BOUNCE\n"}
    csv_type = {"content-type": "text/csv"}
    r = await c("POST", route, expect=200, headers=full | csv_type, **csv_body)
    assert r.json()["added"] == 1
    await c("POST", route, expect=422, headers=full | csv_type, content=b"")
    await c("POST", route, f"{route}?tenant=zz", expect=404, headers=full | csv_type, **csv_body)
    route = "/api/v1/suppressions/export"
    r = await c("GET", route, expect=200, headers=ro)
    assert r.text.startswith("tenant,address,reason")
    await c("GET", route, f"{route}?reason=nope", expect=422, headers=ro)

    # A tenant's texts, the overview, the message search (issue 16 items 3, 4 and 5).
    route = "/api/v1/tenants/{name}/texts/{lang}"
    url = "/api/v1/tenants/shop/texts/pt-BR"
    texts = {"company_name": "Shop", "sender_addresses": ["billing@shop.example"],
             "messages": {"sent": "Olá! {address}"}}  # fmt: skip
    await c("PUT", route, url, expect=200, headers=full, json=texts)
    await c("PUT", route, url, expect=422, headers=full, json={"messages": {"sent": "{x}"}})
    await c("PUT", route, "/api/v1/tenants/zz/texts/en", expect=404, headers=full, json={})
    route = "/api/v1/tenants/{name}/texts"
    await c("GET", route, "/api/v1/tenants/shop/texts", expect=200, headers=ro)
    await c("GET", route, "/api/v1/tenants/zz/texts", expect=404, headers=ro)
    await c("GET", "/api/v1/overview", expect=200, headers=ro, params={"tenant": "default"})
    await c("GET", "/api/v1/overview", expect=401)
    await c("GET", "/overview", expect=303)
    await c("GET", "/overview", expect=200, headers=ro)
    await c("GET", "/messages", expect=303)
    await c("GET", "/messages", expect=200, headers=ro, params={"recipient": "bob@example.com"})
    by_id = {"message_id": "QBOB000001@app.test"}
    await c("GET", "/messages", expect=200, headers=ro, params=by_id)

    # Send-test, stats, audit, webhook deliveries.
    route = "/api/v1/send-test"
    await c("POST", route, expect=202, headers=full, json={"to": "ops@example.com"})
    await c("POST", route, expect=422, headers=full, json={"to": "x@nomail.com.br"})
    await c("POST", route, expect=404, headers=full, json={"to": "a@example.com", "tenant": "q"})
    route = "/api/v1/stats"
    since = (env.clock.now() - timedelta(days=1)).isoformat()
    await c("GET", route, expect=200, headers=ro, params={"since": since})
    await c("GET", route, expect=422, headers=ro, params={"since": "yesterday"})
    route = "/api/v1/destinations"
    now = env.clock.now()

    async def sites() -> list[SiteView]:
        return [
            SiteView("mx.ok.example", "other", SiteState.ACTIVE, None, None, 3, 1, 10, False, ""),
            SiteView("mx.tarpit.example", "uol", SiteState.SUSPENDED, now, now, 0, 0, 3, True, "x"),
        ]

    env.deps.destinations = sites
    r = await c("GET", route, expect=200, headers=ro)
    assert [d["state"] for d in r.json()["destinations"]] == ["suspended", "active"]
    await c("GET", route, expect=401)
    route = "/api/v1/audit"
    r = await c("GET", route, expect=200, headers=ro, params={"limit": "1"})
    assert r.json()["items"]
    await c("GET", route, expect=422, headers=ro, params={"cursor": "!!"})
    route = "/api/v1/webhooks/deliveries"
    r = await c("GET", route, expect=200, headers=ro)
    assert r.json()["items"][0]["payload"]["type"] == "bounced"
    await c("GET", route, expect=422, headers=ro, params={"state": "lost"})
    route = "/api/v1/feedback-reports"
    await env.store.add_feedback_report(
        UnattributedReport(
            None, env.clock.now(), "abuse", "Yahoo!-Mail-Feedback/2.0", "192.0.2.7",
            "x@elsewhere.example", "ana@example.com", "<m@elsewhere.example>", "", Why.NO_MATCH,
            2048,
        )
    )  # fmt: skip
    r = await c("GET", route, expect=200, headers=ro)
    assert r.json()["items"][0]["why"] == "no_match"
    await c("GET", route, expect=422, headers=ro, params={"before_id": "0"})

    # The document itself, the probes and the metrics.
    await c("GET", "/api/openapi.json", expect=200)
    await c("GET", "/healthz", expect=200)
    await c("GET", "/readyz", expect=200)
    env.ready["relay"] = False
    await c("GET", "/readyz", expect=503)
    await c("GET", "/metrics", expect=200)
    env.deps.metrics = None
    await c("GET", "/metrics", expect=404)

    # The support page: a caller without a login is sent to the form; a bearer token works.
    await c("GET", "/", expect=303)
    await c("GET", "/", expect=200, headers=ro)
    await c("GET", "/support", expect=303, params={"address": "bob@example.com"})
    await c("GET", "/support", expect=200, headers=ro, params={"address": "bob@example.com"})
    await c("GET", "/support/suppressions", expect=303)
    await c("GET", "/support/suppressions", expect=200, headers=ro)
    await c("GET", "/support/suppressions", expect=422, headers=ro, params={"reason": "x"})
    unblock = {"address": "bob@example.com", "tenant": "default", "reason": "T-3"}
    await c("POST", "/support/unblock", expect=401, data=unblock)
    await c("POST", "/support/unblock", expect=403, headers=ro, data=unblock)
    await c("POST", "/support/unblock", expect=422, headers=full, data=unblock | {"reason": ""})
    await c("POST", "/support/unblock", expect=303, headers=full, data=unblock)
    # The tenants page and its pause form (issue 15).
    await c("GET", "/support/tenants", expect=303)
    await c("GET", "/support/tenants", expect=200, headers=ro)
    pause = {"tenant": "default", "action": "pause", "note": "T-4"}
    await c("POST", "/support/tenants/pause", expect=401, data=pause)
    await c("POST", "/support/tenants/pause", expect=403, headers=ro, data=pause)
    wrong = pause | {"action": "x"}
    await c("POST", "/support/tenants/pause", expect=422, headers=full, data=wrong)
    nobody = pause | {"tenant": "nobody"}
    await c("POST", "/support/tenants/pause", expect=404, headers=full, data=nobody)
    await c("POST", "/support/tenants/pause", expect=303, headers=full, data=pause)
    resume = pause | {"action": "resume"}
    await c("POST", "/support/tenants/pause", expect=303, headers=full, data=resume)
    await c("GET", "/login", expect=200)
    await c("POST", "/login", expect=401, data={"token": "wrong"})
    await c("POST", "/logout", expect=303)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=build_admin_app(env.deps)), base_url="http://admin.test"
    ) as browser:
        session = Checker(checker.doc, browser, checker.seen)
        await session.call("POST", "/login", expect=303, data={"token": TOKEN})
        await session.call("GET", "/login", expect=303)
        await session.call("POST", "/logout", expect=403, data={"csrf": "0" * 32})

    # A NUL in a parameter is 422 on every route that takes one, before the route runs
    # (errors.NoNul; the path parameter's value does not matter).
    for path, methods, _, _ in ROUTES:
        for method in methods:
            if "422" in checker.doc["paths"][path][method.lower()]["responses"]:
                url = path.replace("{", "").replace("}", "") + "?x=%00"
                await c(method, path, url, expect=422, headers=full)

    # Nothing left out: every route was called for a success and, where its document names
    # an error status, for an error too.
    for path, methods, _, _ in ROUTES:
        for method in methods:
            statuses = checker.seen.get((path, method), set())
            assert any(s < 400 for s in statuses), (method, path, "no success called")
            documented = checker.doc["paths"][path][method.lower()]["responses"]
            if any(int(s) >= 400 for s in documented):
                assert any(s >= 400 for s in statuses), (method, path, "no error called")


async def test_document_is_generated_from_every_route(env: Env) -> None:
    """No operation without a schema for its JSON bodies, and no schema without a use."""
    doc = (await env.client.get("/api/openapi.json")).json()
    text = json.dumps(doc)
    for name in doc["components"]["schemas"]:
        assert f'"#/components/schemas/{name}"' in text or name == "WebhookPayload", name
    for path, methods, _, _ in ROUTES:
        for method in methods:
            op = doc["paths"][path][method.lower()]
            for status, answer in op["responses"].items():
                for media, content in answer.get("content", {}).items():
                    if media == "application/json" and path != "/api/openapi.json":
                        assert "$ref" in content["schema"], (method, path, status)
