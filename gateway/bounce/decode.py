"""Bytes to text: transfer encodings, charsets and RFC 2047 encoded words.

Owns: turning the bytes of a MIME part or a header into a ``str`` without ever raising, whatever
the declared charset says (misspelt names such as ``uft-8``, Japanese mail labelled ISO-2022-JP
but written in EUC-JP, UTF-7, bad base64). Does not own: MIME structure (``mime``) or what the
text means (``freetext``, ``dsn``, ``classify``).

Everything here is read-only: a message is decoded for reading, never regenerated.
"""

from __future__ import annotations

import binascii
import codecs
import re
from functools import lru_cache

from gateway.bounce.cache import regex

# Common misspellings and vendor names seen in real bounces, mapped to a codec Python knows.
_CHARSET_ALIASES = {
    "uft-8": "utf-8",
    "utf8": "utf-8",
    "utf-8-sig": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
    "x-unknown": "latin-1",
    "unknown-8bit": "latin-1",
    "us_ascii": "ascii",
    "ansi_x3.4-1968": "ascii",
    "iso-8859-8-i": "iso-8859-8",
    "x-sjis": "shift_jis",
    "shift-jis": "shift_jis",
    "sjis": "shift_jis",
    "windows-31j": "cp932",
    "x-euc-jp": "euc-jp",
    "ks_c_5601-1987": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "iso-2022-jp": "iso2022_jp_ext",
}

# ISO-2022-JP is 7-bit by definition; Japanese carriers often label EUC-JP or Shift_JIS text
# with it. These are tried in order when the declared codec rejects the bytes.
_JAPANESE_FALLBACKS = ("iso2022_jp_2", "euc-jp", "cp932")

_ENCODED_WORD = regex(r"=\?([^?\s]{1,40})\?([bBqQ])\?([^?\s]{0,2000})\?=")
_WS_BETWEEN_WORDS = regex(r"(\?=)\s+(=\?)")
_NON_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")


@lru_cache(maxsize=256)
def codec_for(charset: str | None) -> str:
    """Return a Python codec name for a declared MIME charset, falling back to UTF-8.

    Args:
        charset: the ``charset`` parameter as written in the message, or ``None``.
    """
    if not charset:
        return "utf-8"
    name = charset.strip().strip("\"'").lower()
    name = _CHARSET_ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return "utf-8"


def decode_text(data: bytes, charset: str | None) -> str:
    """Decode bytes in a declared charset, trying sensible fallbacks; never raises.

    Args:
        data: the already transfer-decoded bytes of a part.
        charset: the declared charset, possibly misspelt or wrong.
    """
    codec = codec_for(charset)
    try:
        return data.decode(codec)  # the common case: the declared charset is right
    except (UnicodeDecodeError, LookupError):
        pass
    candidates: list[str] = []
    if codec.startswith("iso2022_jp") or codec in {"euc_jp", "shift_jis", "cp932"}:
        candidates.extend(_JAPANESE_FALLBACKS)
    candidates.append("utf-8")
    for name in candidates:
        try:
            return data.decode(name)
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode(codec, errors="replace")


def decode_transfer(body: bytes, encoding: str | None) -> bytes:
    """Undo a Content-Transfer-Encoding (RFC 2045 §6); unknown or broken input is returned as is.

    Args:
        body: the raw bytes of the part body.
        encoding: the Content-Transfer-Encoding value, or ``None``.
    """
    name = (encoding or "").strip().lower()
    if name == "base64":
        return _decode_base64(body)
    if name == "quoted-printable":
        try:
            return binascii.a2b_qp(body)
        except (binascii.Error, ValueError):
            return body
    return body


def _decode_base64(body: bytes) -> bytes:
    # RFC 2045 §6.8: decoders must ignore characters outside the alphabet. Padding errors are
    # common in hand-made bounces, so strip junk and re-pad before giving up.
    try:
        return binascii.a2b_base64(body)
    except (binascii.Error, ValueError):
        pass
    cleaned = _NON_BASE64.sub(b"", body.split(b"=", 1)[0])
    cleaned = cleaned[: len(cleaned) - len(cleaned) % 4]
    try:
        return binascii.a2b_base64(cleaned)
    except (binascii.Error, ValueError):
        return body


def decode_header(value: str) -> str:
    """Decode RFC 2047 encoded words in a header value; undecodable words are kept verbatim.

    Args:
        value: an unfolded header value.
    """
    if "=?" not in value:
        return value
    # RFC 2047 §6.2: white space between adjacent encoded words is ignored.
    value = _WS_BETWEEN_WORDS.sub(r"\1\2", value)
    return _ENCODED_WORD.sub(_decode_word, value)


def _decode_word(match: re.Match[str]) -> str:
    charset, kind, text = match.group(1), match.group(2).lower(), match.group(3)
    charset = charset.split("*", 1)[0]  # RFC 2231 §5 language suffix
    try:
        if kind == "b":
            raw = _decode_base64(text.encode("ascii", "replace") + b"==")
        else:
            raw = binascii.a2b_qp(text.replace("_", " ").encode("ascii", "replace"))
    except (binascii.Error, ValueError):
        return match.group(0)
    return decode_text(raw, charset)


def collapse_ws(text: str, limit: int = 1000) -> str:
    """Collapse runs of white space to one space, strip, and bound the length.

    Args:
        text: any text.
        limit: the maximum number of characters kept.
    """
    return " ".join(text[: limit * 4].split())[:limit]
