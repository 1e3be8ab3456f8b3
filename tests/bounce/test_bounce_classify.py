"""The rules table and the classifier the relay uses for synchronous SMTP replies."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.bounce import classify_reply, load_rules
from gateway.bounce.rules_file import default_rules
from gateway.core.model import Category

SYNC_REPLIES = [
    (
        550,
        "5.1.1",
        "<a@example.com>: Recipient address rejected: User unknown",
        "nonexistent_address",
    ),
    (550, "5.1.1", "user unknown", "nonexistent_address"),
    (
        550,
        None,
        "5.1.1 The email account that you tried to reach does not exist",
        "nonexistent_address",
    ),
    (550, "5.1.10", "RESOLVER.ADR.RecipientNotFound; Recipient not found", "nonexistent_address"),
    (556, "5.1.10", "Recipient address has null MX", "nonexistent_address"),
    (550, "5.1.2", "Host or domain name not found", "nonexistent_address"),
    (452, "4.2.2", "The email account that you tried to reach is over quota", "mailbox_full"),
    (452, "4.2.2", "mailbox full", "mailbox_full"),
    (552, "5.2.2", "Mailbox full", "mailbox_full"),
    (550, "5.2.1", "The email account that you tried to reach is disabled", "mailbox_disabled"),
    (552, "5.3.4", "Message too big for system", "message_too_large"),
    (552, "5.3.4", "too big", "message_too_large"),
    (550, "5.7.1", "SPF fail - not authorized", "sender_config"),
    (
        550,
        "5.7.26",
        "Unauthenticated email from example.com is not accepted due to domain's DMARC policy",
        "sender_config",
    ),
    (
        550,
        "5.7.25",
        "The IP address sending this message does not have a PTR record setup",
        "sender_config",
    ),
    (530, "5.7.0", "Must issue a STARTTLS command first", "sender_config"),
    (554, "5.7.1", "Message blocked as spam", "spam_blocked"),
    (
        554,
        "5.7.1",
        "Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org",
        "spam_blocked",
    ),
    (550, "5.7.1", "Message rejected due to policy", "spam_blocked"),
    (421, None, "Service not available, closing transmission channel", "spam_blocked"),
    (421, "4.7.0", "Try again later, closing connection", "receiving_problem"),
    (421, None, "", "receiving_problem"),
    (451, "4.3.0", "Temporary local problem - please try later", "receiving_problem"),
    (450, None, "4.2.0 Greylisted, please try again in 300 seconds", "spam_blocked"),
    (250, "2.0.0", "OK queued", "delivered"),
    # Portuguese texts Brazilian providers send.
    (550, None, "Caixa postal cheia", "mailbox_full"),
    (552, None, "A caixa postal do destinatário está cheia", "mailbox_full"),
    (452, None, "cota excedida para o usuario", "mailbox_full"),
    (550, None, "Usuário inexistente", "nonexistent_address"),
    (550, None, "usuario desconhecido", "nonexistent_address"),
    (550, None, "Conta desativada", "mailbox_disabled"),
    (554, None, "Mensagem muito grande", "message_too_large"),
    (550, None, "Mensagem bloqueada pelo AntiSpam: remetente bloqueado", "spam_blocked"),
]


@pytest.mark.parametrize(("code", "enhanced", "text", "expected"), SYNC_REPLIES)
def test_classify_reply(code: int, enhanced: str | None, text: str, expected: str) -> None:
    assert classify_reply(code, enhanced, text) is Category(expected)


def test_plain_transient_reply_is_a_receiving_problem() -> None:
    assert classify_reply(451, None, "Requested action aborted") is Category.RECEIVING_PROBLEM


def test_plain_permanent_reply_is_never_nonexistent() -> None:
    assert (
        classify_reply(550, None, "Requested action not taken") is not Category.NONEXISTENT_ADDRESS
    )


def test_enhanced_code_is_read_from_the_text_when_not_given() -> None:
    assert classify_reply(550, None, "5.2.2 quota") is Category.MAILBOX_FULL


def test_rejection_of_our_sender_is_not_a_nonexistent_recipient() -> None:
    text = "SMTP error from remote mail server after MAIL FROM: 550 5.1.1 sender does not exist"
    assert classify_reply(550, "5.1.1", text) is not Category.NONEXISTENT_ADDRESS


def test_packaged_rules_load_and_end_with_a_default() -> None:
    rules = default_rules()
    assert len(rules.rules) > 20
    assert rules.rules[-1].name == "default"
    assert load_rules() is rules


def test_local_rules_are_evaluated_first(tmp_path: Path) -> None:
    local = tmp_path / "local.toml"
    local.write_text(
        '[[rule]]\nname = "our-mx-quirk"\ncategory = "receiving_problem"\n'
        'phrases = ["user unknown (ldap down)"]\n',
        encoding="utf-8",
    )
    rules = load_rules(local)
    assert rules.rules[0].name == "our-mx-quirk"
    text = "user unknown (ldap down)"
    assert classify_reply(550, "5.1.1", text, rules) is Category.RECEIVING_PROBLEM
    assert classify_reply(550, "5.1.1", text) is Category.NONEXISTENT_ADDRESS


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('[[rule]]\ncategory = "nope"\n', "unknown category"),
        ('[[rule]]\ncategory = "spam_blocked"\nstatus = ["5.x.1"]\n', "bad status pattern"),
        ('[[rule]]\ncategory = "spam_blocked"\nregex = ["(unclosed"]\n', "bad regex"),
        ('[[rule]]\ncategory = "spam_blocked"\nphrase = ["typo key"]\n', "unknown key"),
        ('[[rule]]\ncategory = "spam_blocked"\ncommands = ["QUIT"]\n', "unknown command"),
        ('[[rule]]\ncategory = "spam_blocked"\nreply = ["55"]\n', "bad reply pattern"),
        ('[[rule]]\ncategory = "spam_blocked"\nreason = ""\n', "'reason' must be"),
        ('[[rule]]\ncategory = "spam_blocked"\nreason = ["a", "b"]\n', "'reason' must be"),
    ],
)
def test_bad_rules_file_names_the_file_and_rule(tmp_path: Path, body: str, problem: str) -> None:
    local = tmp_path / "bad.toml"
    local.write_text('[[rule]]\ncategory = "spam_blocked"\nphrases = ["x"]\n' + body, "utf-8")
    with pytest.raises(ValueError, match=problem) as info:
        load_rules(local)
    assert str(local) in str(info.value)
    assert "rule 1" in str(info.value)


def test_a_rule_keeps_its_reason_and_the_reason_is_no_condition(tmp_path: Path) -> None:
    local = tmp_path / "local.toml"
    local.write_text(
        '[[rule]]\nname = "one-vendor"\ncategory = "mailbox_full"\n'
        'phrases = ["vendor says the box is stuffed"]\n'
        'reason = "  documented by the vendor; one sender in the corpus  "\n',
        encoding="utf-8",
    )
    rule = load_rules(local).rules[0]
    assert rule.reason == "documented by the vendor; one sender in the corpus"
    assert classify_reply(452, None, "Vendor says the box is stuffed", load_rules(local)) is (
        Category.MAILBOX_FULL
    )


def test_every_packaged_reason_is_a_sentence() -> None:
    for rule in default_rules().rules:
        assert rule.reason == rule.reason.strip()
        assert not rule.reason or len(rule.reason) > 20, rule.name


def test_unreadable_rules_file_raises_value_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[[rule]\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken\.toml"):
        load_rules(broken)
    with pytest.raises(ValueError, match=r"missing\.toml"):
        load_rules(tmp_path / "missing.toml")
