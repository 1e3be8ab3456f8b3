"""The private internals of aiosmtpd, aiosmtplib and aiosqlite that the gateway relies on.

pyproject.toml bounds these three libraries from above; before a bound is raised, these
tests must pass against the new release. Each test checks one internal, by using it the way
the gateway does where that is cheap, and fails with a message that names the library, its
installed version and the internal, so an upgrade that breaks one says where to look.
"""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
from importlib.metadata import version

import aiosmtplib
import aiosqlite
import pytest
from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session

from tests.fakes.mx import FakeMx


def _where(library: str, internal: str, used_by: str) -> str:
    return (
        f"{library} {version(library)}: the private internal {internal}, used by {used_by},"
        " is gone or changed; adapt the gateway before raising the bound in pyproject.toml"
    )


# --- aiosmtpd: gateway/smtp_in/server.py subclasses SMTP and overrides or calls these.


@pytest.mark.parametrize(
    ("name", "is_coroutine", "parameters"),
    [
        ("_handle_client", True, ["self"]),
        ("_call_handler_hook", True, ["self", "command"]),
        ("_getaddr", False, ["self", "arg"]),
        ("_strip_command_keyword", False, ["self", "keyword", "arg"]),
        ("_getparams", False, ["self", "params"]),
        ("check_helo_needed", True, None),
        ("check_auth_needed", True, None),
        ("push", True, ["self", "status"]),
        # gateway/smtp_in/guard.py (issue 14): timeouts, sessions, the command table
        ("_timeout_cb", False, ["self"]),
        ("_reset_timeout", False, ["self", "duration"]),
        ("_create_session", False, ["self"]),
        ("handle_exception", True, ["self", "error"]),
    ],
)
def test_aiosmtpd_smtp_methods(name: str, is_coroutine: bool, parameters: list[str] | None) -> None:
    where = _where("aiosmtpd", f"SMTP.{name}", "gateway/smtp_in/server.py")
    method = getattr(SMTP, name, None)
    assert method is not None, where
    assert inspect.iscoroutinefunction(method) is is_coroutine, where
    if parameters is not None:
        signature = inspect.signature(method)
        named = [p.name for p in signature.parameters.values() if p.kind is not p.VAR_POSITIONAL]
        assert named == parameters, f"{where} (signature now {signature})"


async def test_aiosmtpd_guard_internals() -> None:
    """gateway/smtp_in/guard.py reads ``_timeout_duration``, adds HTTP verbs to
    ``_smtp_methods``, cancels ``_handler_coroutine`` and looks into the reader's
    ``_buffer`` (pipelining before the EHLO reply)."""
    where = _where("aiosmtpd", "SMTP's session internals", "gateway/smtp_in/guard.py")
    server = SMTP(object(), hostname="internals.test", timeout=7)
    assert server._timeout_duration == 7, where
    assert isinstance(server._smtp_methods, dict), where
    assert "EHLO" in server._smtp_methods, where
    assert hasattr(server, "_handler_coroutine"), where
    assert "self._handler_coroutine = self.loop.create_task" in inspect.getsource(
        SMTP.connection_made
    ), where
    reader = asyncio.StreamReader()
    reader.feed_data(b"MAIL FROM:<>\r\n")
    assert len(reader._buffer) == len(b"MAIL FROM:<>\r\n"), where


def test_aiosmtpd_line_length_limit_is_read_per_instance() -> None:
    """``smtp.max_line_length``: server.py sets ``line_length_limit`` on the instance before
    ``SMTP.__init__``, which sizes the StreamReader with it; ``smtp_DATA`` reads it per line."""
    where = _where("aiosmtpd", "SMTP.line_length_limit", "gateway/smtp_in/server.py")
    assert isinstance(getattr(SMTP, "line_length_limit", None), int), where
    assert "self.line_length_limit" in inspect.getsource(SMTP.__init__), where
    assert "self.line_length_limit" in inspect.getsource(SMTP.smtp_DATA), where


