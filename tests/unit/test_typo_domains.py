"""Known typo domains: the shipped list (data), ``smtp.typo_domains``, and the guidance that
names the suggested address.

Only a listed domain is ever refused as a typo; a real domain near a popular one (``bol.com``)
is never on the list, only suggested.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

import pytest

from gateway import config as config_module
from gateway.core.addresses import (
    KNOWN_DOMAINS,
    parse_typo_domains,
    shipped_typo_domains,
    typo_suggestion,
    typo_table,
)
from gateway.core.errors import ConfigError
from gateway.core.model import Status
from gateway.core.status_text import LANGS, guidance

ROOT = Path(__file__).resolve().parents[2]
SECRET = "test-bounce-secret-0123456789"
# Working domains of other companies, one dropped ".br" away from a Brazilian provider.
REAL_NEAR_MISSES = {
    "bol.com": "bol.com.br",
    "terra.com": "terra.com.br",
    "uol.com": "uol.com.br",
    "ig.com": "ig.com.br",
}


def _config(**smtp: object) -> config_module.Config:
    return config_module.from_dict(
        {"smtp": {"hostname": "gateway.test", **smtp}, "bounce": {"secret": SECRET}}
    )


# --- the shipped list -----------------------------------------------------------------------


def test_the_shipped_list_is_a_data_file_with_a_header_saying_what_belongs_there() -> None:
    text = resources.files("gateway.core").joinpath("typo_domains.toml").read_text("utf-8")
    header = text.split("\n\n", 1)[0]
    assert header.startswith("#")
    assert "What belongs here" in header
    assert "bol.com" in header  # what does not belong, by example
    assert dict(tomllib.loads(text)) == dict(shipped_typo_domains())


@pytest.mark.parametrize(
    ("typo", "meant"),
    [("gmial.com", "gmail.com"), ("hotmial.com", "hotmail.com"), ("gmail.com.br", "gmail.com")],
)
def test_squatted_look_alikes_are_listed(typo: str, meant: str) -> None:
    assert shipped_typo_domains()[typo] == meant


@pytest.mark.parametrize(("domain", "suggestion"), REAL_NEAR_MISSES.items())
def test_real_domains_are_not_listed_but_still_suggested(domain: str, suggestion: str) -> None:
    assert domain not in shipped_typo_domains()
    assert domain not in typo_table()
    assert typo_suggestion(domain) == suggestion


def test_no_real_provider_is_listed() -> None:
    assert not set(shipped_typo_domains()) & KNOWN_DOMAINS


# --- overrides ------------------------------------------------------------------------------


def test_overrides_add_change_and_remove_without_touching_the_shipped_list() -> None:
    table = typo_table(
        [("gmali.com", "gmail.com"), ("gmial.com", "googlemail.com"), ("hotmial.com", "")]
    )
    assert table["gmali.com"] == "gmail.com"
    assert table["gmial.com"] == "googlemail.com"
    assert "hotmial.com" not in table
    assert table["gmail.com.br"] == "gmail.com"  # the rest of the shipped list stays
    assert shipped_typo_domains()["gmial.com"] == "gmail.com"
    assert shipped_typo_domains()["hotmial.com"] == "hotmail.com"
    assert "gmali.com" not in shipped_typo_domains()


def test_parsing_normalises_case_and_trailing_dots() -> None:
    assert parse_typo_domains({"GMali.COM.": "Gmail.com"}, allow_removal=False) == (
        ("gmali.com", "gmail.com"),
    )


def test_the_shipped_file_may_not_remove_entries() -> None:
    with pytest.raises(ValueError, match="not a domain name"):
        parse_typo_domains({"gmali.com": ""}, allow_removal=False)


# --- smtp.typo_domains ----------------------------------------------------------------------


def test_config_default_is_the_shipped_list() -> None:
    assert _config().smtp.typo_domains == ()
    shipped = config_module.load(ROOT / "config/gateway.toml", env={})
    assert shipped.smtp.typo_domains == ()


def test_config_table_adds_and_overrides() -> None:
    cfg = _config(
        typo_domains={"gmali.com": "gmail.com", "gmial.com": "", "HOTMIAL.com": "msn.com"}
    )
    assert cfg.smtp.typo_domains == (
        ("gmali.com", "gmail.com"),
        ("gmial.com", ""),
        ("hotmial.com", "msn.com"),
    )
    table = typo_table(cfg.smtp.typo_domains)
    assert (table["gmali.com"], table["hotmial.com"]) == ("gmail.com", "msn.com")
    assert "gmial.com" not in table


def test_config_from_the_environment() -> None:
    cfg = config_module.load(
        ROOT / "config/gateway.toml",
        env={
            "GATEWAY__SMTP__TYPO_DOMAINS": '{ "gmali.com" = "gmail.com" }',
            "GATEWAY__BOUNCE__SECRET": SECRET,
        },
    )
    assert cfg.smtp.typo_domains == (("gmali.com", "gmail.com"),)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (["gmial.com"], "expected a table"),
        ("gmial.com = gmail.com", "expected a table"),
        ({"not a domain": "gmail.com"}, "is not a domain name"),
        ({"gmali": "gmail.com"}, "is not a domain name"),
        ({"gmali.com": "gmail"}, "is not a domain name"),
        ({"gmali.com": 1}, "is not a domain name"),
        ({"gmali.com": "gmail.com\r\nX-Evil: 1"}, "is not a domain name"),
        ({"gmail.com": "googlemail.com"}, "real mailbox provider"),
        ({"terra.com.br": "terra.com"}, "real mailbox provider"),
        ({"gmali.com": "gmali.com"}, "its own correction"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_key(value: object, says: str) -> None:
    with pytest.raises(ConfigError, match=says) as caught:
        _config(typo_domains=value)
    assert caught.value.key == "smtp.typo_domains"
    assert "smtp.typo_domains" in str(caught.value)


# --- guidance names the suggestion ----------------------------------------------------------


@pytest.mark.parametrize("reason", ["typo", "no_such_domain", "null_mx"])
@pytest.mark.parametrize("lang", LANGS)
def test_a_refusal_with_a_suggestion_names_it_for_support_and_customer(
    reason: str, lang: str
) -> None:
    g = guidance(Status.REJECTED, None, reason, lang, suggestion="maria@gmail.com")
    assert "maria@gmail.com" in g.what_to_do
    assert "maria@gmail.com" in g.customer_message
    assert "{" not in g.what_to_do + g.customer_message
    plain = guidance(Status.REJECTED, None, reason, lang)
    assert plain.title == g.title
    assert "maria@gmail.com" not in plain.what_to_do + plain.customer_message


def test_the_portuguese_customer_message_asks_did_you_mean() -> None:
    g = guidance(Status.REJECTED, None, "typo", suggestion="maria@gmail.com")
    assert "Você quis dizer maria@gmail.com?" in g.customer_message
    en = guidance(Status.REJECTED, None, "typo", "en", suggestion="maria@gmail.com")
    assert "Did you mean maria@gmail.com?" in en.customer_message


def test_a_suggestion_is_ignored_where_no_text_names_it() -> None:
    for status, reason in ((Status.SENT, None), (Status.REJECTED, "quota")):
        assert guidance(status, None, reason, suggestion="x@gmail.com") == guidance(
            status, None, reason
        )
