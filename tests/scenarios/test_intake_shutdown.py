"""On shutdown (SIGTERM), new sessions get 421 4.3.2 while open ones may finish."""

from __future__ import annotations

from gateway.core import replies
from tests.scenarios.harness import GatewayHarness, RawClient
from tests.waiting import wait_until


async def test_new_sessions_are_refused_while_open_ones_finish(harness: GatewayHarness) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    gw = await harness.start()
    async with await harness.raw() as open_session:
        assert (await open_session.command("EHLO client.test")).startswith("250")

        gw.shutdown()
        await wait_until(
            lambda: all(listener.shutting_down for listener in gw.listeners),
            5,
            what="every listener shutting down",
        )

        async with await RawClient.connect(harness.port) as late:
            assert await late.reply() == str(replies.SHUTTING_DOWN)
            assert await late.closed()

        # the session that was already open can still hand over its message
        assert await open_session.command("MAIL FROM:<app@sender.example>") == str(
            replies.SENDER_OK
        )
        assert await open_session.command("RCPT TO:<bob@example.com>") == str(replies.RECIPIENT_OK)
        assert (await open_session.command("DATA")).startswith("354")
        await open_session.send(
            b"From: App <app@sender.example>\r\nSubject: last\r\n\r\nBye.\r\n.\r\n"
        )
        assert (await open_session.reply()).startswith(f"{replies.QUEUED} ")
        assert (await open_session.command("QUIT")).startswith("221")

    (received,) = await mx.wait_for(1, timeout=10)
    assert received.rcpt_tos == ("bob@example.com",)