async def test_aiosmtpd_getaddr_returns_address_and_rest() -> None:
    """The gateway's _getaddr fast path returns what aiosmtpd's does: (address, rest)."""
    server = SMTP(object(), hostname="internals.test")
    where = _where("aiosmtpd", "SMTP._getaddr's (address, rest) result", "server.py")
    assert server._getaddr("<ana@example.com> SIZE=10") == ("ana@example.com", "SIZE=10"), where
    assert server._strip_command_keyword("TO:", "TO:<a@b.test>") == "<a@b.test>", _where(
        "aiosmtpd", "SMTP._strip_command_keyword", "server.py"
    )


async def test_aiosmtpd_session_and_envelope_attributes() -> None:
    """gateway/smtp_in/handler.py reads these from aiosmtpd's session and envelope objects."""
    session = Session(asyncio.get_running_loop())
    for attribute in ("peer", "authenticated", "auth_data", "host_name", "ssl"):
        assert hasattr(session, attribute), _where(
            "aiosmtpd", f"Session.{attribute}", "gateway/smtp_in/handler.py"
        )
    envelope = Envelope()
    for attribute in ("mail_from", "rcpt_tos", "original_content", "mail_options"):
        assert hasattr(envelope, attribute), _where(
            "aiosmtpd", f"Envelope.{attribute}", "gateway/smtp_in/handler.py"
        )
    assert MISSING is not None, _where("aiosmtpd", "smtp.MISSING", "gateway/smtp_in/handler.py")


# --- aiosmtplib: gateway/relay/client.py writes DATA and pipelined commands on the
# connection's protocol object itself.


def test_aiosmtplib_quote_address() -> None:
    from aiosmtplib.email import quote_address

    assert quote_address("ana@example.com") == "<ana@example.com>", _where(
        "aiosmtplib", "aiosmtplib.email.quote_address", "gateway/relay/client.py"
    )


async def test_aiosmtplib_protocol_write_and_read_response() -> None:
    """The relay reads ``SMTP.protocol``, writes raw bytes with ``protocol.write`` and reads
    one reply with ``protocol.read_response(timeout=…)``; a pipelined transaction swaps the
    transport's protocol (``protocol.transport``) for its own and back."""
    mx = FakeMx(host="127.0.0.2", hostname="mx-internals.test").start()
    smtp = aiosmtplib.SMTP(hostname="127.0.0.2", port=mx.port, timeout=5)
    try:
        await smtp.connect()
        protocol = smtp.protocol
        where = _where("aiosmtplib", "SMTP.protocol", "gateway/relay/client.py")
        assert protocol is not None, where
        transport = protocol.transport
        assert isinstance(transport, asyncio.BaseTransport), _where(
            "aiosmtplib", "SMTPProtocol.transport", "gateway/relay/client.py"
        )
        assert "timeout" in inspect.signature(protocol.read_response).parameters, _where(
            "aiosmtplib", "SMTPProtocol.read_response(timeout=)", "gateway/relay/client.py"
        )
        protocol.write(b"NOOP\r\n")
        response = await protocol.read_response(timeout=5)
        assert response.code == 250, _where(
            "aiosmtplib", "SMTPProtocol.write/read_response", "gateway/relay/client.py"
        )
        assert smtp.is_connected
    finally:
        smtp.close()
        mx.stop()


# --- aiosqlite: gateway/store/sqlite.py runs plain sqlite3 code in the connection's thread.


async def test_aiosqlite_execute_runs_a_function_on_the_connection() -> None:
    where = _where("aiosqlite", "Connection._execute(fn, *args) and Connection._conn",
                   "gateway/store/sqlite.py (_on)")
    async with aiosqlite.connect(":memory:") as db:
        assert inspect.iscoroutinefunction(db._execute), where
        conn = db._conn
        assert isinstance(conn, sqlite3.Connection), where

        def work(connection: sqlite3.Connection, value: int) -> int:
            return int(connection.execute("SELECT ? + 1", (value,)).fetchone()[0])

        assert await db._execute(work, conn, 41) == 42, where
