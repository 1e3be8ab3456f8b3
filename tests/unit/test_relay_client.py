"""The outbound SMTP client against fake MX servers over loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from gateway.config import RelayConfig
from gateway.core.errors import PermanentRelayError, Phase, TransientRelayError
from gateway.core.replies import Reply
from gateway.relay.client import SmtpClient, TransactionResult
from tests.fakes.mx import FakeMx
from tests.waiting import wait_until

HELO = "gw.test"
SENDER = "bounce+tok@gw.test"
CONTENT = (
    b"From: a@gw.test\r\nTo: b@example.test\r\nSubject: hi\r\n\r\n"
    b"line one\r\n.leading dot\r\n.\r\n..two dots\r\nlast\r\n"
)


def config(**overrides: Any) -> RelayConfig:
    base = RelayConfig(
        connect_timeout=timedelta(seconds=2),
        command_timeout=timedelta(seconds=2),
        data_timeout=timedelta(seconds=2),
        idle_timeout=timedelta(seconds=5),
    )
    return replace(base, **overrides)


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., SmtpClient]]:
    clients: list[SmtpClient] = []

    def make(**overrides: Any) -> SmtpClient:
        tls_context = overrides.pop("tls_context", None)
        client = SmtpClient(config(**overrides), HELO, tls_context=tls_context)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture(params=[False, True], ids=["step-by-step", "pipelining"])
def make_mx(
    request: pytest.FixtureRequest, make_mx: Callable[..., FakeMx]
) -> Callable[..., FakeMx]:
    """Every test runs against a server without and with PIPELINING (RFC 2920): the client
    pipelines MAIL, RCPT and DATA when it is offered, with the same results."""

    def make(**kwargs: Any) -> FakeMx:
        kwargs.setdefault("pipelining", request.param)
        return make_mx(**kwargs)

    return make


async def send(
    client: SmtpClient, mx: FakeMx, recipients: list[str], content: bytes = CONTENT, **kw: Any
) -> TransactionResult:
    async with asyncio.timeout(10):
        return await client.send(mx.host, mx.port, SENDER, recipients, content, **kw)


async def send_error(
    client: SmtpClient, mx: FakeMx, recipients: list[str], **kw: Any
) -> TransientRelayError | PermanentRelayError:
    with pytest.raises((TransientRelayError, PermanentRelayError)) as info:
        await send(client, mx, recipients, **kw)
    assert isinstance(info.value, TransientRelayError | PermanentRelayError)
    return info.value


# --- the happy path ---------------------------------------------------------------------------
async def test_accepts_and_delivers_content_byte_for_byte(make_client, make_mx) -> None:
    mx = make_mx()
    result = await send(make_client(), mx, ["b@example.test"])
    assert result.host == mx.host
    assert list(result.accepted) == ["b@example.test"]
    assert result.accepted["b@example.test"].code == 250
    assert result.deferred == {}
    assert result.bounced == {}
    assert result.tls is False
    [message] = await mx.wait_for(1)
    assert message.content == CONTENT  # dot-stuffing undone by the server: nothing lost
    assert message.mail_from == SENDER
    assert message.rcpt_tos == ("b@example.test",)
    assert mx.commands("EHLO") == [HELO]


async def test_esmtp_parameters_size_8bitmime_smtputf8(make_client, make_mx) -> None:
    mx = make_mx()
    content = "Subject: ol\u00e1\r\n\r\nmaçã\r\n".encode()
    result = await send(make_client(), mx, ["jos\u00e9@example.test"], content=content)
    assert list(result.accepted) == ["jos\u00e9@example.test"]
    [message] = await mx.wait_for(1)
    assert f"SIZE={len(content)}" in message.mail_options
    assert "BODY=8BITMIME" in message.mail_options
    assert "SMTPUTF8" in message.mail_options
    assert message.content == content


async def test_null_sender(make_client, make_mx) -> None:
    mx = make_mx()
    async with asyncio.timeout(10):
        result = await make_client().send(mx.host, mx.port, "<>", ["b@example.test"], CONTENT)
    assert list(result.accepted) == ["b@example.test"]
    [message] = await mx.wait_for(1)
    assert message.mail_from == "<>"  # RFC 5321 §4.5.5: the null reverse-path
    assert mx.commands("MAIL") == ["<>"]


async def test_bare_line_endings_cannot_end_the_data_early(make_client, make_mx) -> None:
    # SMTP smuggling: "\n.\n" or "\r.\r" must never be seen as the end of data.
    mx = make_mx()
    content = b"Subject: x\r\n\r\nbefore\n.\nMAIL FROM:<evil@x>\r\nmiddle\r.\rafter\r\n"
    result = await send(make_client(), mx, ["b@example.test"], content=content)
    assert list(result.accepted) == ["b@example.test"]
    [message] = await mx.wait_for(1)
    assert message.content == (
        b"Subject: x\r\n\r\nbefore\r\n.\r\nMAIL FROM:<evil@x>\r\nmiddle\r\n.\r\nafter\r\n"
    )
    assert mx.commands("MAIL") == [SENDER]  # the smuggled command was data, not a command


# --- per-recipient outcomes -------------------------------------------------------------------
async def test_mixed_recipient_replies_partition_in_one_transaction(make_client, make_mx) -> None:
    mx = make_mx()
    rcpts = [
        "ok@example.test",
        "tempfail-1@example.test",
        "permfail-1@example.test",
        "full-1@example.test",
        "toomany-1@example.test",
        "ok2@example.test",
    ]
    result = await send(make_client(), mx, rcpts)
    assert set(result.accepted) == {"ok@example.test", "ok2@example.test"}
    assert result.deferred == {
        "tempfail-1@example.test": Reply(451, "4.3.0", "Temporary failure, try again later"),
        "full-1@example.test": Reply(452, "4.2.2", "Mailbox full"),
        "toomany-1@example.test": Reply(452, "4.5.3", "Too many recipients"),
    }
    assert result.bounced == {"permfail-1@example.test": Reply(550, "5.1.1", "No such user here")}
    [message] = await mx.wait_for(1)
    assert message.rcpt_tos == ("ok@example.test", "ok2@example.test")


async def test_no_recipient_accepted_means_rset_and_no_data(make_client, make_mx) -> None:
    mx = make_mx()
    result = await send(make_client(), mx, ["tempfail-a@example.test", "permfail-b@example.test"])
    assert result.accepted == {}
    assert set(result.deferred) == {"tempfail-a@example.test"}
    assert set(result.bounced) == {"permfail-b@example.test"}
    assert mx.commands("DATA") == []
    assert mx.commands("RSET") == [""]
    assert mx.messages == []


@pytest.mark.parametrize(
    ("local", "bucket", "code"),
    [("dataperm", "bounced", 554), ("datatemp", "deferred", 451)],
)
async def test_reply_after_dot_applies_to_accepted_recipients_only(
    make_client, make_mx, local: str, bucket: str, code: int
) -> None:
    mx = make_mx()
    rcpts = [f"{local}-1@example.test", "ok@example.test", "tempfail-x@example.test"]
    result = await send(make_client(), mx, rcpts)
    assert result.accepted == {}
    partition = getattr(result, bucket)
    assert partition[f"{local}-1@example.test"].code == code
    assert partition["ok@example.test"].code == code
    assert result.deferred["tempfail-x@example.test"].code == 451  # keeps its RCPT reply
    assert mx.messages == []


# --- session-level failures -------------------------------------------------------------------
async def test_421_at_rcpt_fails_the_whole_session(make_client, make_mx) -> None:
    mx = make_mx()
    error = await send_error(make_client(), mx, ["ok@example.test", "421-x@example.test"])
    assert isinstance(error, TransientRelayError)
    assert error.phase is Phase.RCPT
    assert error.reply.code == 421
    assert error.host == mx.host
    assert mx.messages == []


async def test_greeting_554_is_permanent(make_client, make_mx) -> None:
    mx = make_mx(mode="greeting554")
    error = await send_error(make_client(), mx, ["b@example.test"])
    assert isinstance(error, PermanentRelayError)
    assert error.phase is Phase.GREETING
    assert error.reply.code == 554
    assert error.reply.enhanced == "5.7.1"


async def test_greeting_421_is_transient(make_client, make_mx) -> None:
    mx = make_mx(mode="greeting421")
    error = await send_error(make_client(), mx, ["b@example.test"])
    assert isinstance(error, TransientRelayError)
    assert error.phase is Phase.GREETING
    assert error.reply.code == 421


async def test_connection_refused(make_client, make_mx) -> None:
    mx = make_mx()
    mx.set_down()
    error = await send_error(make_client(), mx, ["b@example.test"])
    assert isinstance(error, TransientRelayError)
    assert error.phase is Phase.CONNECT
    assert (error.reply.code, error.reply.enhanced) == (451, "4.4.1")
    assert "refused" in error.reply.text


async def test_drop_after_dot_is_transient_and_ambiguous(make_client, make_mx) -> None:
    mx = make_mx()
    error = await send_error(make_client(), mx, ["drop-1@example.test"])
    assert isinstance(error, TransientRelayError)
    assert error.phase is Phase.DOT
    assert (error.reply.code, error.reply.enhanced) == (451, "4.4.2")


async def test_silent_server_times_out_at_greeting(make_client, make_mx) -> None:
    mx = make_mx(mode="silent")
    client = make_client(command_timeout=timedelta(seconds=0.3))
    started = time.monotonic()
    error = await send_error(client, mx, ["b@example.test"])
    assert time.monotonic() - started < 3
    assert isinstance(error, TransientRelayError)
    assert error.phase is Phase.GREETING
    assert (error.reply.code, error.reply.enhanced) == (451, "4.4.2")
    assert "Timed out" in error.reply.text


async def test_slow_rcpt_times_out(make_client, make_mx) -> None:
    mx = make_mx(slow_delay=3)
    client = make_client(command_timeout=timedelta(seconds=0.3))
    started = time.monotonic()
    error = await send_error(client, mx, ["slow-1@example.test"])
    assert time.monotonic() - started < 2
    assert isinstance(error, TransientRelayError)
    assert error.phase is Phase.RCPT
    assert error.reply.enhanced == "4.4.2"


async def test_slow_rcpt_within_timeout_is_fine(make_client, make_mx) -> None:
    mx = make_mx(slow_delay=0.2)
    result = await send(make_client(), mx, ["slow-1@example.test"])
    assert list(result.accepted) == ["slow-1@example.test"]


@pytest.mark.parametrize("mode", ["malformed", "endless"])
async def test_malformed_or_endless_replies_are_transient_not_a_hang(
    make_client, make_mx, mode: str
) -> None:
    mx = make_mx(mode=mode)
    started = time.monotonic()
    error = await send_error(make_client(), mx, ["b@example.test"])
    assert time.monotonic() - started < 5
    assert isinstance(error, TransientRelayError)
    assert error.phase is Phase.EHLO
    assert (error.reply.code, error.reply.enhanced) == (451, "4.5.0")
    assert "\r" not in error.reply.text
    assert "\n" not in error.reply.text


# --- TLS --------------------------------------------------------------------------------------
async def test_opportunistic_starttls(make_client, make_mx) -> None:
    mx = make_mx(tls=True)
    result = await send(make_client(), mx, ["b@example.test"])
    assert result.tls is True
    [message] = await mx.wait_for(1)
    assert message.tls is True
    assert mx.commands("EHLO") == [HELO, HELO]  # RFC 3207 §4.2: EHLO again after TLS


async def test_verified_starttls_with_server_name(make_client, make_mx) -> None:
    mx = make_mx(tls=True, hostname="mx.example.test")
    client = make_client(tls="required", tls_verify=True, tls_context=mx.client_context())
    result = await send(client, mx, ["b@example.test"], server_name="mx.example.test")
    assert result.tls is True


async def test_opportunistic_falls_back_to_plaintext_when_handshake_fails(
    make_client, make_mx
) -> None:
    mx = make_mx(tls=True, hostname="mx.example.test")
    client = make_client(tls_verify=True, tls_context=mx.client_context())
    result = await send(client, mx, ["b@example.test"], server_name="wrong.example.test")
    assert result.tls is False
    [message] = await mx.wait_for(1)
    assert message.tls is False
    assert mx.connections == 2  # the failed handshake cost one connection


async def test_required_tls_handshake_failure_is_transient(make_client, make_mx) -> None:
    mx = make_mx(tls=True, hostname="mx.example.test")
    client = make_client(tls="required", tls_verify=True, tls_context=mx.client_context())
    error = await send_error(client, mx, ["b@example.test"], server_name="wrong.example.test")
    assert isinstance(error, TransientRelayError)
    assert error.phase is Phase.STARTTLS
    assert (error.reply.code, error.reply.enhanced) == (451, "4.7.5")
    assert mx.messages == []


async def test_required_tls_not_offered_is_transient(make_client, make_mx) -> None:
    mx = make_mx()
    error = await send_error(make_client(tls="required"), mx, ["b@example.test"])
    assert isinstance(error, TransientRelayError)
    assert error.phase is Phase.STARTTLS
    assert (error.reply.code, error.reply.enhanced) == (451, "4.7.5")


async def test_tls_off_never_starts_tls(make_client, make_mx) -> None:
    mx = make_mx(tls=True)
    result = await send(make_client(tls="off"), mx, ["b@example.test"])
    assert result.tls is False


# --- AUTH (smarthost) ---------------------------------------------------------------------------
async def test_auth_to_smarthost_after_starttls(make_client, make_mx) -> None:
    mx = make_mx(tls=True, auth=("relayuser", "s3cret"))
    result = await send(make_client(), mx, ["b@example.test"], auth=("relayuser", "s3cret"))
    assert result.tls is True
    [message] = await mx.wait_for(1)
    assert message.auth_user == "relayuser"


async def test_auth_with_wrong_password_defers(make_client, make_mx) -> None:
    mx = make_mx(tls=True, auth=("relayuser", "s3cret"))
    error = await send_error(make_client(), mx, ["b@example.test"], auth=("relayuser", "nope"))
    assert isinstance(error, TransientRelayError)
    assert error.phase is Phase.AUTH
    assert (error.reply.code, error.reply.enhanced) == (451, "4.7.8"), error.reply
    assert "nope" not in str(error)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_auth_refused_without_tls(make_client, make_mx) -> None:
    mx = make_mx(auth=("relayuser", "s3cret"))  # no STARTTLS offered
    error = await send_error(make_client(), mx, ["b@example.test"], auth=("relayuser", "s3cret"))
    assert isinstance(error, TransientRelayError)
    assert error.phase is Phase.AUTH
    assert error.reply.enhanced == "4.7.11"
    assert mx.commands("AUTH") == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_auth_in_the_clear_when_tls_off(make_client, make_mx) -> None:
    mx = make_mx(auth=("relayuser", "s3cret"))
    client = make_client(tls="off")
    result = await send(client, mx, ["b@example.test"], auth=("relayuser", "s3cret"))
    assert list(result.accepted) == ["b@example.test"]
    [message] = await mx.wait_for(1)
    assert message.auth_user == "relayuser"


# --- connection reuse -------------------------------------------------------------------------
async def test_two_sends_reuse_one_connection_without_rset(make_client, make_mx) -> None:
    # The first transaction ended with the final dot's reply, which resets the server's
    # state (RFC 5321 §4.1.1.4): the second MAIL needs no RSET before it.
    mx = make_mx()
    client = make_client()
    await send(client, mx, ["a@example.test"])
    await send(client, mx, ["b@example.test"])
    await mx.wait_for(2)
    assert mx.connections == 1
    assert mx.commands("EHLO") == [HELO]
    assert mx.commands("RSET") == []
    assert len(mx.commands("MAIL")) == 2
    await client.close()
    await wait_until(lambda: mx.commands("QUIT") == [""], 5, what="one QUIT")


async def test_max_messages_per_connection(make_client, make_mx) -> None:
    mx = make_mx()
    client = make_client(max_messages_per_connection=1)
    await send(client, mx, ["a@example.test"])
    await send(client, mx, ["b@example.test"])
    assert mx.connections == 2
    assert mx.commands("QUIT") == ["", ""]  # each closed politely after its one message


async def test_dead_pooled_connection_is_replaced(make_client, make_mx) -> None:
    mx = make_mx()
    client = make_client()
    await send(client, mx, ["a@example.test"])
    mx.set_down()  # drops the idle session
    mx.set_down(False)
    result = await send(client, mx, ["b@example.test"])
    assert list(result.accepted) == ["b@example.test"]
    assert mx.connections == 2


async def test_idle_connection_expires(make_client, make_mx) -> None:
    mx = make_mx()
    client = make_client(idle_timeout=timedelta(seconds=0.1))
    await send(client, mx, ["a@example.test"])
    await asyncio.sleep(0.3)
    await send(client, mx, ["b@example.test"])
    assert mx.connections == 2


async def test_concurrency_per_destination_is_bounded(make_client, make_mx) -> None:
    mx = make_mx(slow_delay=0.2)
    client = make_client(per_destination_concurrency=1)
    async with asyncio.timeout(10):
        results = await asyncio.gather(
            *(
                client.send(mx.host, mx.port, SENDER, [f"slow-{i}@x.test"], CONTENT)
                for i in range(3)
            )
        )
    assert all(len(r.accepted) == 1 for r in results)
    assert mx.connections == 1


async def test_waiting_for_a_busy_destination_is_not_an_outcome(make_client, make_mx) -> None:
    """The pool's cap makes a send wait for the connection in use, whatever
    ``connect_timeout`` is: no ``451 4.4.5 Too many connections`` is made up (issue 11)."""
    mx = make_mx(slow_delay=1.0)
    client = make_client(per_destination_concurrency=1, connect_timeout=timedelta(seconds=0.2))
    async with asyncio.timeout(10):
        slow = asyncio.ensure_future(
            client.send(mx.host, mx.port, SENDER, ["slow-1@x.test"], CONTENT)
        )
        # the slow send holds the only slot once its RCPT is at the MX
        await wait_until(lambda: "slow-1@x.test" in mx.commands("RCPT"), 5, what="slow RCPT")
        waiting = await send(client, mx, ["b@x.test"])  # waits past connect_timeout
        assert list((await slow).accepted) == ["slow-1@x.test"]
    assert list(waiting.accepted) == ["b@x.test"]
    assert mx.connections == 1  # it took the connection the slow send gave back


async def test_failed_session_is_not_pooled(make_client, make_mx) -> None:
    mx = make_mx()
    client = make_client()
    await send_error(client, mx, ["421-a@example.test"])
    result = await send(client, mx, ["b@example.test"])
    assert list(result.accepted) == ["b@example.test"]
    assert mx.connections == 2


async def test_fakes_on_several_loopback_addresses_share_one_port(make_client, make_mx) -> None:
    first = make_mx(host="127.0.0.2")
    second = make_mx(host="127.0.0.3", port=first.port)
    client = make_client()
    for mx in (first, second):
        async with asyncio.timeout(10):
            await client.send(mx.host, first.port, SENDER, ["a@example.test"], CONTENT)
    assert [m.rcpt_tos for m in await first.wait_for(1)] == [("a@example.test",)]
    assert [m.rcpt_tos for m in await second.wait_for(1)] == [("a@example.test",)]
    assert first.messages[0].peer[0] == "127.0.0.1"


async def test_empty_recipient_list_is_a_bug(make_client, make_mx) -> None:
    mx = make_mx()
    with pytest.raises(ValueError, match="recipient"):
        await send(make_client(), mx, [])


# --- PIPELINING (RFC 2920) ----------------------------------------------------------------------
class _BatchServer(asyncio.Protocol):
    """Offers PIPELINING and answers a whole batch of commands in one write, the way a
    pipelining server may: the client must keep every reply, in order."""

    def __init__(self, chunks: list[bytes], rcpt_replies: dict[str, bytes]) -> None:
        self.chunks = chunks
        self.rcpt_replies = rcpt_replies
        self.buffer = b""
        self.in_data = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b"220 batch.test ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffer += data
        out = b""
        while True:
            if self.in_data:
                end = self.buffer.find(b"\r\n.\r\n")
                if end < 0:
                    break
                self.buffer = self.buffer[end + 5 :]
                self.in_data = False
                out += b"250 2.0.0 queued\r\n"
                continue
            line, sep, rest = self.buffer.partition(b"\r\n")
            if not sep:
                break
            self.buffer = rest
            verb = line[:4].upper()
            if verb == b"EHLO":
                out += b"250-batch.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
            elif verb == b"RCPT":
                address = line.decode().partition("<")[2].rstrip(">")
                out += self.rcpt_replies.get(address, b"250 2.1.5 ok\r\n")
            elif verb == b"DATA":
                self.in_data = True
                out += b"354 go ahead\r\n"
            elif verb == b"QUIT":
                out += b"221 bye\r\n"
            else:
                out += b"250 2.0.0 ok\r\n"
        if out:
            self.transport.write(out)


async def test_pipelining_sends_the_envelope_in_one_write_and_keeps_every_reply(
    make_client,
) -> None:
    chunks: list[bytes] = []
    refused = {
        "temp@example.test": b"451-4.3.0 busy\r\n451 4.3.0 try later\r\n",
        "perm@example.test": b"550 5.1.1 no such user\r\n",
    }
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _BatchServer(chunks, refused), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = make_client()
    rcpts = ["a@example.test", "temp@example.test", "b@example.test", "perm@example.test"]
    try:
        async with asyncio.timeout(10):
            for _ in range(2):  # the second on the reused connection
                chunks.clear()
                result = await client.send("127.0.0.1", port, SENDER, rcpts, CONTENT)
                assert set(result.accepted) == {"a@example.test", "b@example.test"}
                assert result.deferred["temp@example.test"].code == 451
                assert result.bounced["perm@example.test"].code == 550
                envelope = next(c for c in chunks if c.startswith(b"MAIL"))
                assert envelope.count(b"RCPT TO:") == 4
                assert envelope.endswith(b"DATA\r\n")
    finally:
        await client.close()
        server.close()
        await server.wait_closed()
