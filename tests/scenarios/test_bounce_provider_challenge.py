"""A provider's challenge (UOL AntiSpam) on the return path, over real SMTP (issue 12 item 4).

The report says the provider holds the message until the sender answers a challenge: the
recipient becomes ``provider_hold`` (not ``bounced``, not the gateway's own ``held``), with
the provider's name, the challenge link and what to do — in the recipient API, in the webhook
payload and on the support page. Nothing is suppressed and no bounce is counted.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from gateway.core.model import Reason, Status
from tests.observability.receiver import Receiver
from tests.scenarios.admin_api import ADMIN, admin, metric, recipient
from tests.scenarios.harness import GatewayHarness
from tests.waiting import wait_until

TRUSTED = {"trusted_networks": ["127.0.0.1/32"]}
WEBHOOKS = {"allow_private_targets": True, "retry_intervals": ["1s"]}
LINK = "https://antispam.uol.com.br/confirmar?id=4f2a9c&amp=1"


def uol_challenge(return_path: str, address: str) -> bytes:
    """UOL AntiSpam's notice to the sender, as the provider sends it to the return path."""
    return (
        "From: AntiSpam UOL <antispam@uol.com.br>\r\n"
        f"To: {return_path}\r\n"
        "Subject: =?utf-8?q?Confirma=C3=A7=C3=A3o_de_envio_=28AntiSpam_UOL=29?=\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        "Olá,\r\n\r\n"
        f"Você enviou uma mensagem para {address}.\r\n"
        "O destinatário utiliza o AntiSpam UOL. Para que sua mensagem seja entregue,\r\n"
        "clique no link abaixo e digite os caracteres da imagem:\r\n\r\n"
        f"{LINK}\r\n"
    ).encode()


async def test_a_uol_challenge_holds_the_recipient_at_the_provider(
    harness: GatewayHarness,
) -> None:
    harness.mx("127.0.0.2", "uol.com.br")
    address = "cliente@uol.com.br"
    async with Receiver() as hooks:
        gw = await harness.start(smtp=TRUSTED, admin=ADMIN, webhooks=WEBHOOKS)
        await gw.store.set_webhook("default", hooks.url, "whsec_scenario")
        gw.tenants.invalidate()
        return_path = await harness.deliver(address)

        code, _ = await harness.send_bounce(return_path, uol_challenge(return_path, address))
        assert code == 250
        await harness.wait_status(address, Status.PROVIDER_HOLD)

        # The recipient API: its own status, the provider, the link, what to do.
        body = await recipient(harness, address)
        assert body["status"] == "provider_hold"
        assert body["recipient"]["status"] == "provider_hold"
        assert body["guidance"]["title"] == "Held by the provider until the sender confirms"
        hold = body["provider_hold"]
        assert (hold["provider"], hold["provider_name"]) == ("uol", "UOL")
        assert hold["challenge_url"] == LINK
        assert "challenge" in hold["what_to_do"]
        assert body["events"][0]["reason"] == Reason.PROVIDER_CHALLENGE.value

        # The webhook: a report whose status is provider_hold, with the provider and link.
        def challenge_hook() -> dict[str, object] | None:
            for request in hooks.requests:
                sent = json.loads(request.body)
                if sent["status"] == "provider_hold":
                    return dict(sent)
            return None

        sent = await wait_until(challenge_hook, 10, what="the provider_hold webhook")
        assert sent["type"] == "report"
        assert sent["reason"] == "provider_challenge"
        assert (sent["provider"], sent["challenge_url"]) == ("uol", LINK)
        assert sent["recipient"] == address

        # The support page (Portuguese first): the status, the provider and the link.
        page = await admin(harness, "GET", "/support", params={"address": address})
        assert page.status_code == 200, page.text
        assert 'data-status="provider_hold"' in page.text
        assert "Retido pelo provedor até o remetente confirmar" in page.text
        assert 'data-provider="uol"' in page.text
        assert (
            'class="challenge-link" href="https://antispam.uol.com.br/confirmar?id=4f2a9c&amp;amp=1"'
            in page.text
        )
        english = await admin(harness, "GET", "/support", params={"address": address, "lang": "en"})
        assert "Held by the provider until the sender confirms" in english.text

        # Not a failure: nothing suppressed, no bounce counted.
        assert await gw.store.find_suppression("default", address, datetime.now(UTC)) is None
        assert await metric(harness, "gateway_bounces_total", tenant="default") == 0
