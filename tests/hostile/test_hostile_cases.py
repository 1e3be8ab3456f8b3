"""The hostile-client table (issue 14): each case its bytes, the replies expected, and how
many messages may reach the raw sink behind the relay.

Every case runs against a fresh gateway (``conftest.start``) from its own source address:
127.0.0.1 is the only trusted client, 127.0.1.2 an untrusted one. A step either sends bytes,
expects one whole reply (a ``Reply`` constant, compared whole, or a bare code for aiosmtpd's
own sentences), sleeps, or expects the connection closed. With ``HOSTILE_TABLE=path`` set,
each case appends its row (case, expected, observed) to that file, for the issue's table.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from gateway.core import replies, verp
from gateway.core.replies import Reply
from tests.hostile.conftest import TRUSTED, UNTRUSTED, Start
from tests.hostile.wire import RawClient, RawSink
from tests.scenarios.harness import SECRET, GatewayHarness
from tests.waiting import wait_until

BOUNCES = "bounces.gateway.test"


@dataclass(frozen=True)
class Send:
    data: bytes


@dataclass(frozen=True)
class Expect:
    reply: Reply | int  # a constant (whole reply, or its start for QUEUED) or a bare code
    timeout: float = 5


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Closed:
    timeout: float = 5


Step = Send | Expect | Sleep | Closed
After = Callable[[GatewayHarness, RawSink], Awaitable[None]]


@dataclass(frozen=True)
class Case:
    name: str
    steps: tuple[Step, ...]
    # messages that must reach the raw sink (and no more); None: the ``after`` check counts
    sink: int | None = 0
    source: str = UNTRUSTED
    smtp: dict[str, Any] = field(default_factory=dict)
    greet: bool = True  # read the greeting before the first step
    after: After | None = None


def cmd(line: str | bytes) -> Send:
    return Send((line.encode() if isinstance(line, str) else line) + b"\r\n")


EHLO = (cmd("EHLO client.test"), Expect(250))
MESSAGE = b"From: App <app@sender.example>\r\nTo: bob@example.com\r\nSubject: t\r\n\r\nHello.\r\n"


def transaction(content: bytes, result: Reply) -> tuple[Step, ...]:
    """EHLO, MAIL, RCPT bob@example.com, DATA with ``content``, then ``result``."""
    return (
        *EHLO,
        cmd("MAIL FROM:<app@sender.example>"),
        Expect(replies.SENDER_OK),
        cmd("RCPT TO:<bob@example.com>"),
        Expect(replies.RECIPIENT_OK),
        cmd("DATA"),
        Expect(354),
        Send(content + b".\r\n"),
        Expect(result),
    )


def received_lines(count: int) -> bytes:
    return b"".join(
        b"Received: from hop%d.example by hop%d.example; Mon, 7 Dec 2026 08:00:00 +0000\r\n"
        % (i, i + 1)
        for i in range(count)
    )


SMUGGLED = (
    b"MAIL FROM:<ceo@sender.example>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\n"
    b"From: CEO <ceo@sender.example>\r\nSubject: smuggled\r\n\r\nPay.\r\n"
)
UNSUBSCRIBE = "u+" + verp.make_unsubscribe_token("default", "bob@example.com", SECRET.encode())
LONG_LOCAL = "x" * 65


async def _budget_recorded(harness: GatewayHarness, sink: RawSink) -> None:
    """20 refusals recorded one by one, the other 30 in one summary event."""
    assert harness.gw is not None

    async def summary() -> list[Any] | None:
        events = await harness.events("nobody@nomx.example")
        return events if len(events) == 21 else None

    events: list[Any] = await wait_until(summary, 5, what="the refusals' summary event")
    assert [e.details.get("unrecorded_refusals") for e in events].count("30") == 1, [
        (e.details, e.text) for e in events
    ][-3:]


async def _postmaster_delivered(harness: GatewayHarness, sink: RawSink) -> None:
    async def delivered() -> bool:
        return len(sink.messages) == 1

    await wait_until(delivered, 10, what="postmaster mail at the sink")
    assert sink.messages[0].rcpt_tos == [b"<ops@example.com>"]


async def _smuggled_stays_inside(harness: GatewayHarness, sink: RawSink) -> None:
    async def delivered() -> bool:
        return len(sink.messages) == 1

    await wait_until(delivered, 10, what="one message at the sink")
    await asyncio.sleep(0.3)  # a smuggled second message would have arrived by now
    (message,) = sink.messages
    assert message.rcpt_tos == [b"<bob@example.com>"]
    # Out: no end of data inside what the relay sent, in any form a receiver might read as
    # one: bare LF and CR are CRLF on the wire and the dot line is stuffed.
    assert b"\r\n.\r\n" not in message.raw
    assert b"\n.\n" not in message.raw.replace(b"\r\n", b"")
    assert b"\r\n..\r\n" in message.raw


async def _hundred_delivered(harness: GatewayHarness, sink: RawSink) -> None:
    """The 100 accepted recipients reach the sink (in as many transactions as the relay's
    shaping makes), the 50 refused ones do not."""

    async def all_there() -> list[bytes] | None:
        rcpts = [r for m in sink.messages for r in m.rcpt_tos]
        return rcpts if len(rcpts) >= 100 else None

    rcpts = await wait_until(all_there, 10, what="100 recipients at the sink")
    assert sorted(rcpts) == sorted(b"<bob%d@example.com>" % i for i in range(100))


CASES = [
    # --- discipline ---------------------------------------------------------------------------
    Case(
        "early talker (untrusted)",
        (cmd("EHLO client.test"), Expect(replies.EARLY_TALKER), Closed()),
        greet=False,
    ),
    Case(
        "early talker (trusted) is served",
        (cmd("EHLO client.test"), Expect(220), Expect(250)),
        source=TRUSTED,
        greet=False,
    ),
    Case(
        "pipelining before the EHLO reply (untrusted)",
        (
            Send(b"EHLO client.test\r\nMAIL FROM:<>\r\n"),
            Expect(replies.PIPELINING_BEFORE_EHLO),
            Closed(),
        ),
    ),
    Case(
        "pipelining before the EHLO reply (trusted) is honoured",
        (
            Send(b"EHLO client.test\r\nMAIL FROM:<app@sender.example>\r\n"),
            Expect(250),
            Expect(replies.SENDER_OK),
        ),
        source=TRUSTED,
    ),
    Case(
        "pipelining after EHLO (untrusted, RFC 2920)",
        (
            *EHLO,
            Send(b"MAIL FROM:<>\r\nRCPT TO:<nobody@" + BOUNCES.encode() + b">\r\nRSET\r\n"),
            Expect(replies.SENDER_OK),
            Expect(replies.BOUNCE_TOKEN_INVALID),
            Expect(250),
        ),
    ),
    Case(
        "HTTP GET",
        (Send(b"GET / HTTP/1.1\r\nHost: gateway.test\r\n\r\n"), Expect(replies.NOT_SMTP), Closed()),
    ),
    Case(
        "HTTP POST (trusted)",
        (Send(b"POST /x HTTP/1.1\r\n"), Expect(replies.NOT_SMTP), Closed()),
        source=TRUSTED,
    ),
    Case(
        "HTTP CONNECT",
        (Send(b"CONNECT mx.example:25 HTTP/1.1\r\n"), Expect(replies.NOT_SMTP), Closed()),
    ),
    Case(
        "HTTP Host: after EHLO",
        (*EHLO, Send(b"Host: gateway.test\r\n"), Expect(replies.NOT_SMTP), Closed()),
    ),
    Case(
        "AUTH inside a transaction",
        (
            *EHLO,
            cmd("MAIL FROM:<app@sender.example>"),
            Expect(replies.SENDER_OK),
            cmd("AUTH PLAIN AGFjbWUAcHc="),
            Expect(replies.AUTH_IN_TRANSACTION),
        ),
        source=TRUSTED,
    ),
    # --- already held before issue 14 ---------------------------------------------------------
    Case(
        "open relay attempt (untrusted, no AUTH)",
        (
            *EHLO,
            cmd("MAIL FROM:<ceo@sender.example>"),
            Expect(replies.SENDER_OK),
            cmd("RCPT TO:<victim@example.com>"),
            Expect(replies.AUTH_REQUIRED),
            cmd("DATA"),
            Expect(503),
        ),
    ),
    Case(
        "AUTH before STARTTLS",
        (*EHLO, cmd("AUTH PLAIN AGFjbWUAcHc="), Expect(replies.AUTH_NEEDS_TLS)),
    ),
    Case(
        "bare CR inside a MAIL argument",
        (
            *EHLO,
            Send(b"MAIL FROM:<a@sender.example>\rRCPT TO:<x@example.com>\r\n"),
            Expect(replies.BAD_CHARACTERS),
        ),
        source=TRUSTED,
    ),
    # --- input checks -------------------------------------------------------------------------
    Case(
        "MAIL FROM:<> SIZE=abc", (*EHLO, cmd("MAIL FROM:<> SIZE=abc"), Expect(replies.SIZE_SYNTAX))
    ),
    Case(
        "MAIL FROM:<> SIZE=99999999999",
        (*EHLO, cmd("MAIL FROM:<> SIZE=99999999999"), Expect(replies.MESSAGE_TOO_BIG)),
    ),
    Case(
        "MAIL FROM:<a@b> SIZE=abc",
        (*EHLO, cmd("MAIL FROM:<app@sender.example> SIZE=abc"), Expect(replies.SIZE_SYNTAX)),
        source=TRUSTED,
    ),
    Case(
        "RCPT local part of 65 octets",
        (
            *EHLO,
            cmd("MAIL FROM:<app@sender.example>"),
            Expect(replies.SENDER_OK),
            cmd(f"RCPT TO:<{LONG_LOCAL}@example.com>"),
            Expect(replies.LOCAL_PART_TOO_LONG),
        ),
        source=TRUSTED,
    ),
    Case(
        "MAIL local part of 65 octets",
        (*EHLO, cmd(f"MAIL FROM:<{LONG_LOCAL}@sender.example>"), Expect(replies.SENDER_SYNTAX)),
        source=TRUSTED,
    ),
    Case(
        "non-ASCII MAIL without SMTPUTF8",
        (
            *EHLO,
            cmd("MAIL FROM:<józef@sender.example>".encode()),
            Expect(replies.ADDRESS_NEEDS_SMTPUTF8),
        ),
        source=TRUSTED,
    ),
    Case(
        "non-ASCII RCPT without SMTPUTF8",
        (
            *EHLO,
            cmd("MAIL FROM:<app@sender.example>"),
            Expect(replies.SENDER_OK),
            cmd("RCPT TO:<józef@example.com>".encode()),
            Expect(replies.ADDRESS_NEEDS_SMTPUTF8),
        ),
        source=TRUSTED,
    ),
    Case(
        "a bounce address given twice",
        (
            *EHLO,
            cmd("MAIL FROM:<>"),
            Expect(replies.SENDER_OK),
            cmd(f"RCPT TO:<{UNSUBSCRIBE}@{BOUNCES}>"),
            Expect(replies.BOUNCE_ACCEPTED),
            cmd(f"RCPT TO:<{UNSUBSCRIBE}@{BOUNCES}>"),
            Expect(replies.BOUNCE_REPEATED),
        ),
    ),
    Case(
        "postmaster@ the bounce domain (untrusted), delivered",
        (
            *EHLO,
            cmd("MAIL FROM:<someone@remote.example>"),
            Expect(replies.SENDER_OK),
            cmd(f"RCPT TO:<postmaster@{BOUNCES}>"),
            Expect(replies.RECIPIENT_OK),
            cmd("DATA"),
            Expect(354),
            Send(b"From: someone@remote.example\r\nSubject: hello postmaster\r\n\r\nHi.\r\n.\r\n"),
            Expect(replies.QUEUED),
        ),
        sink=1,
        smtp={"postmaster_address": "ops@example.com"},
        after=_postmaster_delivered,
    ),
    Case(
        "Postmaster@ the host name",
        (
            *EHLO,
            cmd("MAIL FROM:<>"),
            Expect(replies.SENDER_OK),
            cmd("RCPT TO:<Postmaster@gateway.test>"),
            Expect(replies.RECIPIENT_OK),
        ),
        smtp={"postmaster_address": "ops@example.com"},
    ),
    Case(
        "postmaster@ without smtp.postmaster_address",
        (
            *EHLO,
            cmd("MAIL FROM:<>"),
            Expect(replies.SENDER_OK),
            cmd(f"RCPT TO:<postmaster@{BOUNCES}>"),
            Expect(replies.NO_POSTMASTER),
        ),
    ),
    # --- content --------------------------------------------------------------------------------
    Case(
        "51 Received: lines",
        transaction(received_lines(51) + MESSAGE, replies.TOO_MANY_HOPS),
        source=TRUSTED,
    ),
    Case(
        "50 Received: lines",
        transaction(received_lines(50) + MESSAGE, replies.QUEUED),
        sink=1,
        source=TRUSTED,
    ),
    Case(
        "CRLF NUL . CRLF in DATA",
        transaction(MESSAGE + b"\x00.\r\nMAIL FROM:<x@y>\r\n", replies.NUL_IN_DATA),
        source=TRUSTED,
    ),
    Case(
        "NUL inside a line",
        transaction(MESSAGE + b"a\x00b\r\n", replies.NUL_IN_DATA),
        source=TRUSTED,
    ),
    Case(
        "smuggling: LF.CRLF with a second transaction inside, in and out",
        (
            *transaction(MESSAGE[:-2] + b"\n.\r\n" + SMUGGLED, replies.QUEUED),
            cmd("NOOP"),
            Expect(250),
        ),
        sink=1,
        source=TRUSTED,
        after=_smuggled_stays_inside,
    ),
    Case(
        "smuggling: CR.CR",
        (
            *transaction(MESSAGE[:-2] + b"\r.\r" + SMUGGLED, replies.QUEUED),
            cmd("NOOP"),
            Expect(250),
        ),
        sink=1,
        source=TRUSTED,
    ),
    # --- error budget ---------------------------------------------------------------------------
    Case(
        "50 refused RCPTs from a trusted client, pipelined",
        (
            *EHLO,
            cmd("MAIL FROM:<app@sender.example>"),
            Expect(replies.SENDER_OK),
            Send(b"RCPT TO:<nobody@nomx.example>\r\n" * 200),
            *(Expect(replies.NO_SUCH_DOMAIN),) * 50,
            Expect(replies.TOO_MANY_ERRORS),
            Closed(),
        ),
        source=TRUSTED,
        after=_budget_recorded,
    ),
    Case(
        "300 RCPTs from a trusted client, pipelined",
        (
            *EHLO,
            cmd("MAIL FROM:<app@sender.example>"),
            Expect(replies.SENDER_OK),
            Send(b"".join(b"RCPT TO:<bob%d@example.com>\r\n" % i for i in range(300))),
            *(Expect(replies.RECIPIENT_OK),) * 100,  # smtp.max_recipients
            # as many again are the overshoot RFC 5321 allows, then 50 count as errors
            *(Expect(replies.TOO_MANY_RECIPIENTS),) * 150,
            Expect(replies.TOO_MANY_ERRORS),
            Closed(),
        ),
        source=TRUSTED,
    ),
    Case(
        "150 RCPTs: the first 100 still sent",
        (
            *EHLO,
            cmd("MAIL FROM:<app@sender.example>"),
            Expect(replies.SENDER_OK),
            Send(b"".join(b"RCPT TO:<bob%d@example.com>\r\n" % i for i in range(150))),
            *(Expect(replies.RECIPIENT_OK),) * 100,
            *(Expect(replies.TOO_MANY_RECIPIENTS),) * 50,
            cmd("DATA"),
            Expect(354),
            Send(MESSAGE + b".\r\n"),
            Expect(replies.QUEUED),
        ),
        sink=None,
        source=TRUSTED,
        after=_hundred_delivered,
    ),
    Case(
        "bad bounce tokens from an untrusted client",
        (
            *EHLO,
            cmd("MAIL FROM:<>"),
            Expect(replies.SENDER_OK),
            Send(f"RCPT TO:<x@{BOUNCES}>\r\n".encode() * 100),
            *(Expect(replies.BOUNCE_TOKEN_INVALID),) * 50,
            Expect(replies.TOO_MANY_ERRORS),
            Closed(),
        ),
    ),
    # --- time -------------------------------------------------------------------------------------
    Case(
        "idle past command_timeout",
        (*EHLO, Expect(replies.IDLE_TIMEOUT, 4), Closed()),
        smtp={"command_timeout": "1s"},
    ),
    Case(
        "NOOP every 0.4 s past session_lifetime",
        (
            *EHLO,
            Sleep(0.4),
            cmd("NOOP"),
            Expect(250),
            Sleep(0.4),
            cmd("NOOP"),
            Expect(250),
            Expect(replies.SESSION_TOO_LONG, 4),
            Closed(),
        ),
        smtp={"session_lifetime": "1.2s"},
    ),
    Case(
        "DATA below min_data_rate",
        (
            *transaction(b"", replies.DATA_TOO_SLOW)[:-2],
            Send(b"From: App <app@sender.example>\r\n"),
            Sleep(0.6),
            Send(b"Subject: slow\r\n"),
            Sleep(0.6),
            Send(b"X: y\r\n"),
            Expect(replies.DATA_TOO_SLOW, 4),
            Closed(),
        ),
        source=TRUSTED,
        smtp={"command_timeout": "2s", "min_data_rate": 1000},
    ),
]


def _row(case: Case, expected: list[str], observed: list[str]) -> None:
    path = os.environ.get("HOSTILE_TABLE")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps([case.name, expected, observed]) + "\n")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_hostile_case(case: Case, start: Start, sink: RawSink) -> None:
    harness = await start(**case.smtp)
    client = await RawClient.connect(harness.port, case.source)
    expected: list[str] = []
    observed: list[str] = []
    try:
        if case.greet:
            assert (await client.reply()).startswith("220 ")
        for step in case.steps:
            if isinstance(step, Send):
                await client.send(step.data)
            elif isinstance(step, Sleep):
                await asyncio.sleep(step.seconds)
            elif isinstance(step, Closed):
                expected.append("closed")
                observed.append("closed" if await client.closed(step.timeout) else "open")
            else:
                want = step.reply
                expected.append(str(want))
                try:
                    got = (await client.reply(step.timeout)).splitlines()[-1]
                except ConnectionError:
                    got = "closed"
                observed.append(got)
                if isinstance(want, int):
                    assert got[:3] == str(want), (case.name, expected, observed)
                elif want is replies.QUEUED:
                    assert got.startswith(f"{want} "), (case.name, expected, observed)
                else:
                    assert got == str(want), (case.name, expected, observed)
    finally:
        _row(case, _compact(expected), _compact(observed))
        await client.close()
    if case.after is not None:
        await case.after(harness, sink)
    expected_count = case.sink
    if expected_count:

        async def arrived() -> bool:
            return len(sink.messages) >= expected_count

        await wait_until(arrived, 10, what=f"{expected_count} message(s) at the sink")
    elif expected_count == 0:
        await asyncio.sleep(0.3)  # the relay is woken at once: anything queued goes now
        assert await harness.queued_count() == 0
    if expected_count is not None:
        assert len(sink.messages) == expected_count
    assert all(b"\x00" not in m.raw for m in sink.messages)


def _compact(lines: list[str]) -> list[str]:
    """Runs of one reply as "reply ×n" (the error-budget cases send 50 of one)."""
    out: list[str] = []
    for line in lines:
        if out and out[-1].split(" ×")[0] == line:
            head, _, count = out[-1].partition(" ×")
            out[-1] = f"{head} ×{int(count or 1) + 1}"
        else:
            out.append(line)
    return out
