"""DKIM signing, checked by dkimpy's verifier with the key record served from memory."""

from __future__ import annotations

import base64
import re
import types
from collections.abc import Callable

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.mail.dkim import (
    _BODY_PIECE,
    DEFAULT_SIGNED_HEADERS,
    ED25519_SHA256,
    RSA_SHA256,
    DkimKey,
    _relaxed_body,
    keygen,
    public_record,
    sign,
)

MESSAGE = (
    b"From: Billing <billing@example.com>\r\n"
    b"To: customer@example.net\r\n"
    b"Subject:  Your   invoice \r\n\tfolded here\r\n"
    b"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
    b"Message-ID: <invoice-42@example.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"List-Unsubscribe: <https://example.com/u/abc>, <mailto:u+abc@example.com>\r\n"
    b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    b"X-Unsigned: anything\r\n"
    b"\r\n"
    b"Dear customer,\r\n"
    b"\r\n"
    b"please  find your invoice attached. \t \r\n"
    b"\r\n"
    b"\r\n"
)


class _BadSignature(Exception):
    pass


class _VerifyKey:
    """Stands in for ``nacl.signing.VerifyKey``: pynacl is not installed here."""

    def __init__(self, key: bytes, encoder: object = None) -> None:
        self._key = ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(key))

    def verify(self, message: bytes, signature: bytes) -> None:
        try:
            self._key.verify(signature, message)
        except Exception as exc:
            raise _BadSignature from exc


