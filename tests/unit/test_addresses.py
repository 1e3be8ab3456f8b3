"""Address splitting and the conservative typo table."""

from __future__ import annotations

import pytest

from gateway.core.addresses import (
    KNOWN_DOMAINS,
    PROVIDERS,
    shipped_typo_domains,
    split,
    typo_suggestion,
)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("joe@example.com", ("joe", "example.com")),
        ("Joe.Smith@Example.COM", ("Joe.Smith", "example.com")),
        ("joe@example.com.", ("joe", "example.com")),
        ('"a@b"@example.com', ('"a@b"', "example.com")),
        ("b+tag@bounces.example", ("b+tag", "bounces.example")),
    ],
)
def test_split(address: str, expected: tuple[str, str]) -> None:
    assert split(address) == expected


@pytest.mark.parametrize("address", ["", "joe", "@example.com", "joe@", "joe@."])
def test_split_refuses_non_addresses(address: str) -> None:
    with pytest.raises(ValueError, match="not an address"):
        split(address)


@pytest.mark.parametrize(
    ("domain", "suggestion"),
    [
        # the shipped list of known typo domains
        ("gmial.com", "gmail.com"),
        ("gmal.com", "gmail.com"),
        ("gmaill.com", "gmail.com"),
        ("gnail.com", "gmail.com"),
        ("gmail.com.br", "gmail.com"),
        ("hotmal.com", "hotmail.com"),
        ("hotmial.com", "hotmail.com"),
        ("hotmail.con", "hotmail.com"),
        ("outlok.com", "outlook.com"),
        # a Brazilian provider without its .br (real domains: a suggestion, never a refusal)
        ("uol.com", "uol.com.br"),
        ("bol.com", "bol.com.br"),
        ("terra.com", "terra.com.br"),
        ("yaho.com.br", "yahoo.com.br"),
        ("yahoo.com.b", "yahoo.com.br"),
        ("icloud.con", "icloud.com"),
        ("gmail.co", "gmail.com"),
        # case and trailing dot
        ("GMIAL.COM", "gmail.com"),
        ("gmial.com.", "gmail.com"),
        # dots misplaced
        ("gmailcom", "gmail.com"),
        ("uolcom.br", "uol.com.br"),
        ("yahoo.combr", "yahoo.com.br"),
        # suffix labels that are not TLDs
        ("outlook.cmo", "outlook.com"),
        ("globo.con", "globo.com"),
        ("msn.con", "msn.com"),
        ("r7.con", "r7.com"),
        ("yahoo.com.rb", "yahoo.com.br"),
        ("terra.con.br", "terra.com.br"),
        ("ig.com.bt", None),  # .bt is Bhutan; "ig" is too short to guess
        # .co/.cm are real TLDs: only after a long brand
        ("hotmail.co", "hotmail.com"),
        ("icloud.cm", "icloud.com"),
        ("live.co", None),
        ("msn.co", None),
        # one conservative edit in a long brand
        ("gmaik.com", "gmail.com"),
        ("gmsil.com", "gmail.com"),
        ("hotmaill.com", "hotmail.com"),
        ("hotmil.com", "hotmail.com"),
        ("yahooo.com", "yahoo.com"),
        ("yhaoo.com", "yahoo.com"),  # adjacent transposition
        ("terar.com.br", "terra.com.br"),
        ("iclould.com", "icloud.com"),
        ("outlool.com", "outlook.com"),
        # two errors at once: suffix, then one edit
        ("gmial.con", "gmail.com"),
        # real domains are never typos
        ("gmail.com", None),
        ("yahoo.com.br", None),
        ("hotmail.com.br", None),
        ("uol.com.br", None),
        ("live.com", None),
        ("ymail.com", None),
        ("mail.com", None),
        ("email.com", None),
        ("me.com", None),
        ("cloud.com", None),
        ("globe.com", None),
        # a changed first letter is another name more often than a slip
        ("lobo.com", None),
        ("mgail.com", None),
        # a substitution by a key far away is not a slip of the finger
        ("gpail.com", None),
        # short brands are left alone
        ("uol.com.bt", None),
        ("bol.com.ar", None),
        ("r8.com", None),
        ("mns.com", None),
        ("ig.com", "ig.com.br"),
        # unrelated and odd input
        ("example.com", None),
        ("empresa.com.br", None),
        ("gmail.org", None),
        ("mx.gmail.com", None),
        ("", None),
        (".", None),
        ("gmail..com", "gmail.com"),  # invalid syntax anyway; the hint still helps
        ("com", None),
    ],
)
def test_typo_suggestion(domain: str, suggestion: str | None) -> None:
    assert typo_suggestion(domain) == suggestion


def test_no_provider_or_known_domain_is_ever_flagged() -> None:
    for domain in KNOWN_DOMAINS:
        assert typo_suggestion(domain) is None, domain


def test_table_suggestions_are_providers_and_never_known_domains() -> None:
    table = shipped_typo_domains()
    assert len(table) >= 40
    for typo, meant in table.items():
        assert meant in PROVIDERS, typo
        assert typo not in KNOWN_DOMAINS, typo
        assert typo_suggestion(typo) == meant
