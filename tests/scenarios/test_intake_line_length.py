"""``smtp.max_line_length``: a message line of exactly the limit (bytes, with its CRLF) is
queued unchanged; one byte more refuses the message after the final dot with
``LINE_TOO_LONG`` and queues nothing, and the session goes on.

aiosmtpd's own limit is 1001 bytes; the default of 4096 shows the configured value is the
one enforced, and 2000 that a configured one is.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import config as config_module
from gateway.core import replies
from gateway.core.errors import ConfigError
from tests.fakes.dns_server import FakeDns
from tests.scenarios.harness import GatewayHarness, RawClient, base_config, db_rows

RCPT = "bob@example.com"


def _message(line_length: int) -> bytes:
    """A message whose body has one line of ``line_length`` bytes, CRLF included."""
    head = b"From: App <app@sender.example>\r\nTo: <bob@example.com>\r\nSubject: Long\r\n\r\n"
    long_line = b"x" * (line_length - 2) + b"\r\n"
    return head + b"short line\r\n" + long_line + b"the end\r\n"


async def _send(client: RawClient, content: bytes) -> str:
    assert await client.command("MAIL FROM:<app@sender.example>") == str(replies.SENDER_OK)
    assert (await client.command(f"RCPT TO:<{RCPT}>")).startswith("250 ")
    assert (await client.command("DATA")).startswith("354 ")
    await client.send(content + b".\r\n")
    return await client.reply()


@pytest.mark.parametrize("limit", [None, 2000], ids=["default-4096", "configured-2000"])
async def test_a_line_at_the_limit_is_queued_one_byte_more_is_refused(
    harness: GatewayHarness, limit: int | None
) -> None:
    harness.mx("127.0.0.2", "example.com")
    smtp = {} if limit is None else {"max_line_length": limit}
    gw = await harness.start(serve_only=True, smtp=smtp)
    expected = limit or 4096
    assert gw.config.smtp.max_line_length == expected
    at_limit, over = _message(expected), _message(expected + 1)

    async with await harness.raw() as client:
        await client.command("EHLO client.test")
        assert await _send(client, over) == str(replies.LINE_TOO_LONG)
        assert await harness.queued_count() == 0
        # the same session goes on: the next message, its longest line at the limit, is queued
        reply = await _send(client, at_limit)
        assert reply.startswith(f"{replies.QUEUED} "), reply

    assert await harness.queued_count() == 1
    ((content,),) = db_rows(harness.tmp / "gateway.db", "SELECT content FROM messages")
    assert content.endswith(at_limit)  # after our prepended header lines, the bytes unchanged


def test_a_limit_below_rfc_5321s_1000_bytes_is_a_config_error(
    fake_dns: FakeDns, tmp_path: Path
) -> None:
    raw = base_config(fake_dns, tmp_path, 25, smtp={"max_line_length": 999})
    with pytest.raises(ConfigError) as error:
        config_module.from_dict(raw)
    assert error.value.key == "smtp.max_line_length"
    raw["smtp"]["max_line_length"] = 1000
    assert config_module.from_dict(raw).smtp.max_line_length == 1000
