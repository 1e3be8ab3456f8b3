"""Each kind of RCPT refusal: the API and the support page show the reason stored on the event.

The reason is read as the intake stored it (``core.model.Reason``), never worked out from
the reply's words: a refusal whose reply text was reworded (a new catalogue sentence, or
another language) still shows its own reason and guidance, and the same reply code shared
by two checks (553 5.1.3, 452 4.5.3) shows whichever reason was stored.
"""

from __future__ import annotations

import httpx
import pytest
from markupsafe import escape  # what the templates' autoescaping produces

from gateway.core import replies
from gateway.core.model import INTAKE_REASONS, Reason, Status
from gateway.core.status_text import guidance
from tests.admin.support import TOKEN, Env, auth

# The check -> the reply it sends (``gateway.services.checks``, ``smtp_in.handler``).
REPLY_OF = {
    Reason.INVALID: replies.RECIPIENT_SYNTAX,
    Reason.TYPO: replies.RECIPIENT_TYPO,
    Reason.NO_SUCH_DOMAIN: replies.NO_SUCH_DOMAIN,
    Reason.NULL_MX: replies.NULL_MX,
    Reason.DNS_TEMPFAIL: replies.DNS_TEMPFAIL,
    Reason.SUPPRESSED: replies.SUPPRESSED,
    Reason.QUOTA: replies.QUOTA_EXHAUSTED,
    Reason.TOO_MANY_RECIPIENTS: replies.TOO_MANY_RECIPIENTS,
    Reason.STORE_UNAVAILABLE: replies.STORE_FAILED,
}
# Words none of the old reply-matching looked for ("misspelt", "quota", "too many").
REWORDED = "Destinatário recusado"


def test_the_table_covers_every_intake_reason() -> None:
    assert set(REPLY_OF) == set(INTAKE_REASONS)


async def _login(client: httpx.AsyncClient) -> None:
    r = await client.post("/login", data={"token": TOKEN, "lang": "en"})
    assert r.status_code == 303


@pytest.mark.parametrize("reason", INTAKE_REASONS)
@pytest.mark.parametrize("reworded", [False, True], ids=["catalogue", "reworded"])
async def test_api_and_page_show_the_stored_reason(
    env: Env, reason: Reason, reworded: bool
) -> None:
    reply = REPLY_OF[reason]
    if reworded:
        reply = reply.with_text(REWORDED)
    address = f"{reason.value.replace('_', '-')}@example.com"
    event_id = await env.record_refusal(address, reason, reply)

    body = (await env.client.get(f"/api/v1/recipients/{address}?lang=en", headers=auth())).json()
    assert body["status"] == "rejected"
    assert body["reason"] == reason.value
    assert body["rejection"]["reason"] == reason.value
    assert body["rejection"]["id"] == event_id
    assert body["guidance"]["title"] == guidance(Status.REJECTED, None, reason, "en").title
    assert [e["reason"] for e in body["events"]] == [reason.value]

    await _login(env.client)
    page = await env.client.get("/support", params={"address": address, "lang": "en"})
    assert f'data-reason="{reason.value}"' in page.text
    title = guidance(Status.REJECTED, None, reason, "en").title
    assert f"<h2>{escape(title)}</h2>" in page.text


@pytest.mark.parametrize(
    ("stored", "reply"),
    [
        (Reason.INVALID, replies.RECIPIENT_TYPO),  # a typo's reply, an invalid address's reason
        (Reason.TYPO, replies.RECIPIENT_SYNTAX),
        (Reason.QUOTA, replies.TOO_MANY_RECIPIENTS),
        (Reason.TOO_MANY_RECIPIENTS, replies.QUOTA_EXHAUSTED),
    ],
)
async def test_the_reason_wins_over_the_words_of_the_reply(
    env: Env, stored: Reason, reply: replies.Reply
) -> None:
    await env.record_refusal("ana@example.com", stored, reply)
    body = (await env.client.get("/api/v1/recipients/ana@example.com", headers=auth())).json()
    assert body["reason"] == stored.value
    assert body["guidance"]["title"] == guidance(Status.REJECTED, None, stored).title
