"""Issue 16 items 4 and 5 through the API and the pages' HTML, on both stores: the overview's
numbers (per day, per tenant, failing domains and providers, what waits) and the message
search by recipient, Message-ID and time range with each recipient's timeline.
"""

from __future__ import annotations

from datetime import timedelta

from gateway.core.model import Category, Status
from gateway.core.no_record import no_record_text
from tests.admin.support import RO_TOKEN, Env, auth
from tests.admin.test_admin_tenant_tokens import make_token


async def _traffic(env: Env) -> None:
    """acme: a bounce at UOL and a delivery today, a deferral yesterday; default: one queued."""
    env.clock.advance(timedelta(days=-1))
    await env.seed("caio@uol.com.br", tenant="acme", status=Status.DEFERRED,
                   category=Category.SPAM_BLOCKED, host="mx.uol.com.br", code=450,
                   enhanced="4.7.1", text="Try later", queue_id="QACME00001")  # fmt: skip
    env.clock.advance(timedelta(days=1))
    await env.seed("bia@uol.com.br", tenant="acme", category=Category.SPAM_BLOCKED,
                   host="mx.uol.com.br", code=554, enhanced="5.7.1", text="Blocked",
                   queue_id="QACME00002")  # fmt: skip
    await env.seed("ana@example.com", tenant="acme", status=Status.SENT, category=None,
                   code=250, enhanced="2.0.0", text="OK", queue_id="QACME00003")  # fmt: skip
    await env.seed("dan@example.com", status=Status.QUEUED, queue_id="QDEF000001")


async def test_overview_api_counts_per_day_tenant_and_destination(env: Env) -> None:
    await _traffic(env)
    r = await env.client.get("/api/v1/overview", headers=auth(RO_TOKEN))
    assert r.status_code == 200
    body = r.json()
    today, yesterday = body["days"][0], body["days"][1]
    assert today["day"] == env.clock.now().date().isoformat()
    assert today["events"]["bounced"] == 1
    assert today["events"]["sent"] == 1
    assert today["events"]["queued"] == 3
    assert yesterday["events"] == {"queued": 1, "deferred": 1}
    assert len(body["days"]) == 7
    assert body["categories"] == {"spam_blocked": 2}
    tenants = {t["tenant"]: t for t in body["tenants"]}
    assert tenants["acme"]["today"]["bounced"] == 1
    assert tenants["acme"]["week"]["deferred"] == 1
    assert tenants["acme"]["waiting"] == {"deferred": 1}
    assert tenants["default"]["waiting"] == {"queued": 1}
    assert tenants["acme"]["categories"] == {"spam_blocked": 2}
    assert tenants["default"]["categories"] == {}
    assert body["failing_domains"] == [{"name": "uol.com.br", "failures": 2}]
    assert body["failing_providers"] == [{"name": "uol", "failures": 2}]
    assert body["waiting"] == {"deferred": 1, "queued": 1}

    only = (await env.client.get("/api/v1/overview?tenant=default", headers=auth())).json()
    assert [t["tenant"] for t in only["tenants"]] == ["default"]
    assert only["failing_domains"] == []


async def test_overview_page_draws_svg_charts(env: Env) -> None:
    await _traffic(env)
    r = await env.client.get("/overview", headers=auth())
    assert r.status_code == 200
    html = r.text
    assert html.count("<svg") == 4
    assert 'data-chart="per-day"' in html
    assert 'data-series="bounced" data-value="1"' in html
    assert '<tr data-tenant="acme">' in html
    assert '<td class="categories">spam/bloqueio: 2</td>' in html
    assert "<script src" not in html
    assert "@font-face" not in html
    svg = html[html.index("<svg") :].replace("http://www.w3.org/2000/svg", "")
    assert "http://" not in svg
    assert "https://" not in svg


