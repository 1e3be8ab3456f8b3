"""DKIM signing (RFC 6376, relaxed/relaxed) with OpenSSL-backed RSA-SHA256 and Ed25519.

Owns: canonicalising a message's bytes, building the ``DKIM-Signature`` header field, and
making keys with their DNS record. Does not own: which key signs which tenant's mail
(``config``/``relay``), publishing the record, or verification (tests use dkimpy).

dkimpy canonicalises correctly but signs RSA in pure Python (about 6 ms of CPU per
signature, see ``bench/dkim.py``) and offers no seam for another signer, so this module
canonicalises itself and signs with ``cryptography``. The message is scanned as bytes and
never parsed and regenerated with the ``email`` package (CVE-2023-27043, CVE-2024-6923):
the signature must cover exactly the bytes that are sent.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

__all__ = [
    "ALGORITHMS",
    "DEFAULT_SIGNED_HEADERS",
    "DkimKey",
    "keygen",
    "public_record",
    "sign",
]

RSA_SHA256 = "rsa-sha256"
ED25519_SHA256 = "ed25519-sha256"  # RFC 8463
ALGORITHMS = (RSA_SHA256, ED25519_SHA256)

#: Header fields signed when present. RFC 6376 §5.4.1 recommends these; From is required
#: (§5.4). List-Unsubscribe and List-Unsubscribe-Post must be signed for RFC 8058 §4.
DEFAULT_SIGNED_HEADERS: tuple[bytes, ...] = (
    b"From",
    b"To",
    b"Cc",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"Reply-To",
    b"In-Reply-To",
    b"References",
    b"MIME-Version",
    b"Content-Type",
    b"Content-Transfer-Encoding",
    b"List-Unsubscribe",
    b"List-Unsubscribe-Post",
)

_MIN_RSA_BITS = 1024  # RFC 8301 §3.2: verifiers must not accept less
# A WSP run other than a lone SP: matching lone spaces too would rewrite every word gap.
_WSP_RUN = re.compile(rb"\t[ \t]*| [ \t]+")
_LINE_BREAK = re.compile(rb"\r?\n")
_BARE_LF = re.compile(rb"(?<!\r)\n")
_FIELD_NAME = re.compile(rb"[!-9;-~]+")  # RFC 5322 §3.6.8 ftext
_LDH = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(?:\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*")
_FOLD = b"\r\n\t"
_MAX_LINE = 78  # RFC 5322 §2.1.1: SHOULD not exceed 78 characters
_TXT_CHUNK = 255  # RFC 1035 §3.3.14: one character-string holds at most 255 octets
# The body is canonicalised and hashed a piece of about this size at a time: one regex pass
# over a 25 MB body would hold the GIL for a quarter of a second, and the relay signs in a
# thread so that the event loop goes on meanwhile (it only can between pieces).
_BODY_PIECE = 64 * 1024
_CRLF = b"\r\n"


@dataclass(frozen=True, slots=True)
class DkimKey:
    """A signing key and where its public half is published.

    Args:
        domain: the signing domain (``d=``), as ASCII (A-labels for IDNs).
        selector: the selector (``s=``); the record lives at
            ``<selector>._domainkey.<domain>``.
        private_key_pem: the PEM-encoded private key (PKCS#8 or traditional).
        algorithm: ``"rsa-sha256"`` or ``"ed25519-sha256"``.
    """

    domain: str
    selector: str
    private_key_pem: bytes
    algorithm: str

    def __post_init__(self) -> None:
        # Both names end up inside a header field: only letters, digits, hyphens and dots
        # (RFC 6376 §3.5 d= and s= are domain names), so no CR, LF or ";" can get in.
        for what, value in (("domain", self.domain), ("selector", self.selector)):
            if not _LDH.fullmatch(value):
                msg = f"DKIM {what} is not a plain ASCII domain name: {value!r}"
                raise ValueError(msg)
        if self.algorithm not in ALGORITHMS:
            msg = f"DKIM algorithm must be one of {ALGORITHMS}: {self.algorithm!r}"
            raise ValueError(msg)


@functools.lru_cache(maxsize=64)
def _private_key(pem: bytes, algorithm: str) -> PrivateKeyTypes:
    """Load a key once: RSA loading checks the key and costs more than a signature."""
    key = serialization.load_pem_private_key(pem, password=None)
    if algorithm == RSA_SHA256 and not isinstance(key, rsa.RSAPrivateKey):
        msg = "rsa-sha256 needs an RSA private key"
        raise ValueError(msg)
    if algorithm == ED25519_SHA256 and not isinstance(key, ed25519.Ed25519PrivateKey):
        msg = "ed25519-sha256 needs an Ed25519 private key"
        raise ValueError(msg)
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < _MIN_RSA_BITS:
        msg = f"RSA keys must have at least {_MIN_RSA_BITS} bits"
        raise ValueError(msg)
    return key


def _split(message: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Split raw message bytes into header fields ``(name, raw value)`` and the body.

    The raw value is everything after the colon, continuation lines and line ends
    included. Lines end in CRLF; a bare LF is accepted as a line end too, which is what
    the verifier sees once a transport has fixed the line ends. A line that is neither a
    field nor a continuation cannot be signed and is skipped.
    """
    fields: list[tuple[bytes, bytes]] = []
    pos, end = 0, len(message)
    while pos < end:
        eol = message.find(b"\n", pos)
        nxt = end if eol < 0 else eol + 1
        line = message[pos:nxt]
        if line in (b"\r\n", b"\n"):  # RFC 5322 §2.1: the empty line ends the header
            return fields, message[nxt:]
        if line[:1] in (b" ", b"\t"):
            if fields:
                name, value = fields[-1]
                fields[-1] = (name, value + line)
        else:
            name, colon, value = line.partition(b":")
            if colon:
                fields.append((name, value))
        pos = nxt
    return fields, b""


def _relaxed_header(name: bytes, value: bytes) -> bytes:
    """RFC 6376 §3.4.2: lower-case name, unfold, one SP for each WSP run, trim WSP."""
    unfolded = _LINE_BREAK.sub(b"", value)
    return name.rstrip(b" \t").lower() + b":" + _WSP_RUN.sub(b" ", unfolded).strip(b" \t") + b"\r\n"


def _relaxed_body(body: bytes, piece: int = _BODY_PIECE) -> Iterator[bytes]:
    """RFC 6376 §3.4.4 (with erratum 1384: an empty body canonicalises to nothing), in
    pieces whose concatenation is the canonical body.

    An unterminated last line is canonicalised as it will arrive: SMTP ends DATA with CRLF
    (RFC 5321 §4.1.1.4), so trailing spaces on it are ignored like on any other line.

    Whole-piece substitutions rather than a loop over lines: this runs for every message.
    Each piece ends just after an LF (but the last), so a line, a run of white space and a
    CRLF never straddle two pieces, and an LF first in a piece follows an LF: bare.
    Empty lines at the end of a piece are held back until text follows them; those at the
    end of the body are dropped, but for the CRLF that ends the last line of text.
    """
    held = 0  # empty lines (CRLFs) after the last text yielded
    texts = False  # whether any text was yielded
    start, end = 0, len(body)
    while start < end:
        cut = body.find(b"\n", start + piece)
        stop = end if cut < 0 else cut + 1
        text = body[start:stop]
        start = stop
        if text.count(b"\n") != text.count(_CRLF):
            text = _BARE_LF.sub(_CRLF, text)
        if stop == end and not text.endswith(_CRLF):
            text += _CRLF  # the last line, unterminated, is still a line
        text = _WSP_RUN.sub(b" ", text).replace(b" \r\n", _CRLF)
        tail = len(text) - len(text.rstrip(b"\r\n"))
        if text.endswith(_CRLF * (tail // 2)):  # the tail is CRLFs only: the usual case
            trailing = tail // 2
        else:  # a lone CR among them is text
            trailing = 0
            while text.endswith(_CRLF, 0, len(text) - 2 * trailing):
                trailing += 1
        if 2 * trailing == len(text):
            held += trailing
            continue
        yield _CRLF * held + text[: len(text) - 2 * trailing]
        held, texts = trailing, True
    if texts:  # end the last line of text
        yield _CRLF


def _fold(pieces: Sequence[tuple[bytes, bytes]], start: int) -> bytes:
    """Join ``(separator, text)`` pieces, folding before a piece that would pass 78 columns.

    Folding replaces the piece's separator with CRLF TAB plus the separator stripped of
    spaces; every place a piece starts is a place RFC 6376 §3.2 allows FWS.
    """
    out = bytearray()
    column = start
    for separator, text in pieces:
        if column + len(separator) + len(text) > _MAX_LINE and column > 1:
            out += separator.rstrip(b" ") + _FOLD
            column = 1
        else:
            out += separator
            column += len(separator)
        out += text
        column += len(text)
    return bytes(out)


def _chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


def sign(
    content: bytes,
    key: DkimKey,
    headers: Sequence[bytes] = DEFAULT_SIGNED_HEADERS,
    now: int | None = None,
) -> bytes:
    """Sign a message and return the ``DKIM-Signature`` field to prepend to it.

    Uses relaxed/relaxed canonicalisation (RFC 6376 §3.4.2, §3.4.4), no ``l=`` (a length
    limit lets anyone append content), and signs every present instance of each listed
    field plus one more, so that a copy added later breaks the signature (RFC 6376 §8.15,
    "over-signing").

    Args:
        content: the message bytes exactly as they will be sent, CRLF line ends.
        key: the signing key.
        headers: the field names to sign when present; ``From`` must be present.
        now: the signature time for ``t=`` (seconds since the epoch); default now.

    Returns:
        ``b"DKIM-Signature: ...\\r\\n"``, folded to 78 columns. ``content`` is untouched.

    Raises:
        ValueError: if there is no ``From`` field, a field name is not valid ftext
            (RFC 5322 §3.6.8: it could smuggle CR, LF or ``;`` into the header), or the key
            does not match its algorithm.
    """
    fields, body = _split(content)
    wanted: list[bytes] = []
    for name in headers:
        if not _FIELD_NAME.fullmatch(name):
            msg = f"not a header field name: {name!r}"
            raise ValueError(msg)
        if name.lower() not in wanted:
            wanted.append(name.lower())
    if b"from" not in wanted:
        wanted.insert(0, b"from")

    signed = bytearray()
    h_names: list[bytes] = []
    for name in wanted:
        present = [f for f in fields if f[0].rstrip(b" \t").lower() == name]
        if name == b"from" and not present:
            msg = "the message has no From field, which DKIM must sign (RFC 6376 §5.4)"
            raise ValueError(msg)
        # RFC 6376 §5.4.2: several instances are signed from the bottom up.
        for field_name, value in reversed(present):
            signed += _relaxed_header(field_name, value)
        h_names += [name] * (len(present) + 1) if present else []

    hasher = hashlib.sha256()
    for piece in _relaxed_body(body):
        hasher.update(piece)
    body_hash = base64.b64encode(hasher.digest())
    stamp = int(time.time()) if now is None else now
    pieces: list[tuple[bytes, bytes]] = [
        (b" ", b"v=1;"),
        (b" ", f"a={key.algorithm};".encode("ascii")),
        (b" ", b"c=relaxed/relaxed;"),
        (b" ", f"d={key.domain};".encode("ascii")),
        (b" ", f"s={key.selector};".encode("ascii")),
        (b" ", f"t={stamp};".encode("ascii")),
    ]
    for i, h_name in enumerate(h_names):  # RFC 6376 §3.5: FWS may follow each colon in h=
        text = h_name + (b":" if i < len(h_names) - 1 else b";")
        pieces.append((b" ", b"h=" + text) if i == 0 else (b"", text))
    pieces += [(b" ", b"bh=" + body_hash + b";"), (b" ", b"b=")]
    prefix = b"DKIM-Signature:" + _fold(pieces, len(b"DKIM-Signature:"))

    # RFC 6376 §3.7: the signature field itself, b= empty, canonicalised, without its CRLF.
    name, _, value = prefix.partition(b":")
    data = bytes(signed) + _relaxed_header(name, value)[:-2]
    private = _private_key(key.private_key_pem, key.algorithm)
    if isinstance(private, rsa.RSAPrivateKey):
        signature = private.sign(data, padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(private, ed25519.Ed25519PrivateKey):
        # RFC 8463 §3: PureEdDSA over the SHA-256 hash of the data, not over the data.
        signature = private.sign(hashlib.sha256(data).digest())
    else:  # pragma: no cover - _private_key admits only the two types above
        msg = "unsupported key type"
        raise ValueError(msg)
    b64 = base64.b64encode(signature)
    last_line = len(prefix) - (prefix.rfind(b"\n") + 1)
    first = max(_MAX_LINE - last_line, 0)
    tail = _chunks(b64[first:], _MAX_LINE - 1) if len(b64) > first else []
    folded = b64[:first] + b"".join(_FOLD + chunk for chunk in tail)
    return prefix + folded + b"\r\n"


def _public_key_b64(key: DkimKey) -> str:
    private = _private_key(key.private_key_pem, key.algorithm)
    public = private.public_key()
    if isinstance(public, ed25519.Ed25519PublicKey):
        # RFC 8463 §4.2: the raw 32-byte key.
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    else:
        # RFC 6376 §3.6.1 as practised (opendkim-genkey): DER SubjectPublicKeyInfo.
        raw = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    return base64.b64encode(raw).decode("ascii")


def public_record(key: DkimKey) -> str:
    """The TXT record value that publishes the key's public half (RFC 6376 §3.6.1).

    Args:
        key: the key.

    Returns:
        e.g. ``"v=DKIM1; k=rsa; p=MIIBIjANBg..."``.
    """
    kind = "ed25519" if key.algorithm == ED25519_SHA256 else "rsa"
    return f"v=DKIM1; k={kind}; p={_public_key_b64(key)}"


def keygen(
    domain: str, selector: str, algorithm: str = RSA_SHA256, bits: int = 2048
) -> tuple[DkimKey, str]:
    """Make a new signing key and the zone-file line that publishes it.

    Args:
        domain: the signing domain.
        selector: the selector.
        algorithm: ``"rsa-sha256"`` or ``"ed25519-sha256"``.
        bits: the RSA modulus size (at least 1024; 2048 recommended by RFC 8301 §3.2);
            ignored for Ed25519.

    Returns:
        The key (PKCS#8 PEM, unencrypted) and a line such as
        ``selector._domainkey.example.com. IN TXT "v=DKIM1; k=rsa; p=..." "..."``, the
        value split into 255-octet strings as RFC 1035 §3.3.14 requires.

    Raises:
        ValueError: on a bad domain, selector, algorithm or key size.
    """
    DkimKey(domain, selector, b"", algorithm)  # validate before the slow part
    private: PrivateKeyTypes
    if algorithm == RSA_SHA256:
        if bits < _MIN_RSA_BITS:
            msg = f"RSA keys must have at least {_MIN_RSA_BITS} bits"
            raise ValueError(msg)
        private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    else:
        private = ed25519.Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key = DkimKey(domain, selector, pem, algorithm)
    value = public_record(key)
    strings = " ".join(f'"{value[i : i + _TXT_CHUNK]}"' for i in range(0, len(value), _TXT_CHUNK))
    return key, f"{selector}._domainkey.{domain}. IN TXT {strings}"
