"""Hostile and malformed input: parse_bounce never raises and its work stays bounded."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.bounce import mime, parse_bounce
from gateway.bounce.report import KINDS

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(raw: bytes) -> None:
    reports = parse_bounce(raw)
    assert isinstance(reports, list)
    for report in reports:
        assert report.kind in KINDS
        assert len(report.diagnostic) <= 1000
        if report.recipient is not None:
            assert report.recipient == report.recipient.lower()


@SETTINGS
@given(st.binary(max_size=4096))
def test_arbitrary_bytes(raw: bytes) -> None:
    _check(raw)


_HEADER_NAMES = st.sampled_from(
    [
        "Content-Type",
        "Content-Transfer-Encoding",
        "From",
        "To",
        "Subject",
        "Auto-Submitted",
        "X-Failed-Recipients",
        "Final-Recipient",
        "Status",
        "Diagnostic-Code",
        "Action",
    ]
)
_VALUES = st.one_of(
    st.sampled_from(
        [
            "multipart/report; report-type=delivery-status; boundary=B",
            'multipart/mixed; boundary="B"',
            "message/delivery-status",
            "message/feedback-report",
            "message/rfc822",
            "base64",
            "quoted-printable",
            "rfc822; a@b.example",
            "5.1.1",
            "smtp; 550 5.1.1 user unknown",
            "=?utf-8?b?!!!?=",
            "text/plain; charset=x-unknown-charset",
        ]
    ),
    st.text(max_size=80),
)


@st.composite
def mime_like(draw: st.DrawFn) -> bytes:
    """Messages assembled from MIME-ish pieces: wrong boundaries, bad base64, odd fields."""
    lines = [f"{draw(_HEADER_NAMES)}: {draw(_VALUES)}" for _ in range(draw(st.integers(0, 8)))]
    body = draw(
        st.lists(
            st.one_of(
                st.sampled_from(
                    ["--B", "--B--", "--C", "", "====", "QUJD!!", "Final-Recipient: x"]
                ),
                st.text(max_size=60),
            ),
            max_size=20,
        )
    )
    text = "\n".join(lines) + "\n\n" + "\n".join(body)
    return text.encode("utf-8", "surrogatepass")


@SETTINGS
@given(mime_like())
def test_malformed_mime(raw: bytes) -> None:
    _check(raw)


def _nested(depth: int) -> bytes:
    raw = b"Content-Type: text/plain\n\n550 5.1.1 <a@b.example>: user unknown\n"
    for level in range(depth):
        boundary = f"b{level}".encode()
        raw = (
            b'Content-Type: multipart/mixed; boundary="'
            + boundary
            + b'"\n\n--'
            + boundary
            + b"\n"
            + raw
            + b"\n--"
            + boundary
            + b"--\n"
        )
    return b"From: MAILER-DAEMON@x.example\nSubject: failure notice\n" + raw


def test_deep_nesting_stops_at_the_depth_limit() -> None:
    root = mime.parse(_nested(500))
    assert len(root.walk()) <= mime.MAX_DEPTH + 1
    _check(_nested(500))


def test_many_parts_stop_at_the_part_limit() -> None:
    parts = b"".join(b"--B\nContent-Type: text/plain\n\nx\n" for _ in range(5000))
    raw = b'Content-Type: multipart/mixed; boundary="B"\n\n' + parts + b"--B--\n"
    root = mime.parse(raw)
    assert len(root.walk()) <= mime.MAX_PARTS + 1
    _check(raw)


def test_missing_boundary_and_bad_base64() -> None:
    raw = (
        b"From: MAILER-DAEMON@x.example\nSubject: Undelivered Mail\n"
        b"Content-Type: multipart/report; report-type=delivery-status\n\n"
        b"--nothing\nContent-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n\n"
        b"!!!not base64 at all===\n"
    )
    _check(raw)


def test_huge_headers_and_lines() -> None:
    huge = b"X-Junk: " + b"a" * 3_000_000 + b"\n"
    folded = b"Subject: x\n" + b" y\n" * 200_000
    _check(huge + folded + b"\nbody")
    _check(b"From: a@b\n\n" + b"<" * 2_000_000 + b"@" + b"x." * 500_000)
    _check(b"From: a@b\n\n" + b"550 " * 1_000_000)


def test_long_runs_of_blank_lines_before_a_transcript_word() -> None:
    # From every newline, white space that may cross lines would rescan the whole run: 20,000
    # blank lines took 11 s that way, a million would take hours. Now linear.
    head = (
        b"From: MAILER-DAEMON@x.example\nSubject: Undelivered Mail Returned to Sender\n\n"
        b"<x@y.example>: host mx.y.example said: 550 5.1.1 user unknown\n"
    )
    for run, tail in ((b"\n", b"data\n"), (b"\r\n", b"sent: data\r\n"), (b" \n", b"in: rcpt to\n")):
        raw = head + run * 1_000_000 + tail
        _check(raw)
        assert [r.recipient for r in parse_bounce(raw)] == ["x@y.example"]


def test_oversized_input_is_capped() -> None:
    raw = b"From: MAILER-DAEMON@x.example\nSubject: failure notice\n\n" + b"x" * (
        mime.MAX_BYTES * 2
    )
    _check(raw)


def test_garbage_is_unparseable_or_nothing() -> None:
    for raw in (b"\x00\xff" * 100, b"no headers here at all", b"\n\n\n"):
        reports = parse_bounce(raw)
        assert reports == [] or [r.kind for r in reports] == ["unparseable"]
