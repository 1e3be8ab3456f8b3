"""The webhook target filter (``observe.webhooks.check_target``), by table: every host that
is not public is refused unless ``webhooks.allow_private_targets`` (issue 14 item 7)."""

from __future__ import annotations

import pytest

from gateway.observe.webhook_targets import WebhookTargetRefused, check_target

#: (url, why it is refused)
REFUSED = [
    ("http://localhost./hook", "loopback name with a trailing dot"),
    ("http://LOCALHOST../hook", "case and two trailing dots"),
    ("http://api.localhost./hook", "under localhost, trailing dot"),
    ("http://127.0.0.1./hook", "loopback literal with a trailing dot"),
    ("http://127.1./hook", "legacy loopback spelling with a trailing dot"),
    ("http://100.64.0.1/hook", "carrier-grade NAT (RFC 6598), first address"),
    ("http://100.127.255.254/hook", "carrier-grade NAT, last address"),
    ("http://0.1.2.3/hook", "0.0.0.0/8"),
    ("http://169.254.169.254/latest/meta-data", "link-local (cloud metadata)"),
    ("http://192.0.0.8/hook", "IETF protocol assignments"),
    ("http://192.0.2.10/hook", "documentation, TEST-NET-1"),
    ("http://198.51.100.7/hook", "documentation, TEST-NET-2"),
    ("http://203.0.113.9/hook", "documentation, TEST-NET-3"),
    ("http://198.18.0.1/hook", "benchmarking"),
    ("http://224.0.0.1/hook", "IPv4 multicast"),
    ("http://239.255.255.250/hook", "IPv4 multicast (SSDP)"),
    ("http://240.0.0.1/hook", "reserved"),
    ("http://255.255.255.255/hook", "broadcast"),
    ("http://[::]/hook", "IPv6 unspecified"),
    ("http://[::ffff:100.64.0.1]/hook", "IPv4-mapped carrier-grade NAT"),
    ("http://[::ffff:169.254.169.254]/hook", "IPv4-mapped link-local"),
    ("http://[::ffff:7f00:1]/hook", "IPv4-mapped loopback, hex spelling"),
    ("http://[64:ff9b::a00:1]/hook", "NAT64 of 10.0.0.1"),
    ("http://[2002:a00:1::1]/hook", "6to4 of 10.0.0.1"),
    ("http://[fc00::1]/hook", "unique local, fc00::/7 lower half"),
    ("http://[fdff:ffff::1]/hook", "unique local, upper half"),
    ("http://[fe80::1]/hook", "link-local"),
    ("http://[febf::1]/hook", "link-local, last /16 of fe80::/10"),
    ("http://[fec0::1]/hook", "site-local (deprecated)"),
    ("http://[ff02::1]/hook", "IPv6 multicast"),
    ("http://[2001:db8::1]/hook", "IPv6 documentation"),
    ("http://[100::1]/hook", "discard-only"),
    ("http://intranet/hook", "single label, completed by the search list"),
    ("http://intranet./hook", "single label with a trailing dot"),
    ("http://printer.local/hook", "mDNS"),
    ("http://db.internal/hook", "private-use TLD"),
    ("http://router.home.arpa/hook", "home networks (RFC 8375)"),
]

#: URLs of public hosts, which pass.
ALLOWED = [
    "https://hooks.example.com/gateway",
    "https://hooks.example.com./gateway",
    "http://8.8.8.8/hook",
    "http://8.8.8.8./hook",
    "http://100.63.255.255/hook",
    "http://100.128.0.1/hook",
    "http://[::ffff:8.8.8.8]/hook",
    "https://[2001:4860::8888]/h",
    "https://[2606:4700:4700::1111]/h",
]


@pytest.mark.parametrize(("url", "why"), REFUSED, ids=[u for u, _ in REFUSED])
def test_non_public_targets_are_refused(url: str, why: str) -> None:
    with pytest.raises(WebhookTargetRefused):
        check_target(url, allow_private=False)


@pytest.mark.parametrize(("url", "why"), REFUSED, ids=[u for u, _ in REFUSED])
def test_non_public_targets_pass_when_private_targets_are_allowed(url: str, why: str) -> None:
    check_target(url, allow_private=True)


@pytest.mark.parametrize("url", ALLOWED)
def test_public_targets_pass(url: str) -> None:
    check_target(url, allow_private=False)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/", "file:///etc/passwd", "http:///nohost"])
def test_the_scheme_and_host_are_checked_even_when_private_targets_are_allowed(url: str) -> None:
    with pytest.raises(WebhookTargetRefused):
        check_target(url, allow_private=True)
