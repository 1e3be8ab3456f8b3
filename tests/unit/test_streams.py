"""Streams and scopes as plain functions (issue 15 item 3): reading and removing
``X-Gateway-Stream`` on bytes, which scope stops which stream, what each setting decides."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.core.streams import (
    ComplaintScope,
    Scope,
    Stream,
    StreamSettings,
    applies,
    duration_text,
    parse_stream,
    scope_of,
)
from gateway.mail.stream_header import stream_values, without_stream_header
from gateway.smtp_in.streams import BAD_STREAM, read_stream

HEAD = b"From: App <app@sender.example>\r\nSubject: News\r\n"


@pytest.mark.parametrize(
    ("raw", "values", "kept"),
    [
        (HEAD + b"\r\nbody\r\n", [], HEAD + b"\r\nbody\r\n"),
        (
            b"X-Gateway-Stream: marketing\r\n" + HEAD + b"\r\nbody\r\n",
            ["marketing"],
            HEAD + b"\r\nbody\r\n",
        ),
        # Folded, odd case, in the middle; the body's same words stay.
        (
            b"From: a@b.example\r\nx-GATEWAY-stream:\r\n\t marketing \r\nSubject: s\r\n\r\n"
            b"X-Gateway-Stream: marketing\r\n",
            ["marketing"],
            b"From: a@b.example\r\nSubject: s\r\n\r\nX-Gateway-Stream: marketing\r\n",
        ),
        # Bare LF line endings stay bare.
        (
            b"From: a@b.example\nX-Gateway-Stream: transactional\n\nhi\n",
            ["transactional"],
            b"From: a@b.example\n\nhi\n",
        ),
        # Two fields: both read, both removed.
        (
            b"X-Gateway-Stream: marketing\r\nX-Gateway-Stream: promo\r\n\r\nx",
            ["marketing", "promo"],
            b"\r\nx",
        ),
        # A header whose name only starts the same is not ours.
        (
            b"X-Gateway-Streams: marketing\r\n\r\nx",
            [],
            b"X-Gateway-Streams: marketing\r\n\r\nx",
        ),
    ],
)
def test_the_header_is_read_and_cut_on_bytes(raw: bytes, values: list[str], kept: bytes) -> None:
    assert stream_values(raw) == values
    assert without_stream_header(raw) == kept


def test_read_stream_decides_the_stream_and_refuses_what_names_none() -> None:
    plain = HEAD + b"\r\nx"
    assert read_stream(plain, Stream.MARKETING).stream is Stream.MARKETING
    assert read_stream(plain, Stream.MARKETING).content is plain
    named = read_stream(b"X-Gateway-Stream: Marketing \r\n" + plain, Stream.TRANSACTIONAL)
    assert (named.stream, named.content, named.reply) == (Stream.MARKETING, plain, None)
    agreeing = b"X-Gateway-Stream: marketing\r\nX-Gateway-Stream: marketing\r\n" + plain
    assert read_stream(agreeing, Stream.TRANSACTIONAL).stream is Stream.MARKETING
    for bad in (b"X-Gateway-Stream: promo\r\n", b"X-Gateway-Stream: marketing\r\n"
                b"X-Gateway-Stream: transactional\r\n", b"X-Gateway-Stream:\r\n"):  # fmt: skip
        read = read_stream(bad + plain, Stream.TRANSACTIONAL)
        assert read.reply == BAD_STREAM
        assert (read.reply.code, read.reply.enhanced) == (550, "5.6.0")


def test_which_scope_stops_which_stream() -> None:
    assert applies(Scope.ALL, Stream.TRANSACTIONAL)
    assert applies(Scope.ALL, Stream.MARKETING)
    assert applies(Scope.MARKETING, Stream.MARKETING)
    assert not applies(Scope.MARKETING, Stream.TRANSACTIONAL)
    assert not applies(Scope.TRANSACTIONAL, Stream.MARKETING)
    assert scope_of(Stream.MARKETING) is Scope.MARKETING
    assert parse_stream(" TRANSACTIONAL ") is Stream.TRANSACTIONAL
    assert parse_stream("all") is None


def test_settings_decide_the_default_stream_and_a_complaints_scope() -> None:
    default = StreamSettings()
    assert default.stream_for(None) is Stream.TRANSACTIONAL
    assert default.complaint(Stream.MARKETING) is Scope.MARKETING
    own = StreamSettings(
        default_stream=Stream.MARKETING,
        complaint_scope=ComplaintScope.ALL,
        logins=(("billing", Stream.TRANSACTIONAL),),
    )
    assert own.stream_for("billing") is Stream.TRANSACTIONAL
    assert own.stream_for("news") is Stream.MARKETING
    assert own.stream_for(None) is Stream.MARKETING
    assert own.complaint(Stream.TRANSACTIONAL) is Scope.ALL


@pytest.mark.parametrize(
    ("length", "text"),
    [
        (None, None),
        (timedelta(days=30), "30d"),
        (timedelta(hours=36), "36h"),
        (timedelta(minutes=90), "90m"),
        (timedelta(seconds=45), "45s"),
        (timedelta(seconds=1.5), "1.5s"),
    ],
)
def test_durations_are_shown_as_the_config_writes_them(
    length: timedelta | None, text: str | None
) -> None:
    assert duration_text(length) == text
