"""``bounce.feedback.read_feedback``: what attribution needs from a feedback-loop report
(issue 16 item 6), read from the samples in ``tests/data/fbl`` and from hostile variants;
and ``bounce.fbl_address`` validated at start-up, naming the key."""

from __future__ import annotations

import pytest

from gateway.bounce.feedback import read_feedback
from gateway.config import from_dict
from gateway.core.errors import ConfigError
from tests.scenarios.test_feedback_loop import FOREIGN, report

DOMAIN = "bounces.gateway.test"
OURS = "<b+crhkqckbbiaihcbiu4kaci4gocdqucbqoxrff4wvgjfnasx@bounces.gateway.test>"
ORIGINAL = (
    b"Received: from client.test ([127.0.0.1])\r\n\tby gateway.test with ESMTP id 1A2B\r\n"
    b"\tfor <ana@example.com>; Mon, 07 Dec 2026 11:32:57 +0000\r\n"
    b"From: App <app@sender.example>\r\nTo: Ana <Ana@Example.com>\r\nSubject: Invoice 42\r\n"
    b"Message-ID: <inv-42@sender.example>\r\n\r\nHello.\r\n"
)


@pytest.mark.parametrize(
    ("sample", "reporter", "source_ip"),
    [
        ("yahoo_arf.eml", "Yahoo!-Mail-Feedback/2.0", "203.0.113.25"),
        ("microsoft_jmrp.eml", "hotmail.com", ""),
        ("microsoft_arf.eml", "Microsoft Junk Mail Reporting Program", "203.0.113.25"),
    ],
)
def test_samples_give_the_token_message_id_and_recipient(
    sample: str, reporter: str, source_ip: str
) -> None:
    read = read_feedback(report(sample, ORIGINAL, "ana@example.com", OURS), DOMAIN)
    assert read is not None
    assert read.feedback_type == "abuse"
    assert read.return_paths == (OURS.strip("<>"),)
    assert read.message_id == "<inv-42@sender.example>"
    assert read.recipients == ("ana@example.com",)
    assert read.original_mail_from == OURS.strip("<>")
    assert (read.reporter, read.source_ip) == (reporter, source_ip)


def test_a_foreign_return_path_is_not_ours() -> None:
    read = read_feedback(report("yahoo_arf.eml", ORIGINAL, "ana@example.com", FOREIGN), DOMAIN)
    assert read is not None
    assert read.return_paths == ()
    assert read.original_mail_from == "bounce-9931@forwarder.example"


def test_a_token_in_another_header_of_the_original_is_found() -> None:
    original = b"X-Original-Return-Path: " + OURS.encode() + b"\r\n" + ORIGINAL
    read = read_feedback(report("microsoft_jmrp.eml", original, "ana@example.com", FOREIGN), DOMAIN)
    assert read is not None
    assert read.return_paths == (OURS.strip("<>"),)


def test_unsubscribe_and_other_addresses_at_the_bounce_domain_are_not_return_paths() -> None:
    original = (
        b"List-Unsubscribe: <mailto:u+abcdefgh@bounces.gateway.test>\r\n"
        b"Reply-To: fbl@bounces.gateway.test\r\n" + ORIGINAL
    )
    read = read_feedback(report("yahoo_arf.eml", original, "ana@example.com", FOREIGN), DOMAIN)
    assert read is not None
    assert read.return_paths == ()


def test_plain_mail_is_not_a_report() -> None:
    assert read_feedback(b"Subject: hello\r\n\r\nAre you there?\r\n", DOMAIN) is None
    assert read_feedback(b"", DOMAIN) is None


def test_addresses_collected_are_bounded() -> None:
    many = b"".join(
        f"X-Trace-{i}: b+{i:040d}@bounces.gateway.test\r\n".encode() for i in range(500)
    )
    read = read_feedback(report("yahoo_arf.eml", many + ORIGINAL, "a@example.com", FOREIGN), DOMAIN)
    assert read is not None
    assert len(read.return_paths) == 20


def _config(fbl: object) -> None:
    from_dict({"bounce": {"secret": "s" * 20, "fbl_address": fbl}})


@pytest.mark.parametrize("bad", ["", "fbl@bounces.example", "b+x", "a b", "postmaster", "x" * 65])
def test_a_bad_fbl_address_stops_start_up_naming_the_key(bad: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _config(bad)
    assert caught.value.key == "bounce.fbl_address"


def test_the_default_and_a_dotted_local_part_are_accepted() -> None:
    assert from_dict({"bounce": {"secret": "s" * 20}}).bounce.fbl_address == "fbl"
    _config("arf.reports")
