"""Possible typos in the admin API and on the support page: the address check's warning,
``possible_typo`` on the recipient report, and the suggestion in a refusal's guidance."""

from __future__ import annotations

from datetime import timedelta

from gateway.admin.views import EVENTS_SHOWN
from gateway.core.model import Event, EventType, Reason, Status
from gateway.core.status_text import guidance
from tests.admin.support import RO_TOKEN, Env, auth


async def _check(env: Env, address: str) -> dict[str, object]:
    r = await env.client.post("/api/v1/addresses/check", json={"address": address}, headers=auth())
    assert r.status_code == 200
    body: dict[str, object] = r.json()
    return body


async def test_the_address_check_warns_of_a_near_miss_that_takes_mail(env: Env) -> None:
    env.dns.add_mx("bol.com", 10, "mx.example.com")
    body = await _check(env, "Ana@BOL.com")
    assert body["accepted"] is True
    assert body["reason"] is None
    assert body["suggestion"] == "ana@bol.com.br"
    assert body["warning"] == "The recipient domain may be misspelt: did you mean ana@bol.com.br?"
    plain = await _check(env, "ana@example.com")
    assert (plain["accepted"], plain["suggestion"], plain["warning"]) == (True, None, None)


async def test_the_address_check_refuses_a_near_miss_with_no_domain(env: Env) -> None:
    body = await _check(env, "ana@uol.com")  # no MX, no A in the loopback DNS
    assert body["accepted"] is False
    assert body["reason"] == "no_such_domain"
    assert (body["reply_code"], body["enhanced"]) == (550, "5.1.2")
    assert body["suggestion"] == "ana@uol.com.br"


async def _possible_typo(env: Env, address: str, suggestion: str, queue_id: str) -> int:
    return await env.store.record_event(
        Event(
            None,
            "default",
            address,
            EventType.POSSIBLE_TYPO,
            env.clock.now(),
            queue_id=queue_id,
            text=f"The recipient domain may be misspelt: did you mean {suggestion}?",
            reason=Reason.POSSIBLE_TYPO,
            details={"suggestion": suggestion},
        )
    )


async def test_the_report_shows_the_last_warning_beside_the_status(env: Env) -> None:
    queue_id = await env.seed("ana@terra.com", status=Status.SENT, category=None, code=250)
    env.clock.advance(timedelta(minutes=1))
    event_id = await _possible_typo(env, "ana@terra.com", "ana@terra.com.br", queue_id)
    # More events than the report lists: the warning is still found.
    for _ in range(EVENTS_SHOWN + 5):
        env.clock.advance(timedelta(seconds=1))
        await env.store.record_event(
            Event(None, "default", "ana@terra.com", EventType.REPORT, env.clock.now())
        )
    r = await env.client.get("/api/v1/recipients/ana@terra.com", headers=auth(RO_TOKEN))
    body = r.json()
    assert body["status"] == "sent"
    assert body["possible_typo"] == {
        "suggestion": "ana@terra.com.br",
        "at": (env.clock.now() - timedelta(seconds=EVENTS_SHOWN + 5)).isoformat(),
        "event_id": event_id,
        "queue_id": queue_id,
    }
    assert "possible_typo" not in [e["type"] for e in body["events"]]

    page = await env.client.get(
        "/support", params={"address": "ana@terra.com", "lang": "en"}, headers=auth(RO_TOKEN)
    )
    assert "Possible typo in the domain — did you mean <code>ana@terra.com.br</code>?" in page.text
    pt = await env.client.get(
        "/support", params={"address": "ana@terra.com"}, headers=auth(RO_TOKEN)
    )
    assert "você quis dizer <code>ana@terra.com.br</code>?" in pt.text


async def test_the_warning_is_escaped_on_the_page(env: Env) -> None:
    queue_id = await env.seed("ana@terra.com", status=Status.SENT, category=None, code=250)
    await _possible_typo(env, "ana@terra.com", "<b>x</b>@terra.com.br", queue_id)
    page = await env.client.get(
        "/support", params={"address": "ana@terra.com", "lang": "en"}, headers=auth()
    )
    assert "<b>x</b>" not in page.text
    assert "&lt;b&gt;x&lt;/b&gt;@terra.com.br" in page.text


async def test_a_refusal_names_its_suggestion_from_the_recorded_data(env: Env) -> None:
    await env.record_typo_refusal(details={"reason": "typo", "suggestion": "maria@gmail.com"})
    body = (await env.client.get("/api/v1/recipients/maria@gmial.com", headers=auth())).json()
    assert body["reason"] == "typo"
    expected = guidance(Status.REJECTED, None, "typo", "pt-BR", "maria@gmail.com")
    assert body["guidance"]["what_to_do"] == expected.what_to_do
    assert body["guidance"]["customer_message"] == expected.customer_message
    assert "maria@gmail.com" in body["guidance"]["customer_message"]
    assert body["rejection"]["suggestion"] == "maria@gmail.com"
    assert body["possible_typo"] is None


async def test_an_older_refusal_without_a_recorded_suggestion_gets_the_plain_text(
    env: Env,
) -> None:
    """Refusals recorded before the suggestion was kept (their reason given by migration 007):
    no address is read from the reply."""
    await env.record_typo_refusal()
    body = (await env.client.get("/api/v1/recipients/maria@gmial.com", headers=auth())).json()
    assert body["reason"] == "typo"
    assert body["guidance"]["customer_message"] == guidance(
        Status.REJECTED, None, "typo"
    ).customer_message
