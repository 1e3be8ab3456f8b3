"""Suppression import and export as CSV (issue 16 item 7), both stores: this gateway's own
columns, Amazon SES's and Postmark's exports, idempotence, the dry run, bad rows with their
line, filters, the audit entry, and a tenant token kept to its own tenant."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from gateway.admin import suppression_csv
from gateway.core.model import SuppressionReason
from tests.admin.support import Env, auth
from tests.admin.test_admin_tenant_tokens import make_token

CSV = {"content-type": "text/csv"}

SES = """EmailAddress,Reason,LastUpdateTime
bounced@example.com,BOUNCE,2024-05-02T10:11:12.345000+00:00
angry@example.com,COMPLAINT,1714644672
"""

POSTMARK = """Email,SuppressionReason,Origin,CreatedAt
hard@example.com,HardBounce,Recipient,2019-12-10T08:58:33-05:00
spam@example.com,SpamComplaint,Recipient,2019-12-10T08:58:33-05:00
left@example.com,ManualSuppression,Recipient,2019-12-10T08:58:33-05:00
ops@example.com,ManualSuppression,Customer,2019-12-10T08:58:33-05:00
"""


async def _import(env: Env, body: str, query: str = "", token: str | None = None) -> dict:  # type: ignore[type-arg]
    r = await env.client.post(
        f"/api/v1/suppressions/import{query}",
        content=body.encode(),
        headers=CSV | (auth(token) if token else auth()),
    )
    assert r.status_code == 200, r.text
    found: dict = r.json()  # type: ignore[type-arg]
    return found


async def _export(env: Env, query: str = "", token: str | None = None) -> list[dict[str, str]]:
    r = await env.client.get(
        f"/api/v1/suppressions/export{query}", headers=auth(token) if token else auth()
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(r.text)))


async def test_ses_and_postmark_exports_are_read(env: Env) -> None:
    report = await _import(env, SES, "?tenant=acme")
    assert (report["added"], report["invalid"], report["rows"]) == (2, 0, 2)
    found = await env.store.find_suppression("acme", "bounced@example.com", env.clock.now())
    assert found is not None
    assert found.reason is SuppressionReason.NONEXISTENT_ADDRESS
    assert found.since.isoformat() == "2024-05-02T10:11:12.345000+00:00"
    angry = await env.store.find_suppression("acme", "angry@example.com", env.clock.now())
    assert angry is not None
    assert angry.reason is SuppressionReason.COMPLAINT
    shown = await env.client.get("/api/v1/recipients/angry@example.com", headers=auth())
    assert shown.status_code == 200
    assert shown.json()["status"] == "suppressed"
    assert [s["note"] for s in shown.json()["suppressions"]] == ["imported"]
    report = await _import(env, POSTMARK)
    assert report["added"] == 4
    reasons = {row["address"]: row["reason"] for row in await _export(env, "?tenant=default")}
    assert reasons == {
        "hard@example.com": "nonexistent_address",
        "spam@example.com": "complaint",
        "left@example.com": "opt_out",  # ManualSuppression by the recipient: an opt-out
        "ops@example.com": "manual",
    }


async def test_import_is_idempotent_and_the_dry_run_changes_nothing(env: Env) -> None:
    dry = await _import(env, SES, "?dry_run=true")
    assert (dry["dry_run"], dry["added"]) == (True, 2)
    assert await _export(env) == []
    assert not [e for e in await env.store.list_audit(10, None) if "import" in e.action]
    first = await _import(env, SES)
    assert (first["added"], first["updated"], first["unchanged"]) == (2, 0, 0)
    again = await _import(env, SES)
    assert (again["added"], again["updated"], again["unchanged"]) == (0, 0, 2)
    changed = SES.replace("angry@example.com,COMPLAINT", "angry@example.com,BOUNCE")
    dry = await _import(env, changed, "?dry_run=true")
    assert (dry["added"], dry["updated"], dry["unchanged"]) == (0, 1, 1)
    angry = await env.store.find_suppression("default", "angry@example.com", env.clock.now())
    assert angry is not None
    assert angry.reason is SuppressionReason.COMPLAINT  # the dry run wrote nothing
    audit = [e for e in await env.store.list_audit(10, None) if e.action == "suppression.import"]
    assert [e.detail["added"] for e in audit] == [0, 2]


async def test_bad_rows_are_reported_with_their_line(env: Env) -> None:
    body = (
        "address,reason,tenant,scope\n"
        "good@example.com,manual,acme,all\n"
        "not-an-address,manual,acme,all\n"
        '"multi\nline@example.com",manual,acme,all\n'
        "x@example.com,weird,acme,all\n"
        "y@example.com,manual,nosuch,all\n"
        "z@example.com,manual,acme,sometimes\n"
        "\n"
        "last@example.com,complaint,acme,\n"
        "cr\rinside@example.com,manual,acme,all\n"
    )
    report = await _import(env, body)
    assert report["added"] == 2
    assert report["invalid"] == 6
    assert [e["line"] for e in report["errors"]] == [3, 4, 6, 7, 8, 11]
    assert "not CSV" in report["errors"][5]["message"]
    assert "not an e-mail address" in report["errors"][0]["message"]
    assert "weird" in report["errors"][2]["message"]
    assert "nosuch" in report["errors"][3]["message"]
    assert report["errors_truncated"] is False
    many = "address\n" + "bad\n" * 150
    report = await _import(env, many)
    assert report["invalid"] == 150
    assert len(report["errors"]) == 100
    assert report["errors_truncated"] is True


async def test_refusals(env: Env) -> None:
    for body, words in (
        ("", "empty"),
        ("reason,tenant\nmanual,acme\n", "no address column"),
        ('address\n"never closed@example.com\n', "not closed"),
    ):
        r = await env.client.post(
            "/api/v1/suppressions/import", content=body.encode(), headers=CSV | auth()
        )
        assert r.status_code == 422, (body, r.text)
        assert words in r.json()["error"]["message"]
    r = await env.client.post(
        "/api/v1/suppressions/import?tenant=nosuch", content=SES.encode(), headers=CSV | auth()
    )
    assert r.status_code == 404
    # Over admin.max_import_size (the test config's default): 413 before anything is read.
    r = await env.client.post(
        "/api/v1/suppressions/import",
        content=b"x",
        headers=CSV | auth() | {"content-length": str(300 * 1024 * 1024)},
    )
    assert r.status_code == 413
    r = await env.client.get("/api/v1/suppressions/export?scope=sometimes", headers=auth())
    assert r.status_code == 422


async def test_export_filters_and_round_trip(env: Env) -> None:
    await _import(env, SES, "?tenant=acme")
    env.clock.advance(timedelta(days=1))
    await _import(env, POSTMARK)
    rows = await _export(env)
    assert list(rows[0]) == ["tenant", "address", "reason", "scope", "since", "expires_at", "note"]
    assert len(rows) == 6
    assert [r["address"] for r in await _export(env, "?reason=complaint")] == [
        "angry@example.com",
        "spam@example.com",
    ]
    assert len(await _export(env, "?tenant=acme")) == 2
    assert len(await _export(env, "?scope=all")) == 6
    assert len(await _export(env, "?since=2024-01-01T00:00:00Z&until=2024-12-31T00:00:00Z")) == 2
    # Our own export imports back unchanged.
    text = (await env.client.get("/api/v1/suppressions/export", headers=auth())).text
    report = await _import(env, text)
    assert (report["unchanged"], report["added"], report["invalid"]) == (6, 0, 0)


async def test_a_tenant_token_exports_and_imports_its_own_tenant_only(env: Env) -> None:
    await _import(env, SES, "?tenant=acme")
    await _import(env, POSTMARK, "?tenant=default")
    token = await make_token(env, "acme", "write")
    mine = await _export(env, token=token)
    assert {r["tenant"] for r in mine} == {"acme"}
    r = await env.client.get("/api/v1/suppressions/export?tenant=default", headers=auth(token))
    assert r.status_code == 404
    body = "address,tenant\nnew@example.com,acme\nsneaky@example.com,default\n"
    report = await _import(env, body, token=token)
    assert (report["added"], report["invalid"]) == (1, 1)
    assert "may import into" in report["errors"][0]["message"]
    plain = await _import(env, "address\nplain@example.com\n", token=token)
    assert plain["added"] == 1
    assert await env.store.find_suppression("acme", "plain@example.com", env.clock.now())
    reader = await make_token(env, "acme", "read")
    r = await env.client.post(
        "/api/v1/suppressions/import", content=b"address\n", headers=CSV | auth(reader)
    )
    assert r.status_code == 403


async def test_scopes_are_imported_and_exported_across_pages(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = (
        "address,reason,scope\n"
        "both@example.com,opt_out,marketing\n"
        "both@example.com,nonexistent_address,all\n"
        "both@example.com,opt_out,transactional\n"
        "one@example.com,opt_out,marketing\n"
        "two@example.com,manual,\n"
    )
    report = await _import(env, body)
    assert (report["added"], report["invalid"]) == (5, 0)
    marketing = await env.store.find_suppression("default", "both@example.com", env.clock.now())
    assert marketing is not None
    # Pages of two rows: a page ends inside one address's scopes, and every row comes once.
    monkeypatch.setattr(suppression_csv, "PAGE", 2)
    rows = await _export(env)
    assert [(r["address"], r["scope"]) for r in rows] == [
        ("both@example.com", "all"),
        ("both@example.com", "marketing"),
        ("both@example.com", "transactional"),
        ("one@example.com", "marketing"),
        ("two@example.com", "all"),
    ]
    only = await _export(env, "?scope=marketing")
    assert [r["address"] for r in only] == ["both@example.com", "one@example.com"]
    again = await _import(env, body)
    assert (again["unchanged"], again["added"]) == (5, 0)
