"""MX ordering, provider families and site names: pure table tests."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from gateway.core.ports import MxAnswer, MxHost
from gateway.core.routing import order_mx, provider_of, site_of


def answer(*pairs: tuple[int, str], implicit: bool = False) -> MxAnswer:
    return MxAnswer(hosts=tuple(MxHost(p, h) for p, h in pairs), implicit=implicit)


@pytest.mark.parametrize(
    ("mx", "expected"),
    [
        (answer((10, "b.test"), (5, "a.test"), (20, "c.test")), ["a.test", "b.test", "c.test"]),
        (answer((0, "example.test"), implicit=True), ["example.test"]),
        (MxAnswer(null=True), []),
        (MxAnswer(), []),
        (answer((10, "MX.Test."), (20, "mx.test")), ["mx.test"]),  # duplicate keeps best
        (answer((0, "."), (10, "real.test")), ["real.test"]),  # RFC 7505 §4.3
    ],
)
def test_order_mx(mx: MxAnswer, expected: list[str]) -> None:
    assert order_mx(mx, random.Random(1)) == expected


def test_equal_preferences_are_shuffled_but_stay_after_better_ones() -> None:
    mx = answer((20, "backup.test"), (10, "a.test"), (10, "b.test"), (10, "c.test"))
    firsts: Counter[str] = Counter()
    rng = random.Random(42)
    for _ in range(300):
        order = order_mx(mx, rng)
        assert sorted(order[:3]) == ["a.test", "b.test", "c.test"]
        assert order[3] == "backup.test"
        firsts[order[0]] += 1
    # RFC 5321 §5.1: spread the load across equal preferences.
    assert set(firsts) == {"a.test", "b.test", "c.test"}
    assert min(firsts.values()) > 50


@pytest.mark.parametrize(
    ("host", "provider"),
    [
        ("gmail-smtp-in.l.google.com", "gmail"),
        ("ALT1.ASPMX.L.GOOGLE.COM.", "gmail"),
        ("aspmx2.googlemail.com", "gmail"),
        ("example-com.mail.protection.outlook.com", "outlook"),
        ("hotmail-com.olc.protection.outlook.com", "outlook"),
        ("mx1.hotmail.com", "outlook"),
        ("mx.hotmail.com.br", "outlook"),
        ("mta5.am0.yahoodns.net", "yahoo"),
        ("mx.uol.com.br", "uol"),
        ("mx.bol.com.br", "uol"),
        ("mx.terra.com.br", "terra"),
        ("notgoogle.com", "other"),
        ("google.com.evil.test", "other"),
        ("mx.example.test", "other"),
        ("", "other"),
    ],
)
def test_provider_of(host: str, provider: str) -> None:
    assert provider_of(host) == provider


@pytest.mark.parametrize(
    ("hosts", "site"),
    [
        (["b.test", "A.test"], "a.test,b.test"),
        (["a.test", "b.test."], "a.test,b.test"),
        (["a.test", "a.test"], "a.test"),
        (["only.test"], "only.test"),
        ([], ""),
    ],
)
def test_site_of(hosts: list[str], site: str) -> None:
    assert site_of(hosts) == site


def test_site_is_independent_of_order() -> None:
    assert site_of(["x.test", "y.test", "z.test"]) == site_of(["z.test", "x.test", "y.test"])
