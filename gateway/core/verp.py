"""Signed return paths (VERP) and signed unsubscribe tokens.

Owns: the HMAC tokens that let an incoming bounce or opt-out name *our* message and
recipients without trusting the sender of the report (docs/architecture.md, step 5: a
forged bounce cannot block an arbitrary address). Does not own: the secrets and their rotation
(``config.BounceConfig``), accepting the RCPT on the bounce listener (``smtp_in``), or
looking the recipients up (``store``).

Return-path token, bit layout (most significant bit first), then RFC 4648 base32 in lower
case without padding::

    format:2  day:16  qlen:5  queue_id:6*qlen  recipients...  mac:80  zero-pad to 5 bits

* ``day`` is the UTC issue day counted from 1970-01-01 (valid to 2149).
* ``queue_id`` characters are indices into ``[0-9A-Za-z]``, six bits each: queue ids are
  case sensitive, but the token survives case folding (see below).
* format ``0`` (*list*): a count, then the sorted recipient ids delta-encoded, each as a
  variable-length unsigned integer (a 6-bit bit length, then the bits after the leading 1).
  With one recipient the token alone names it.
* format ``1`` (*digest*): used only when the list would not fit a 64-octet local part. The
  token carries a 40-bit digest of the sorted recipient-id set (:func:`recipient_set_digest`);
  the parsed :class:`ReturnPathToken` then has ``recipient_ids == ()`` and
  ``recipient_digest`` set, meaning "those recipients of ``queue_id`` whose transaction's
  id set has this digest". A consumer that recorded the transaction's ids checks them with
  :func:`recipient_set_digest`; one that did not can still rely on the queue id, which is
  bound by the MAC.
* ``mac`` is HMAC-SHA256 over a label, the bounce domain and the payload bits, truncated to
  80 bits (RFC 2104 §5 allows truncation to half the hash length or more than 80 bits; the
  token only has to resist online forgery for its lifetime).

Local parts are case-sensitive in theory (RFC 5321 §2.4) but are case-folded by enough
remote MTAs that the alphabet is lower-case base32 and decoding folds case. A queue id of
26 characters with one recipient id below 2**40 fits ``b+<token>`` in 64 octets
(RFC 5321 §4.5.3.1.1); so does the digest format for any recipient set.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import string
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

__all__ = [
    "ReturnPathToken",
    "make_return_path",
    "make_unsubscribe_token",
    "parse_return_path",
    "parse_unsubscribe_token",
    "recipient_set_digest",
]

_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"  # RFC 4648 §6, lower case
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}
_QID_ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
_QID_INDEX = {c: i for i, c in enumerate(_QID_ALPHABET)}
_EPOCH = date(1970, 1, 1)

_FORMAT_LIST = 0
_FORMAT_DIGEST = 1
_DAY_BITS = 16
_QLEN_BITS = 5
_MAX_QID = (1 << _QLEN_BITS) - 1
_MAC_BITS = 80
_DIGEST_BITS = 40
_UINT_LEN_BITS = 6  # bit lengths 0..63: ids up to 2**63 - 1 (a PostgreSQL bigint)
_MAX_LOCAL = 64  # RFC 5321 §4.5.3.1.1
_MAX_TOKEN_CHARS = 255  # parse refuses anything longer before decoding

_VERP_LABEL = b"gateway-verp-1\x00"
_UNSUB_LABEL = b"gateway-unsub-1\x00"
_UNSUB_VERSION = b"\x01"
_UNSUB_MAC_BYTES = 16


@dataclass(frozen=True, slots=True)
class ReturnPathToken:
    """What a verified return-path token names.

    Args:
        queue_id: the message.
        recipient_ids: the transaction's recipient ids, sorted; ``()`` in the digest format.
        issued: the UTC day the token was made.
        recipient_digest: the digest of the recipient-id set in the digest format, else ``""``.
    """

    queue_id: str
    recipient_ids: tuple[int, ...]
    issued: date
    recipient_digest: str = ""


class _Malformed(Exception):
    """A token that does not decode; never leaves this module."""


class _BitWriter:
    __slots__ = ("size", "value")

    def __init__(self) -> None:
        self.value = 0
        self.size = 0

    def put(self, value: int, width: int) -> None:
        if not 0 <= value < (1 << width):
            msg = f"value {value} does not fit {width} bits"
            raise ValueError(msg)
        self.value = (self.value << width) | value
        self.size += width

    def put_uint(self, value: int) -> None:
        length = value.bit_length()
        self.put(length, _UINT_LEN_BITS)
        if length > 1:
            # The leading 1 bit is implied by the length: the encoding is canonical.
            self.put(value - (1 << (length - 1)), length - 1)


class _BitReader:
    __slots__ = ("remaining", "value")

    def __init__(self, value: int, size: int) -> None:
        self.value = value
        self.remaining = size

    def take(self, width: int) -> int:
        if width > self.remaining:
            raise _Malformed
        self.remaining -= width
        return (self.value >> self.remaining) & ((1 << width) - 1)

    def take_uint(self) -> int:
        length = self.take(_UINT_LEN_BITS)
        if length <= 1:
            return length
        return (1 << (length - 1)) | self.take(length - 1)


def _utc_day(now: datetime) -> date:
    """The UTC calendar day of ``now``; a naive datetime is taken to be UTC already."""
    if now.tzinfo is not None:
        now = now.astimezone(UTC)
    return now.date()


def _norm_domain(domain: str) -> str:
    return domain.strip().rstrip(".").lower()


def _mac(secret: bytes, domain: str, payload: int, size: int) -> int:
    data = b"".join(
        (
            _VERP_LABEL,
            domain.encode("utf-8", "surrogatepass"),
            b"\x00",
            size.to_bytes(2, "big"),
            payload.to_bytes((size + 7) // 8, "big"),
        )
    )
    digest = hmac.new(secret, data, hashlib.sha256).digest()
    return int.from_bytes(digest, "big") >> (256 - _MAC_BITS)


def recipient_set_digest(recipient_ids: Sequence[int]) -> str:
    """The digest that binds a transaction's recipient-id set in the digest format.

    Args:
        recipient_ids: the ids, in any order; duplicates are ignored.

    Returns:
        Ten lower-case hex digits (40 bits).
    """
    canonical = ",".join(str(i) for i in sorted(set(recipient_ids))).encode("ascii")
    return hashlib.sha256(b"gateway-rcpt-set-1\x00" + canonical).hexdigest()[: _DIGEST_BITS // 4]


def _encode(
    fmt: int, *, day: int, queue_id: str, ids: tuple[int, ...], secret: bytes, domain: str
) -> str:
    bits = _BitWriter()
    bits.put(fmt, 2)
    bits.put(day, _DAY_BITS)
    bits.put(len(queue_id), _QLEN_BITS)
    for char in queue_id:
        bits.put(_QID_INDEX[char], 6)
    if fmt == _FORMAT_LIST:
        bits.put_uint(len(ids))
        previous = -1
        for rid in ids:
            bits.put_uint(rid - previous - 1)  # sorted and unique: deltas are >= 1
            previous = rid
    else:
        bits.put(int(recipient_set_digest(ids), 16), _DIGEST_BITS)
    mac = _mac(secret, domain, bits.value, bits.size)
    bits.put(mac, _MAC_BITS)
    pad = -bits.size % 5
    value = bits.value << pad
    chars = (bits.size + pad) // 5
    return "".join(_ALPHABET[(value >> (5 * (chars - 1 - i))) & 31] for i in range(chars))


def make_return_path(
    queue_id: str,
    recipient_ids: Sequence[int],
    secret: bytes,
    domain: str,
    now: datetime,
    local: str = "b",
) -> str:
    """Make the signed envelope sender for one SMTP transaction of a message.

    Args:
        queue_id: the message's queue id, 1-31 characters of ``[0-9A-Za-z]``.
        recipient_ids: the ids of the transaction's recipients (at least one).
        secret: the current HMAC key; must not be empty.
        domain: the bounce domain, whose MX is our bounce listener.
        now: the current time; its UTC day is the issue day.
        local: the fixed part of the local part before ``+``.

    Returns:
        ``"<local>+<token>@<domain>"``.

    Raises:
        ValueError: on an empty secret, a bad queue id, no or negative recipient ids, or a
            ``local`` that is not a plain dot-atom without ``+``.
    """
    if not secret:
        msg = "the return-path secret must not be empty"
        raise ValueError(msg)
    if not 1 <= len(queue_id) <= _MAX_QID or any(c not in _QID_INDEX for c in queue_id):
        msg = f"queue id must be 1-{_MAX_QID} characters of [0-9A-Za-z]: {queue_id!r}"
        raise ValueError(msg)
    ids = tuple(sorted(set(recipient_ids)))
    if not ids or ids[0] < 0 or ids[-1].bit_length() >= (1 << _UINT_LEN_BITS):
        msg = "recipient ids must be one or more integers in [0, 2**63)"
        raise ValueError(msg)
    if not local or "+" in local or "@" in local or not local.isascii() or not local.isprintable():
        msg = f"bad local part prefix: {local!r}"
        raise ValueError(msg)
    day = (_utc_day(now) - _EPOCH).days
    norm = _norm_domain(domain)
    for fmt in (_FORMAT_LIST, _FORMAT_DIGEST):  # the digest only when the list is too long
        token = _encode(fmt, day=day, queue_id=queue_id, ids=ids, secret=secret, domain=norm)
        if len(local) + 1 + len(token) <= _MAX_LOCAL:
            break
    return f"{local}+{token}@{domain}"


def _decode(token: str, secrets: Sequence[bytes], domain: str) -> ReturnPathToken | None:
    value = 0
    for char in token:
        value = (value << 5) | _INDEX[char]
    bits = _BitReader(value, 5 * len(token))
    fmt = bits.take(2)
    day = bits.take(_DAY_BITS)
    qlen = bits.take(_QLEN_BITS)
    chars = []
    for _ in range(qlen):
        index = bits.take(6)
        if index >= len(_QID_ALPHABET):
            raise _Malformed
        chars.append(_QID_ALPHABET[index])
    ids: list[int] = []
    digest = ""
    if fmt == _FORMAT_LIST:
        count = bits.take_uint()
        if count == 0 or count > bits.remaining:
            raise _Malformed
        previous = -1
        for _ in range(count):
            previous += bits.take_uint() + 1
            ids.append(previous)
    elif fmt == _FORMAT_DIGEST:
        digest = f"{bits.take(_DIGEST_BITS):0{_DIGEST_BITS // 4}x}"
    else:
        raise _Malformed
    if qlen == 0 or not _MAC_BITS <= bits.remaining < _MAC_BITS + 5:
        raise _Malformed
    pad = bits.remaining - _MAC_BITS
    payload_size = 5 * len(token) - bits.remaining
    payload = value >> bits.remaining
    mac = bits.take(_MAC_BITS)
    if bits.take(pad) != 0:  # canonical: padding bits are zero
        raise _Malformed
    expected_bytes = mac.to_bytes(_MAC_BITS // 8, "big")
    for secret in secrets:
        if not secret:
            continue
        got = _mac(secret, domain, payload, payload_size).to_bytes(_MAC_BITS // 8, "big")
        if hmac.compare_digest(got, expected_bytes):
            return ReturnPathToken(
                queue_id="".join(chars),
                recipient_ids=tuple(ids),
                issued=_EPOCH + timedelta(days=day),
                recipient_digest=digest,
            )
    return None


def parse_return_path(
    address: str,
    secrets: Sequence[bytes],
    domain: str,
    now: datetime,
    lifetime: timedelta,
) -> ReturnPathToken | None:
    """Verify a bounce's recipient address and say what it names.

    Never raises: anything forged, tampered, expired, for another domain or malformed is
    ``None``. A token lives for at least ``lifetime`` and less than ``lifetime`` plus one
    day (it records only its issue day); one issued more than a day in the future is refused.

    Args:
        address: the RCPT TO address, with or without angle brackets; case is ignored.
        secrets: the keys to try, current first, then previous ones (key rotation).
        domain: our bounce domain; other domains are refused.
        now: the current time.
        lifetime: how long a token is honoured (``bounce.token_lifetime``).

    Returns:
        The token's contents, or ``None``.
    """
    try:
        if not isinstance(address, str):
            return None
        addr = address.strip()
        if addr.startswith("<") and addr.endswith(">"):
            addr = addr[1:-1]
        local, at, addr_domain = addr.rpartition("@")
        want = _norm_domain(domain)
        if not at or not want or _norm_domain(addr_domain) != want:
            return None
        _, plus, token = local.rpartition("+")
        token = token.lower()
        if not plus or not 0 < len(token) <= _MAX_TOKEN_CHARS:
            return None
        if any(c not in _INDEX for c in token):
            return None
        parsed = _decode(token, secrets, want)
        if parsed is None:
            return None
        today = _utc_day(now)
        if parsed.issued > today + timedelta(days=1):
            return None
        if today - parsed.issued > lifetime:
            return None
    except (_Malformed, ValueError, OverflowError):
        return None
    return parsed


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def _unb32(text: str) -> bytes:
    """Decode unpadded base32 in either case; refuse non-canonical spellings.

    The last character may carry unused bits; two spellings of one byte string would let a
    changed token verify, so the decoded bytes must re-encode to the same text.
    """
    folded = text.strip().lower()
    if not folded or any(c not in _INDEX for c in folded):
        raise ValueError(text)
    raw = base64.b32decode(folded.upper() + "=" * (-len(folded) % 8))
    if _b32(raw) != folded:
        raise ValueError(text)
    return raw


def _unsub_mac(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, _UNSUB_LABEL + payload, hashlib.sha256).digest()[:_UNSUB_MAC_BYTES]


def make_unsubscribe_token(tenant: str, address: str, secret: bytes) -> str:
    """Make a signed per-recipient opt-out token for the RFC 8058 URL and the mailto link.

    The token is lower-case base32 without padding: safe in a URL path or query, in a
    ``mailto:`` subject, and in a local part that a remote MTA case-folds. It does not
    expire: an opt-out link must keep working (RFC 8058 §3.2 asks for a long-lived URI).

    Args:
        tenant: the tenant that sent the message; must not contain NUL.
        address: the recipient address, as the tenant's suppression list will key it.
        secret: the current HMAC key; must not be empty.

    Returns:
        The token.

    Raises:
        ValueError: on an empty secret or a NUL in ``tenant``.
    """
    if not secret:
        msg = "the unsubscribe secret must not be empty"
        raise ValueError(msg)
    if "\x00" in tenant:
        msg = "tenant must not contain NUL"
        raise ValueError(msg)
    payload = tenant.encode("utf-8") + b"\x00" + address.encode("utf-8")
    return _b32(_UNSUB_VERSION + payload + _unsub_mac(secret, payload))


def parse_unsubscribe_token(token: str, secrets: Sequence[bytes]) -> tuple[str, str] | None:
    """Verify an opt-out token. Never raises.

    Args:
        token: the token from the URL or the mailto message; case is ignored.
        secrets: the keys to try, current first (key rotation).

    Returns:
        ``(tenant, address)``, or ``None`` if the token is malformed or was not made with one
        of ``secrets``.
    """
    try:
        if not isinstance(token, str) or len(token) > 2048:
            return None
        raw = _unb32(token)
        if len(raw) < 1 + 1 + _UNSUB_MAC_BYTES or raw[:1] != _UNSUB_VERSION:
            return None
        payload, mac = raw[1:-_UNSUB_MAC_BYTES], raw[-_UNSUB_MAC_BYTES:]
        if not any(s and hmac.compare_digest(_unsub_mac(s, payload), mac) for s in secrets):
            return None
        tenant, _, address = payload.partition(b"\x00")
        return tenant.decode("utf-8"), address.decode("utf-8")
    except (ValueError, binascii.Error):
        return None
