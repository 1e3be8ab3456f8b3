"""Issue 16 items 1 and 3 through the API, on both stores: an address without a record is an
answer (what to check in the application, the tenant's activity, the gateway's own check of
the address), and a tenant's details fill the customer messages (validated when saved,
audited, the shipped texts unchanged for a tenant without any).
"""

from __future__ import annotations

from datetime import timedelta

from gateway.core.model import Reason, Status
from gateway.core.no_record import no_record_text
from gateway.core.status_text import guidance
from tests.admin.support import RO_TOKEN, Env, auth

CHECKS = [
    "address_on_file",
    "consent",
    "selection_rule",
    "sending_routine",
    "customer_status",
    "sender_test",
]


async def test_no_record_lists_checks_activity_and_the_address_check(env: Env) -> None:
    # acme sent two messages yesterday and one this morning, then nothing.
    env.clock.advance(timedelta(days=-1))
    await env.seed("a@example.com", tenant="acme", status=Status.SENT, category=None)
    await env.seed("b@example.com", tenant="acme", status=Status.SENT, category=None)
    env.clock.advance(timedelta(days=1, hours=-6))  # START is 12:00 UTC: 06:00 today
    last = env.clock.now()
    await env.seed("c@example.com", tenant="acme", status=Status.SENT, category=None)
    env.clock.advance(timedelta(hours=6))

    r = await env.client.get(
        "/api/v1/recipients/maria@gmial.com", params={"tenant": "acme"}, headers=auth(RO_TOKEN)
    )
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "no_record"
    assert body["tenant"] == "acme"
    assert body["since"] is None
    assert body["events"] == []
    assert body["recipient"] is None
    text = no_record_text("pt-BR")
    assert body["guidance"]["title"] == text.title
    assert [c["key"] for c in body["guidance"]["checks"]] == CHECKS
    activity = body["tenant_activity"]
    assert activity["tenant"] == "acme"
    assert activity["last_accepted_at"] == last.isoformat()
    assert activity["today"] == 1
    assert [d["accepted"] for d in activity["per_day"]] == [1, 2, 0, 0, 0, 0, 0]
    assert activity["per_day"][0]["day"] == env.clock.now().date().isoformat()
    check = body["address_check"]
    assert check["accepted"] is False
    assert check["reason"] == "typo"
    assert check["suggestion"] == "maria@gmail.com"

    en = await env.client.get(
        "/api/v1/recipients/ana@nomail.com.br", params={"lang": "en"}, headers=auth()
    )
    body = en.json()
    assert body["status"] == "no_record"
    assert body["guidance"]["title"] == no_record_text("en").title
    assert body["tenant_activity"]["tenant"] is None  # every tenant together
    assert body["tenant_activity"]["today"] == 1
    assert body["address_check"]["reason"] == "null_mx"


async def test_no_record_for_an_address_the_tenant_never_used(env: Env) -> None:
    await env.seed("carl@example.com", tenant="acme")
    r = await env.client.get(
        "/api/v1/recipients/carl@example.com", params={"tenant": "default"}, headers=auth()
    )
    assert r.json()["status"] == "no_record"
    assert r.json()["address_check"]["accepted"] is True
    assert r.json()["tenant_activity"]["last_accepted_at"] is None


TEXTS = {
    "company_name": "ACME Cobranças",
    "support_channel": "WhatsApp (11) 4000-0000",
    "sender_addresses": ["Faturas@ACME.example", "avisos@acme.example"],
}


