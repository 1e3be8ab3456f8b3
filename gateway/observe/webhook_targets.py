"""Where a webhook may be sent: the SSRF guard on endpoint URLs.

Owns: refusing every endpoint that is not a public ``http(s)`` host unless
``webhooks.allow_private_targets`` is on — loopback, private, link-local, carrier-grade NAT,
documentation and other non-global ranges, IPv4 carried in IPv6, single-label and
special-use names, trailing dots normalised. Names are not resolved here: the dispatcher's
HTTP client connects to what the name resolves to, and the check is made on the URL as the
tenant gave it. Does not own: sending (``observe.webhooks``).
"""

from __future__ import annotations

import ipaddress
import re
import socket

import httpx

from gateway.core.errors import GatewayError


class WebhookTargetRefused(GatewayError):
    """The endpoint URL is not one we will POST to (scheme, or a private address)."""


_IPV4ISH = re.compile(r"[0-9a-fA-FxX.]+")

#: Ranges refused besides what ``is_global`` says: it has changed between Python versions
#: (3.11 calls multicast global, 3.12.4 rewrote the IPv6 list), so the ranges the guard
#: promises are named here too (RFC 6890 and its IANA registries).
_NOT_PUBLIC = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network" (RFC 791); 0.0.0.0 reaches the local host
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT (RFC 6598)
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, the cloud metadata address among them
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments (RFC 6890)
        "192.0.2.0/24",  # documentation (RFC 5737)
        "192.88.99.0/24",  # 6to4 relay anycast (deprecated, RFC 7526)
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking (RFC 2544)
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address
        "::/128",
        "::1/128",
        "::ffff:0:0/96",  # IPv4-mapped: read as the IPv4 address before this list
        "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215)
        "100::/64",  # discard-only (RFC 6666)
        "2001::/23",  # IETF protocol assignments
        "2001:db8::/32",  # documentation (RFC 3849)
        "fc00::/7",  # unique local (RFC 4193)
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated, RFC 3879)
        "ff00::/8",  # multicast
    )
)

#: Special-use names that never name a public host (RFC 6761, RFC 6762, RFC 8375), and
#: ``internal`` (reserved for private use by ICANN, 2024).
_LOCAL_NAMES = ("localhost", "local", "localdomain", "internal", "home.arpa", "invalid")


def check_target(url: str, *, allow_private: bool) -> None:
    """Refuse endpoint URLs we must not POST to; resolves nothing.

    Only ``http``/``https``. Unless ``allow_private``, only a public target passes: an IP
    literal must be global (``ipaddress``'s ``is_global``) and outside every range in
    ``_NOT_PUBLIC`` (loopback, private, carrier-grade NAT, link-local, unique local,
    multicast, reserved, documentation, ...); an IPv6 address that carries an IPv4 one
    (IPv4-mapped, NAT64 ``64:ff9b::/96``, 6to4, Teredo) is judged by that IPv4 address too.
    A name is refused when it is ``localhost`` or another special-use name (or under one),
    or a single label (the resolver's search list would complete it, usually to an internal
    host). A host is read as the socket layer reads it: trailing dots dropped
    (``localhost.``, ``127.0.0.1.``), case folded, legacy IPv4 spellings (``127.1``,
    ``2130706433``, ``0x7f.0.0.1``) as the address they mean. A *name* that resolves to a
    private address is not caught here (no DNS at this layer): an egress firewall covers
    that.

    Args:
        url: the endpoint URL.
        allow_private: ``webhooks.allow_private_targets``: any host passes (the scheme is
            still checked).

    Raises:
        WebhookTargetRefused: with the reason.
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise WebhookTargetRefused(f"not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise WebhookTargetRefused("only http and https endpoints are allowed")
    host = parsed.host
    if not host:
        raise WebhookTargetRefused("the URL has no host")
    if allow_private:
        return
    # "localhost." and "127.0.0.1." are the same hosts to the resolver and to inet_aton.
    host = host.strip("[]").rstrip(".").lower()
    ip = _ip_literal(host)
    if ip is not None:
        if not _public(ip):
            raise WebhookTargetRefused(f"private or local address {ip} is not allowed")
        return
    if not host or ":" in host or "%" in host:
        raise WebhookTargetRefused(f"{parsed.host!r} is not a host name")
    if any(host == name or host.endswith("." + name) for name in _LOCAL_NAMES):
        raise WebhookTargetRefused(f"local name {host} is not allowed")
    if "." not in host:
        raise WebhookTargetRefused(f"single-label name {host} is not allowed")


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether ``ip`` (and every IPv4 address it carries) is a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:a.b.c.d reaches a.b.c.d
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.sixtofour is not None:
            candidates.append(ip.sixtofour)
        if ip.teredo is not None:
            candidates.extend(ip.teredo)
        if ip in _NAT64:  # RFC 6052: the IPv4 address is the last 32 bits
            candidates.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    for one in candidates:
        if (
            not one.is_global
            or one.is_multicast
            or one.is_reserved
            or one.is_unspecified
            or one.is_loopback
            or one.is_link_local
            or one.is_private
            or any(one.version == net.version and one in net for net in _NOT_PUBLIC)
        ):
            return False
    return True


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _IPV4ISH.fullmatch(host):
        try:  # inet_aton parses the legacy forms and never resolves
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None
