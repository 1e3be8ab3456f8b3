"""Sisimai's failure phrases (tests/data/sisimai_phrases) classified as bare 550 replies.

Generated scenarios from a vocabulary nobody here wrote: see bench/bounce_phrases.py. The
floors are the measured figures; ``filtered`` phrases are answered spam_blocked on purpose
(a recipient's filter says nothing about the mailbox), so they are left out of the floor.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from gateway.core.model import Category

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bounce_phrases.py"
AGREE_FLOOR = 587  # of 614 texts that are not 'filtered' (547 before the rules learnt them)
# Bare texts without their context: in Sisimai both refer to the *sender's* domain or address
# ("553 sender domain does not exist:", "Sender address rejected"); said of the recipient,
# the same words are the positive evidence the nonexistent_address rules need.
FALSE_NONEXISTENT = {"domain does not exist:", "address rejected"}


@pytest.fixture(scope="module")
def phrases() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bounce_phrases", BENCH)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_phrase_file_covers_every_mapped_reason(phrases: ModuleType) -> None:
    rows = phrases.load()
    assert len(rows) == 628
    assert {row["reason"] for row in rows} >= {
        "userunknown", "mailboxfull", "blocked", "spamdetected", "suspend", "mesgtoobig",
        "norelaying", "securityerror", "expired", "toomanyconn", "hostunknown", "rejected",
    }  # fmt: skip


def test_category7_agreement_holds(phrases: ModuleType) -> None:
    rows = [row for row in phrases.load() if row["reason"] != "filtered"]
    total, agree, misses = phrases.score(rows)
    assert sum(total.values()) == 614
    assert sum(agree.values()) >= AGREE_FLOOR, "\n".join(line for _, line in misses)


def test_nonexistent_is_given_to_no_other_reasons_phrase(phrases: ModuleType) -> None:
    wrong = {
        row["text"]
        for row in phrases.load()
        if row["category"] != "nonexistent_address"
        and phrases.classify(row["text"]) is Category.NONEXISTENT_ADDRESS
    }
    assert wrong == FALSE_NONEXISTENT


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("Throttling failure: Daily message quota exceeded.", Category.RECEIVING_PROBLEM),
        ("Too many connections from your host.", Category.RECEIVING_PROBLEM),
        ("This server does not accept mail from <bob@example.org>", Category.SPAM_BLOCKED),
        ("User is over the quota. You can try again later.", Category.MAILBOX_FULL),
        ("Sorry, this recipient is in my badrecipientto list", Category.NONEXISTENT_ADDRESS),
    ],
)
def test_families_the_phrases_showed(phrases: ModuleType, text: str, category: Category) -> None:
    """One sentence per family fixed from the first run, in fuller words than Sisimai's."""
    assert phrases.classify(text) is category