async def test_message_search_by_recipient_message_id_and_time(env: Env) -> None:
    await _traffic(env)
    api = "/api/v1/messages"
    by_id = (await env.client.get(api, params={"message_id": "QACME00002@app.test"},
                                  headers=auth())).json()  # fmt: skip
    assert [m["queue_id"] for m in by_id["items"]] == ["QACME00002"]
    with_brackets = await env.client.get(
        api, params={"message_id": "<QACME00002@app.test>"}, headers=auth()
    )
    assert [m["queue_id"] for m in with_brackets.json()["items"]] == ["QACME00002"]
    since = (env.clock.now() - timedelta(hours=1)).isoformat()
    recent = (await env.client.get(api, params={"since": since, "tenant": "acme"},
                                   headers=auth())).json()  # fmt: skip
    assert sorted(m["queue_id"] for m in recent["items"]) == ["QACME00002", "QACME00003"]

    page = await env.client.get("/messages", params={"recipient": "bia@uol.com.br"},
                                headers=auth())  # fmt: skip
    assert page.status_code == 200
    assert 'data-queue-id="QACME00002"' in page.text
    assert 'data-queue-id="QACME00003"' not in page.text
    assert '<li class="queued" data-type="queued">' in page.text
    assert '<li class="bounced" data-type="bounced">' in page.text
    assert "554 5.7.1 Blocked" in page.text
    bad = await env.client.get("/messages", params={"since": "yesterday"}, headers=auth())
    assert bad.status_code == 200
    assert "since must be an ISO 8601 time" in bad.text
    none = await env.client.get("/messages", params={"message_id": "nope@x"}, headers=auth())
    assert 'class="none"' in none.text

    # The address view links to the search.
    support = await env.client.get("/support", params={"address": "bia@uol.com.br"},
                                   headers=auth())  # fmt: skip
    assert "/messages?recipient=bia%40uol.com.br" in support.text


async def test_pages_in_english(env: Env) -> None:
    support = await env.client.get(
        "/support", params={"address": "nobody@example.com", "lang": "en"}, headers=auth()
    )
    assert no_record_text("en").title in support.text
    assert "What to check in the application" in support.text
    assert "The gateway would accept this address." in support.text
    overview = await env.client.get("/overview", params={"lang": "en"}, headers=auth())
    assert "<h1>Overview</h1>" in overview.text
    assert "Events per day" in overview.text
    search = await env.client.get("/messages", params={"lang": "en"}, headers=auth())
    assert "<h1>Search messages</h1>" in search.text


async def test_a_tenant_token_sees_its_own_overview_texts_and_activity(env: Env) -> None:
    await _traffic(env)
    token = await make_token(env, "acme", "write")
    overview = (await env.client.get("/api/v1/overview", headers=auth(token))).json()
    assert [t["tenant"] for t in overview["tenants"]] == ["acme"]
    assert overview["waiting"] == {"deferred": 1}
    other = await env.client.get("/api/v1/overview?tenant=default", headers=auth(token))
    assert other.status_code == 404
    texts = {"company_name": "ACME"}
    own = await env.client.put("/api/v1/tenants/acme/texts/en", json=texts, headers=auth(token))
    assert own.status_code == 200
    for name in ("default", "nosuch"):
        r = await env.client.put(
            f"/api/v1/tenants/{name}/texts/en", json=texts, headers=auth(token)
        )
        assert r.status_code == 404
        assert r.json()["error"]["message"] == f"No tenant {name}"
    nr = await env.client.get("/api/v1/recipients/dan@example.com", headers=auth(token))
    assert nr.json()["status"] == "no_record"  # default's address: no record in acme
    assert nr.json()["tenant_activity"]["tenant"] == "acme"
    page = await env.client.get("/messages", params={"recipient": "dan@example.com"},
                                headers=auth(token))  # fmt: skip
    assert 'class="none"' in page.text
    page = await env.client.get("/overview", headers=auth(token))
    assert '<tr data-tenant="default">' not in page.text
    assert '<tr data-tenant="acme">' in page.text
