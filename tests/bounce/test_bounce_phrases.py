"""Sisimai's failure phrases (tests/data/sisimai_phrases) classified as bare 550 replies.

Generated scenarios from a vocabulary nobody here wrote: see bench/bounce_phrases.py. The
floors are the measured figures; ``filtered`` phrases are answered spam_blocked on purpose
(a recipient's filter says nothing about the mailbox), so they are left out of the floor.
"""

from __future__ import annotations

from types import ModuleType

import pytest

from gateway.core.model import Category

AGREE_FLOOR = 588  # of 614 texts that are not 'filtered' (547 before the rules learnt them)
# The MTAs' and providers' own words (Lhost/Rhost modules): 145 of 206 before the rules learnt
# the families they showed. Of the rest, most are DNS failures or filters that the evidence
# rules answer on purpose, or vendors' words too vague alone ("does not like recipient.").
VENDOR_AGREE_FLOOR = 165
# DNS answers Sisimai files as network errors and we read as a domain that does not exist
# (NXDOMAIN, qmail's "no mail exchanger or IP address", Exchange Online's nonexistent domain),
# and Exchange Online's bare "invalid address", which Sisimai lists for a refused sender.
VENDOR_NONEXISTENT = {
    "responded with code NXDOMAIN",
    "Sorry, I couldn't find a mail exchanger or IP address",
    "smtpsend.dns.nonexistentdomain; nonexistent domain",
    "invalid address",
}
# Bare texts without their context: in Sisimai both refer to the *sender's* domain or address
# ("553 sender domain does not exist:", "Sender address rejected"); said of the recipient,
# the same words are the positive evidence the nonexistent_address rules need.
FALSE_NONEXISTENT = {"domain does not exist:", "address rejected"}


@pytest.fixture(scope="module")
def phrases() -> ModuleType:
    from bench import bounce_phrases  # the repository root is on pytest's path (pyproject)

    return bounce_phrases


def _reason_rows(phrases: ModuleType) -> list[dict[str, str]]:
    return [row for row in phrases.load() if row["module"].startswith("Reason/")]


def _vendor_rows(phrases: ModuleType) -> list[dict[str, str]]:
    return [row for row in phrases.load() if not row["module"].startswith("Reason/")]


def test_the_phrase_file_covers_every_mapped_reason(phrases: ModuleType) -> None:
    rows = _reason_rows(phrases)
    assert len(rows) == 628
    assert len(_vendor_rows(phrases)) == 206
    assert {row["reason"] for row in rows} >= {
        "userunknown", "mailboxfull", "blocked", "spamdetected", "suspend", "mesgtoobig",
        "norelaying", "securityerror", "expired", "toomanyconn", "hostunknown", "rejected",
    }  # fmt: skip


def test_category7_agreement_holds(phrases: ModuleType) -> None:
    rows = [row for row in _reason_rows(phrases) if row["reason"] != "filtered"]
    total, agree, misses = phrases.score(rows)
    assert sum(total.values()) == 614
    assert sum(agree.values()) >= AGREE_FLOOR, "\n".join(line for _, line in misses)


def test_nonexistent_is_given_to_no_other_reasons_phrase(phrases: ModuleType) -> None:
    wrong = {
        row["text"]
        for row in _reason_rows(phrases)
        if row["category"] != "nonexistent_address"
        and phrases.classify(row["text"]) is Category.NONEXISTENT_ADDRESS
    }
    assert wrong == FALSE_NONEXISTENT


def test_the_vendors_words_hold(phrases: ModuleType) -> None:
    rows = _vendor_rows(phrases)
    _, agree, misses = phrases.score(rows)
    assert sum(agree.values()) >= VENDOR_AGREE_FLOOR, "\n".join(line for _, line in misses)
    wrong = {
        row["text"]
        for row in rows
        if row["category"] != "nonexistent_address"
        and phrases.classify(row["text"]) is Category.NONEXISTENT_ADDRESS
    }
    assert wrong == VENDOR_NONEXISTENT


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("Throttling failure: Daily message quota exceeded.", Category.RECEIVING_PROBLEM),
        ("Too many connections from your host.", Category.RECEIVING_PROBLEM),
        ("This server does not accept mail from <bob@example.org>", Category.SPAM_BLOCKED),
        ("User is over the quota. You can try again later.", Category.MAILBOX_FULL),
        ("Sorry, this recipient is in my badrecipientto list", Category.NONEXISTENT_ADDRESS),
        ("452 Too many invalid recipients from your IP", Category.SPAM_BLOCKED),
        ("account outbounds disabled", Category.SENDER_CONFIG),
        ("Cannot route mail to user (kijitora@example.jp)", Category.NONEXISTENT_ADDRESS),
    ],
)
def test_families_the_phrases_showed(phrases: ModuleType, text: str, category: Category) -> None:
    """One sentence per family fixed from the first run, in fuller words than Sisimai's."""
    assert phrases.classify(text) is category