@pytest.fixture(autouse=True)
def nacl_shim(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let dkimpy verify Ed25519 with ``cryptography``.

    dkimpy does the tag parsing, canonicalisation and hashing; only the final Ed25519
    check is delegated (to OpenSSL instead of libsodium).
    """
    if hasattr(dkim, "nacl"):
        return
    shim = types.SimpleNamespace(
        signing=types.SimpleNamespace(VerifyKey=_VerifyKey),
        encoding=types.SimpleNamespace(Base64Encoder=None),
        exceptions=types.SimpleNamespace(BadSignatureError=_BadSignature, ValueError=ValueError),
    )
    monkeypatch.setattr(dkim, "nacl", shim, raising=False)


@pytest.fixture(scope="module", params=[RSA_SHA256, ED25519_SHA256])
def key(request: pytest.FixtureRequest) -> DkimKey:
    made, _ = keygen("example.com", "sel2024", request.param)
    return made


@pytest.fixture(scope="module")
def rsa_key() -> DkimKey:
    return keygen("example.com", "rsa", RSA_SHA256)[0]


def dns_for(key: DkimKey) -> Callable[..., bytes]:
    record = public_record(key).encode("ascii")
    name = f"{key.selector}._domainkey.{key.domain}.".encode("ascii")

    def dnsfunc(qname: bytes, timeout: int = 5) -> bytes:
        return record if qname == name else b""

    return dnsfunc


def verifies(message: bytes, key: DkimKey) -> bool:
    return bool(dkim.verify(message, dnsfunc=dns_for(key)))


def signed_names(header: bytes) -> list[bytes]:
    match = re.search(rb"h=([^;]*);", header.replace(b"\r\n\t", b""))
    assert match is not None
    return match.group(1).split(b":")


def test_signature_verifies(key: DkimKey) -> None:
    header = sign(MESSAGE, key, now=1_700_000_000)
    assert verifies(header + MESSAGE, key)
    assert f"a={key.algorithm};".encode() in header
    assert b"c=relaxed/relaxed;" in header
    assert b"t=1700000000;" in header
    assert b" l=" not in header  # no body length limit


def test_message_bytes_are_untouched(key: DkimKey) -> None:
    original = bytes(MESSAGE)
    header = sign(MESSAGE, key)
    assert original == MESSAGE
    assert header.startswith(b"DKIM-Signature: v=1;")
    assert header.endswith(b"\r\n")
    assert not header.endswith(b"\r\n\r\n")


def test_header_is_folded_and_has_no_stray_line_ends(key: DkimKey) -> None:
    header = sign(MESSAGE, key)
    lines = header[:-2].split(b"\r\n")
    assert len(lines) > 1
    for line in lines:
        assert len(line) <= 78
        assert b"\r" not in line
        assert b"\n" not in line
    for line in lines[1:]:
        assert line.startswith(b"\t")


def test_signed_headers_cover_the_list_and_oversign(key: DkimKey) -> None:
    names = signed_names(sign(MESSAGE, key))
    for name in (b"from", b"to", b"subject", b"date", b"message-id"):
        assert names.count(name) == 2  # one instance, over-signed once
    assert b"list-unsubscribe" in names
    assert b"list-unsubscribe-post" in names
    assert b"x-unsigned" not in names
    assert b"cc" not in names  # absent fields are not listed


@pytest.mark.parametrize(
    "tamper",
    [
        lambda m: m.replace(b"invoice attached", b"invoice attacked"),
        lambda m: m.replace(b"<https://example.com/u/abc>", b"<https://evil.example/u>"),
        lambda m: m.replace(b"One-Click", b"Two-Click"),
        lambda m: m.replace(b"Billing <billing", b"Billing <b1lling"),
        lambda m: b"From: other@evil.example\r\n" + m,  # an added From breaks it (over-signing)
        lambda m: b"Subject: new\r\n" + m,
        lambda m: m + b"appended line\r\n",
    ],
)
def test_tampering_breaks_the_signature(key: DkimKey, tamper: Callable[[bytes], bytes]) -> None:
    header = sign(MESSAGE, key)
    assert not verifies(header + tamper(MESSAGE), key)


@pytest.mark.parametrize(
    "harmless",
    [
        lambda m: m.replace(b"X-Unsigned: anything", b"X-Unsigned: changed"),
        lambda m: b"Received: from relay by mx; Mon, 1 Jan 2024\r\n" + m,
        lambda m: m.replace(b"please  find", b"please \t find"),  # relaxed body
        lambda m: m.replace(b"To: customer", b"to:   customer"),  # relaxed header
        lambda m: m + b"\r\n\r\n",  # trailing empty lines
    ],
)
def test_relaxed_changes_keep_it_valid(key: DkimKey, harmless: Callable[[bytes], bytes]) -> None:
    header = sign(MESSAGE, key)
    assert verifies(header + harmless(MESSAGE), key)


@pytest.mark.parametrize(
    "message",
    [
        b"From: a@example.com\r\n\r\n",
        b"From: a@example.com\r\n",
        b"From: a@example.com\r\n\r\nno line end at the end",
        b"From: a@example.com\r\nTo: b@example.net\r\nTo: c@example.net\r\n\r\nx\r\n",
        b"From: a@example.com\r\nSubject: \r\n\r\n \t \r\n",
        b"From:a@example.com\r\nSubject:no space\r\n\r\nbody\r\n",
    ],
)
def test_edge_messages_verify(key: DkimKey, message: bytes) -> None:
    assert verifies(sign(message, key) + message, key)


def test_repeated_fields_are_signed_bottom_up(key: DkimKey) -> None:
    message = b"From: a@example.com\r\nTo: b@example.net\r\nTo: c@example.net\r\n\r\nx\r\n"
    header = sign(message, key)
    assert signed_names(header).count(b"to") == 3
    swapped = message.replace(b"b@example.net", b"X").replace(b"c@example.net", b"b@example.net")
    assert not verifies(header + swapped.replace(b"X", b"c@example.net"), key)


def test_bare_lf_messages_verify_after_transport_fixes_line_ends(key: DkimKey) -> None:
    lf = MESSAGE.replace(b"\r\n", b"\n")
    header = sign(lf, key)
    assert verifies(header + MESSAGE, key)


def test_body_hash_matches_dkimpy(rsa_key: DkimKey) -> None:
    pem = serialization.load_pem_private_key(rsa_key.private_key_pem, None).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    theirs = dkim.sign(MESSAGE, b"rsa", b"example.com", pem, canonicalize=(b"relaxed", b"relaxed"))
    ours = sign(MESSAGE, rsa_key)

    def body_hash(header: bytes) -> bytes:
        match = re.search(rb"bh=([^;]+);", re.sub(rb"\s", b"", header))
        assert match is not None
        return match.group(1)

    assert body_hash(ours) == body_hash(theirs)


def test_a_body_of_many_pieces_hashes_as_dkimpy_does(rsa_key: DkimKey) -> None:
    """A 1 MB body is canonicalised in pieces (``_BODY_PIECE``): white space, empty lines
    and trailing empty lines fall on the pieces' edges somewhere along it."""
    lines = [b"line %d  with \t space " % i + b"x" * (i % 97) for i in range(12000)]
    lines[5000:5040] = [b""] * 40  # a run of empty lines in the middle
    body = b"\r\n".join(lines) + b"\r\n" * 30  # and at the end
    assert len(body) > 10 * _BODY_PIECE
    message = MESSAGE.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n" + body
    pem = serialization.load_pem_private_key(rsa_key.private_key_pem, None).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    theirs = dkim.sign(message, b"rsa", b"example.com", pem, canonicalize=(b"relaxed", b"relaxed"))
    ours = sign(message, rsa_key)

    def body_hash(header: bytes) -> bytes:
        match = re.search(rb"bh=([^;]+);", re.sub(rb"\s", b"", header))
        assert match is not None
        return match.group(1)

    assert body_hash(ours) == body_hash(theirs)
    assert verifies(ours + message, rsa_key)


@settings(max_examples=400, deadline=None)
@given(
    body=st.lists(
        st.sampled_from([b"a", b"b", b" ", b"\t", b"\r", b"\n", b"\r\n", b"\r\n", b"."]),
        max_size=60,
    ).map(b"".join),
    piece=st.integers(min_value=1, max_value=16),
)
def test_pieces_of_any_size_canonicalise_the_body_as_one_piece_does(
    body: bytes, piece: int
) -> None:
    whole = b"".join(_relaxed_body(body, piece=len(body) + 1))
    assert b"".join(_relaxed_body(body, piece=piece)) == whole


def test_a_message_without_from_cannot_be_signed(key: DkimKey) -> None:
    with pytest.raises(ValueError, match="From"):
        sign(b"To: b@example.net\r\n\r\nbody\r\n", key)


@pytest.mark.parametrize(
    ("domain", "selector"),
    [
        ("example.com\r\nBcc: victim@example.net", "sel"),
        ("example.com", "sel\r\n\tb=forged"),
        ("example.com", "sel; d=evil.example"),
        ("example.com\n", "sel"),
        ("exa mple.com", "sel"),
        ("", "sel"),
        ("example.com", ""),
        ("exämple.com", "sel"),
    ],
)
def test_header_injection_through_the_key_is_impossible(domain: str, selector: str) -> None:
    with pytest.raises(ValueError, match="DKIM"):
        DkimKey(domain, selector, b"", RSA_SHA256)


@pytest.mark.parametrize(
    "name", [b"Subject\r\nBcc", b"Subject:", b"Sub ject", b"", b"X-\xff", b"To\n"]
)
def test_header_injection_through_the_field_list_is_impossible(key: DkimKey, name: bytes) -> None:
    with pytest.raises(ValueError, match="header field name"):
        sign(MESSAGE, key, headers=(b"From", name))


def test_malformed_message_lines_never_leak_into_the_signature_field(key: DkimKey) -> None:
    # A line that is not a field is skipped, never copied into h=; dkimpy itself refuses
    # to verify such a message, so only the header is checked here.
    message = b"From: a@example.com\r\nBroken line without colon\r\n\r\nbody\r\n"
    header = sign(message, key, headers=(*DEFAULT_SIGNED_HEADERS, b"Broken"))
    assert b"broken" not in header.lower()
    assert signed_names(header) == [b"from", b"from"]


def test_algorithm_and_key_must_match() -> None:
    rsa_made, _ = keygen("example.com", "s", RSA_SHA256, bits=1024)
    wrong = DkimKey("example.com", "s", rsa_made.private_key_pem, ED25519_SHA256)
    with pytest.raises(ValueError, match="Ed25519"):
        sign(MESSAGE, wrong)
    with pytest.raises(ValueError, match="algorithm"):
        DkimKey("example.com", "s", rsa_made.private_key_pem, "rsa-sha1")


def test_keygen_record() -> None:
    made, zone = keygen("example.com", "s2024", RSA_SHA256)
    assert made.algorithm == RSA_SHA256
    assert made.private_key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert zone.startswith('s2024._domainkey.example.com. IN TXT "v=DKIM1; k=rsa; p=')
    strings = re.findall(r'"([^"]*)"', zone)
    assert len(strings) == 2  # a 2048-bit key does not fit one 255-octet string
    assert all(len(s) <= 255 for s in strings)
    assert "".join(strings) == public_record(made)

    ed, ed_zone = keygen("example.com", "ed", ED25519_SHA256)
    assert ed_zone == f'ed._domainkey.example.com. IN TXT "{public_record(ed)}"'
    assert public_record(ed).startswith("v=DKIM1; k=ed25519; p=")
    assert len(base64.b64decode(public_record(ed).rpartition("p=")[2])) == 32


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("example.com", "s", RSA_SHA256, 512), "1024"),
        (("example.com", "s", "dsa"), "algorithm"),
        (("bad domain", "s"), "domain"),
    ],
)
def test_keygen_refuses_bad_input(args: tuple[object, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        keygen(*args)  # type: ignore[arg-type]


_TEXT = st.text(
    alphabet=st.sampled_from(list("abcXYZ019 \t.,;:<>@=-")), min_size=0, max_size=40
).map(lambda s: s.encode("ascii"))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    subject=_TEXT,
    to_parts=st.lists(_TEXT, min_size=1, max_size=3),
    body_lines=st.lists(_TEXT, max_size=8),
    body_end=st.sampled_from([b"", b"\r\n", b"\r\n\r\n"]),
)
def test_property_any_message_verifies(
    rsa_key: DkimKey,
    subject: bytes,
    to_parts: list[bytes],
    body_lines: list[bytes],
    body_end: bytes,
) -> None:
    to = b"\r\n\t".join(b"x" + p for p in to_parts)  # folded, never an empty line
    message = (
        b"From: a@example.com\r\nTo: "
        + to
        + b"\r\nSubject:"
        + subject
        + b"\r\n\r\n"
        + b"\r\n".join(body_lines)
        + body_end
    )
    # SMTP delivers the message ending in CRLF (RFC 5321 §4.1.1.4); dkimpy canonicalises an
    # unterminated last line of only spaces differently from a terminated one.
    wire = message if message.endswith(b"\r\n") else message + b"\r\n"
    assert verifies(sign(message, rsa_key) + wire, rsa_key)
