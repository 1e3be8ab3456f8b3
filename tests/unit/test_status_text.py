"""Plain words for support: every status, category and reason, in both languages."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from importlib import resources
from typing import Any

import pytest

from gateway.core import status_text
from gateway.core.model import Category, Status, SuppressionReason
from gateway.core.status_text import (
    FOLDED_LABELS,
    LANGS,
    Guidance,
    folded_category,
    folded_label,
    guidance,
)

INTAKE_REASONS = [
    "invalid",
    "typo",
    "no_such_domain",
    "null_mx",
    "suppressed",
    "quota",
    "too_many_recipients",
    "something_new",
    "",
    None,
]
SUPPRESSION_REASONS = [*(r.value for r in SuppressionReason), "unknown", None]


def assert_complete(g: Guidance) -> None:
    for text in (g.title, g.what_to_do, g.customer_message):
        assert text.strip()
        assert "\n" not in text
        assert "{" not in text  # no unfilled placeholders


@pytest.mark.parametrize("lang", [*LANGS, "pt", "pt_BR", "en-US", "EN", "fr", ""])
@pytest.mark.parametrize("category", [*Category, None])
@pytest.mark.parametrize("status", list(Status))
def test_every_status_and_category_has_guidance(
    status: Status, category: Category | None, lang: str
) -> None:
    assert_complete(guidance(status, category, None, lang))


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("reason", INTAKE_REASONS)
def test_every_intake_reason(reason: str | None, lang: str) -> None:
    assert_complete(guidance(Status.REJECTED, None, reason, lang))


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("reason", SUPPRESSION_REASONS)
def test_every_suppression_reason(reason: str | None, lang: str) -> None:
    assert_complete(guidance(Status.SUPPRESSED, None, reason, lang))


def test_both_languages_cover_the_same_cases() -> None:
    texts, suggested = status_text._shipped()
    assert set(texts["pt-BR"]) == set(texts["en"])
    assert set(suggested["pt-BR"]) == set(suggested["en"])
    assert {key.partition(":")[0] for key in texts["pt-BR"]} == {s.value for s in Status}


def _shipped_data() -> dict[str, Any]:
    text = resources.files("gateway.core").joinpath(status_text.TEXTS_FILE).read_text("utf-8")
    return tomllib.loads(text)


@pytest.mark.parametrize(
    ("breakage", "named"),
    [
        (lambda d: d["texts"]["en"].pop("rejected:invalid"), "the same keys"),
        (lambda d: d["texts"]["pt-BR"]["sent"].pop("title"), '[texts."pt-BR"."sent"]'),
        (lambda d: d["texts"]["en"]["sent"].update(title=" "), "non-empty text"),
        (lambda d: d["suggested"]["en"]["rejected:typo"].update(what_to_do="x"), "{suggestion}"),
        (lambda d: [t.pop("expired") for t in d["texts"].values()], "['expired']"),
        (lambda d: d.pop("suggested"), "[suggested]"),
    ],
)
def test_a_broken_texts_file_is_refused_naming_the_entry(
    breakage: Callable[[dict[str, Any]], object], named: str
) -> None:
    data = _shipped_data()
    status_text.parse_texts(data)  # the shipped file parses
    breakage(data)
    with pytest.raises(ValueError, match=re.escape(named)):
        status_text.parse_texts(data)


@pytest.mark.parametrize(
    ("status", "category", "reason", "title"),
    [
        (Status.BOUNCED, Category.NONEXISTENT_ADDRESS, None, "The e-mail address does not exist"),
        (Status.BOUNCED, Category.MAILBOX_FULL, None, "Mailbox full"),
        (Status.BOUNCED, Category.SPAM_BLOCKED, None, "Blocked as spam by the provider"),
        (Status.SENT, None, None, "Sent and accepted by the provider"),
        (Status.SENT, Category.DELIVERED, None, "Sent and accepted by the provider"),
        (Status.SUPPRESSED, None, "repeated_failures", "Blocked after repeated failures"),
        (Status.SUPPRESSED, None, "opt_out", "Opted out by the recipient"),
        (Status.REJECTED, None, "quota", "Sending quota exhausted"),
        (Status.REJECTED, None, "TYPO", "Misspelt e-mail domain"),
        (Status.DEFERRED, Category.MAILBOX_FULL, None, "Delivery delayed: mailbox full"),
        (Status.DEFERRED, Category.MAILBOX_DISABLED, None, "Delivery delayed, retrying"),
        (
            Status.EXPIRED,
            Category.SENDER_CONFIG,
            None,
            "Not delivered: the provider blocked our sender",
        ),
        (Status.BOUNCED, Category.AUTO_REPLY, None, "Returned by the provider"),
    ],
)
def test_the_right_text_is_chosen(
    status: Status, category: Category | None, reason: str | None, title: str
) -> None:
    assert guidance(status, category, reason, "en").title == title


def test_the_default_language_is_brazilian_portuguese() -> None:
    g = guidance(Status.BOUNCED, Category.MAILBOX_FULL, None)
    assert g.title == "Caixa de entrada cheia"
    assert g == guidance(Status.BOUNCED, Category.MAILBOX_FULL, None, "pt-BR")
    assert g == guidance(Status.BOUNCED, Category.MAILBOX_FULL, None, "de")


def test_support_advice_matches_the_design() -> None:
    en = "en"
    assert (
        "valid address"
        in guidance(Status.BOUNCED, Category.NONEXISTENT_ADDRESS, None, en).what_to_do
    )
    assert "clear the inbox" in guidance(Status.BOUNCED, Category.MAILBOX_FULL, None, en).what_to_do
    assert "trusted" in guidance(Status.BOUNCED, Category.SPAM_BLOCKED, None, en).what_to_do
    assert "new address" in guidance(Status.SUPPRESSED, None, "repeated_failures", en).what_to_do
    assert "legally final" in guidance(Status.SUPPRESSED, None, "opt_out", en).what_to_do
    sent = guidance(Status.SENT, None, None, en).what_to_do
    assert "spam" in sent
    assert "filters" in sent
    assert "address" in sent


@pytest.mark.parametrize(
    ("category", "word"),
    [
        (Category.NONEXISTENT_ADDRESS, "nonexistent_address"),
        (Category.MAILBOX_DISABLED, "nonexistent_address"),
        (Category.MAILBOX_FULL, "mailbox_full"),
        (Category.SPAM_BLOCKED, "spam_blocked"),
        (Category.SENDER_CONFIG, "spam_blocked"),
        (Category.COMPLAINT, "spam_blocked"),
        (Category.RECEIVING_PROBLEM, "receiving_problem"),
        (Category.MESSAGE_TOO_LARGE, "receiving_problem"),
        (Category.AUTO_REPLY, ""),
        (Category.DELIVERED, ""),
        (None, ""),
    ],
)
def test_folded_category(category: Category | None, word: str) -> None:
    assert folded_category(category) == word
    if word:
        assert folded_label(category, "en") == FOLDED_LABELS[word]["en"]
        assert folded_label(category) == FOLDED_LABELS[word]["pt-BR"]
    else:
        assert folded_label(category) == ""


def test_the_fold_agrees_with_category7_for_the_seven() -> None:
    for category in Category:
        if category.category7 in FOLDED_LABELS:
            assert folded_category(category) == category.category7
