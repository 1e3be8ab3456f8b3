"""The ``List-Unsubscribe`` headers we prepend (RFC 2369 §3.2, RFC 8058).

Owns: the header text for one recipient: a ``mailto:`` at the bounce domain with the signed
per-recipient token, and, when a public HTTPS base URL is configured, the one-click URL
with ``List-Unsubscribe-Post`` (RFC 8058 §3.1 requires HTTPS for one-click). Pure.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"^[A-Za-z0-9_=\-]+$")
_DOMAIN = re.compile(r"^[A-Za-z0-9.\-]+$")


def unsubscribe_headers(token: str, bounce_domain: str, base_url: str) -> bytes:
    """Header lines (CRLF-terminated bytes) for a recipient's unsubscribe token.

    Args:
        token: from ``verp.make_unsubscribe_token`` (URL- and local-part-safe).
        bounce_domain: ``bounce.domain``; mail to ``u+<token>@`` it opts out.
        base_url: ``public.base_url`` (``https://…``), or empty for mailto only.

    Raises:
        ValueError: a token or domain with characters that could break the header.
    """
    if not _TOKEN.match(token) or not _DOMAIN.match(bounce_domain):
        msg = "unsafe characters in the unsubscribe token or domain"
        raise ValueError(msg)
    uris = [f"<mailto:u+{token}@{bounce_domain}?subject=unsubscribe>"]
    one_click = base_url.startswith("https://") and not any(c in base_url for c in "\r\n <>")
    if one_click:
        uris.append(f"<{base_url.rstrip('/')}/u/{token}>")
    lines = ["List-Unsubscribe: " + ",\r\n ".join(uris)]
    if one_click:
        lines.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
    return ("\r\n".join(lines) + "\r\n").encode("ascii")