async def test_tenant_texts_fill_the_customer_message(env: Env) -> None:
    await env.seed("ana@example.com", tenant="acme", status=Status.SENT, category=None)
    before = await env.client.get(
        "/api/v1/recipients/ana@example.com", params={"tenant": "acme"}, headers=auth()
    )
    shipped = guidance(Status.SENT).customer_message
    assert before.json()["guidance"]["customer_message"] == shipped  # defaults as today

    r = await env.client.put("/api/v1/tenants/acme/texts/pt-BR", json=TEXTS, headers=auth())
    assert r.status_code == 200, r.text
    saved = r.json()["texts"]["pt-BR"]
    assert saved["sender_addresses"] == ["faturas@acme.example", "avisos@acme.example"]
    assert saved["signature"] is None
    after = await env.client.get(
        "/api/v1/recipients/ana@example.com", params={"tenant": "acme"}, headers=auth()
    )
    message = after.json()["guidance"]["customer_message"]
    assert message.startswith(shipped)
    assert "adicione faturas@acme.example, avisos@acme.example aos seus contatos" in message
    assert "ACME Cobranças" in message
    assert "Atendimento: WhatsApp (11) 4000-0000" in message
    # English has no texts of its own yet: shipped, unchanged.
    en = await env.client.get(
        "/api/v1/recipients/ana@example.com",
        params={"tenant": "acme", "lang": "en"},
        headers=auth(),
    )
    assert (
        en.json()["guidance"]["customer_message"]
        == guidance(Status.SENT, lang="en").customer_message
    )

    audit = (await env.client.get("/api/v1/audit", headers=auth())).json()["items"][0]
    assert audit["action"] == "tenant.texts"
    assert audit["target"] == "acme"
    assert audit["detail"]["lang"] == "pt-BR"


async def test_tenant_templates_name_the_address_and_the_correction(env: Env) -> None:
    await env.record_typo_refusal({"suggestion": "maria@gmail.com"})  # tenant "default"
    own = {
        "company_name": "Loja",
        "messages": {
            "rejected:typo": "Olá! O e-mail {address} parece ter um erro.\n"
            "Seria {suggestion}? Responda para {support}.",
            "rejected": "Genérico {company}",
        },
        "signature": "— {company}",
    }
    r = await env.client.put("/api/v1/tenants/default/texts/pt-BR", json=own, headers=auth())
    assert r.status_code == 200, r.text
    body = (await env.client.get("/api/v1/recipients/maria@gmial.com", headers=auth())).json()
    assert body["reason"] == Reason.TYPO
    # The line naming {support} (not set) is left out; the most specific key wins.
    assert body["guidance"]["customer_message"] == (
        "Olá! O e-mail maria@gmial.com parece ter um erro.\n\n— Loja"
    )
    nr = await env.client.get("/api/v1/recipients/jose@gmial.com", headers=auth())
    assert nr.json()["guidance"]["customer_message"] == (
        no_record_text("pt-BR").customer_message + "\n\n— Loja"
    )
    # Back to the shipped texts.
    r = await env.client.put("/api/v1/tenants/default/texts/pt-BR", json={}, headers=auth())
    assert r.json()["texts"] == {}
    body = (await env.client.get("/api/v1/recipients/maria@gmial.com", headers=auth())).json()
    expected = guidance(Status.REJECTED, reason="typo", suggestion="maria@gmail.com")
    assert body["guidance"]["customer_message"] == expected.customer_message


async def test_tenant_texts_are_validated_when_saved(env: Env) -> None:
    url = "/api/v1/tenants/acme/texts/pt-BR"
    cases = [
        ({"messages": {"sent": "Olá {nome}"}}, "unknown placeholder {nome}"),
        ({"signature": "Olá { company }"}, "a lone '{' at character 5"),
        ({"messages": {"sent": "{{address}}"}}, "a lone '{'"),
        ({"messages": {"Sent!": "x"}}, "messages: 'Sent!' is not a status key"),
        ({"company_name": "A\nB"}, "company_name must be one line"),
        ({"sender_addresses": ["not an address"]}, "is not a valid e-mail address"),
        ({"colour": "red"}, "unknown field: colour"),
    ]
    for body, words in cases:
        r = await env.client.put(url, json=body, headers=auth())
        assert r.status_code == 422, (body, r.text)
        assert words in r.json()["error"]["message"], (body, r.json())
    assert (await env.client.get("/api/v1/tenants/acme/texts", headers=auth())).json() == {
        "tenant": "acme",
        "texts": {},
    }
    bad_lang = await env.client.put("/api/v1/tenants/acme/texts/fr", json={}, headers=auth())
    assert bad_lang.status_code == 404
    missing = await env.client.put("/api/v1/tenants/nobody/texts/en", json={}, headers=auth())
    assert missing.status_code == 404
    read_only = await env.client.put(url, json={}, headers=auth(RO_TOKEN))
    assert read_only.status_code == 403
