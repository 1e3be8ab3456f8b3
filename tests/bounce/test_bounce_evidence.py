"""The evidence rules of the classifier (issue 12, item 3), one table per rule.

Every text here is written for this file, in the general phrasing of each family, not copied
from the corpus. The rules they check:

1. explicit human-readable diagnosis beats the enhanced status code, which beats the basic
   reply code;
2. contradicting evidence gives the category that does not block;
3. ``nonexistent_address`` needs positive evidence about the mailbox or the domain; DNS lookup
   failures, list or group posting refusals, local delivery-agent errors and the recipient's
   own filters never give it, whatever status they carry;
4. sender_config (our SPF/DKIM/DMARC/TLS/AUTH/PTR) and spam_blocked (content, reputation,
   block lists) are told apart by the words;
5. mailbox_full, spam_blocked and auto-replies are found in the human-readable part when it is
   the only evidence.
"""

from __future__ import annotations

import pytest

from gateway.bounce import classify_reply, parse_bounce
from gateway.core.model import Category

NONEXISTENT = Category.NONEXISTENT_ADDRESS


def _dsn(status: str, diagnostic: str, *, kind: str = "smtp", human: str = "") -> bytes:
    """A minimal RFC 3464 report for shop@customer.example with the given fields."""
    return (
        "From: MAILER-DAEMON@relay.example\r\n"
        "To: bounce+token@gateway.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n'
        "\r\n--b1\r\nContent-Type: text/plain\r\n\r\n"
        f"{human or 'Your message could not be delivered to one recipient.'}\r\n"
        "\r\n--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; relay.example\r\n\r\n"
        "Final-Recipient: rfc822; shop@customer.example\r\n"
        "Action: failed\r\n"
        f"Status: {status}\r\n"
        f"Diagnostic-Code: {kind}; {diagnostic}\r\n"
        "\r\n--b1--\r\n"
    ).encode()


def _category(raw: bytes) -> Category:
    reports = [r for r in parse_bounce(raw) if r.recipient == "shop@customer.example"]
    assert len(reports) == 1, reports
    category = reports[0].category
    assert category is not None
    return category


# --- 3a. DNS: a failed lookup is never a nonexistent domain --------------------------------------
@pytest.mark.parametrize(
    ("code", "status", "text"),
    [
        (
            550,
            "5.1.1",
            "Name service error for name=customer.example type=MX: Host not found, try again",
        ),
        (554, "5.4.4", "Name service error for name=customer.example type=MX: Server failure"),
        (
            550,
            "5.4.4",
            (
                "Name service error for name=customer.example type=MX: Malformed or unexpected "
                "name "
                "server reply"
            ),
        ),
        (550, "5.1.2", "DNS lookup failure: host mx.customer.example not found"),
        (550, "5.1.1", "Deferred: Name server: customer.example.: host name lookup failure"),
        (451, "4.4.3", "Temporary failure in name resolution for customer.example"),
        (550, "5.1.2", "mx.customer.example: DNS query failed (SERVFAIL), giving up"),
        (550, "5.4.4", "unable to resolve customer.example: lookup timed out"),
    ],
)
def test_a_dns_lookup_that_failed_is_never_nonexistent(code: int, status: str, text: str) -> None:
    assert classify_reply(code, status, text) is Category.RECEIVING_PROBLEM


def test_a_dns_failure_in_a_dsn_with_5_1_1_is_not_nonexistent() -> None:
    raw = _dsn(
        "5.1.1",
        "Name service error for name=customer.example type=A: Host not found, try again",
        kind="X-Postfix",
    )
    assert _category(raw) is Category.RECEIVING_PROBLEM


@pytest.mark.parametrize(
    ("code", "status", "text", "expected"),
    [
        # NXDOMAIN in words with a permanent status: positive evidence about the domain.
        (
            550,
            "5.1.2",
            (
                "Host or domain name not found. Name service error for name=gone.example type=A: "
                "Host not found"
            ),
            NONEXISTENT,
        ),
        (
            550,
            "5.1.2",
            "<shop@gone.example>... Host unknown (Name server: gone.example.: host not found)",
            NONEXISTENT,
        ),
        # The same words with a transient status contradict each other: the reading that does
        # not block.
        (
            451,
            "4.0.0",
            "DNS type 'mx' lookup of gone.example responded with code NXDOMAIN",
            Category.RECEIVING_PROBLEM,
        ),
        (450, None, "Host or domain name not found: gone.example", Category.RECEIVING_PROBLEM),
        # A null MX (RFC 7505) is a record the domain's owner published.
        (556, "5.1.10", "Recipient address has null MX", NONEXISTENT),
        (550, "5.1.10", "the domain gone.example does not accept mail (nullMX)", NONEXISTENT),
    ],
)
def test_domain_evidence(code: int, status: str | None, text: str, expected: Category) -> None:
    assert classify_reply(code, status, text) is expected


# --- 3b. Lists and groups refusing a post --------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "status", "text"),
    [
        (550, "5.1.1", "Post by non-member to a members-only list staff@lists.customer.example"),
        (
            550,
            "5.7.1",
            "Only subscribers may post to the announce list; your address is not subscribed",
        ),
        (
            550,
            "5.1.1",
            (
                "The group you tried to contact (team@customer.example) may not exist, or you may "
                "not have permission to post messages to the group"
            ),
        ),
        (
            550,
            "5.7.1",
            (
                "You are not authorized to send to this group: sales@customer.example accepts "
                "messages only from members"
            ),
        ),
        (553, "5.1.1", "Your message to the list was rejected by the moderator"),
        (
            550,
            "5.7.1",
            "sender not allowed to post to this mailing list (user unknown in the list's roster)",
        ),
    ],
)
def test_a_list_or_group_refusing_a_post_is_never_nonexistent(
    code: int, status: str, text: str
) -> None:
    category = classify_reply(code, status, text)
    assert category is not NONEXISTENT
    assert category is Category.SPAM_BLOCKED


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # flufl.bounce's sendmail_01: a routing loop whose words carry a Mailman list address.
        (
            "554 Too many hops 26 (25 max): from mailman-users-admin@python.org via localhost, "
            "to zzzzz@nfg.nl",
            Category.RECEIVING_PROBLEM,
        ),
        ("550 5.7.1 Rejected by the Mailman list's posting filter", Category.SPAM_BLOCKED),
        ("550 5.1.1 majordomo: you are not on the list", Category.SPAM_BLOCKED),
    ],
)
def test_a_list_managers_name_counts_only_as_a_word_not_inside_an_address(
    text: str, expected: Category
) -> None:
    assert classify_reply(int(text[:3]), None, text) is expected


# --- 3c. Local delivery agents -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "diagnostic", "kind"),
    [
        ("5.1.1", 'Command died with status 67: /usr/bin/procmail -a "$EXTENSION"', "X-Postfix"),
        ("5.1.1", "user unknown; exit 67", "X-Unix"),
        ("5.1.1", "maildrop: delivery agent error, cannot append message to mailbox", "X-Postfix"),
        ("5.3.0", "unknown mailer error 75", "smtp"),
        ("5.1.1", "dovecot-lda(shop): Error: delivery failed", "X-Postfix"),
    ],
)
def test_a_local_delivery_agent_error_is_never_nonexistent(
    status: str, diagnostic: str, kind: str
) -> None:
    assert _category(_dsn(status, diagnostic, kind=kind)) is Category.RECEIVING_PROBLEM


def test_an_agent_saying_over_quota_is_still_mailbox_full() -> None:
    raw = _dsn("5.2.2", "maildrop: maildir over quota.", kind="X-Unix")
    assert _category(raw) is Category.MAILBOX_FULL


def test_a_vague_agent_error_gives_way_to_a_full_mailbox_in_the_human_part() -> None:
    """The delivery agent says only "input/output error"; the reporting MTA's explanation
    says the mailbox file hit its size limit (rule 5: the human part is read)."""
    human = (
        "<shop@customer.example>: delivery failed to mailbox /var/mail/shop: error writing "
        "message: File too large"
    )
    raw = _dsn("5.2.2", "input/output error", kind="X-Unix", human=human)
    assert _category(raw) is Category.MAILBOX_FULL


def test_a_vague_agent_error_never_turns_nonexistent_through_the_human_part() -> None:
    human = "<shop@customer.example>: unknown user: shop (delivery agent exited 67)"
    raw = _dsn("5.1.1", "input/output error", kind="X-Unix", human=human)
    assert _category(raw) is not NONEXISTENT


# --- 3d. The recipient's own filter: the mailbox exists ------------------------------------------
@pytest.mark.parametrize(
    ("code", "status", "text"),
    [
        (550, "5.1.1", "Refused due to recipient preferences"),
        (550, "5.2.0", "Message filtered by the recipient's settings"),
        (554, "5.7.1", "The recipient is only accepting mail from specific email addresses"),
        (550, "5.0.0", "Rejected by the domain filter of the recipient"),
    ],
)
def test_the_recipients_own_filter_is_a_block_not_a_missing_mailbox(
    code: int, status: str, text: str
) -> None:
    assert classify_reply(code, status, text) is Category.SPAM_BLOCKED


# --- 3e. Positive evidence about the mailbox: each family's own wording --------------------------
@pytest.mark.parametrize(
    "text",
    [
        (
            "550 5.1.1 <shop@customer.example>: Recipient address rejected: User unknown in "
            "virtual "
            "mailbox table"
        ),  # Postfix
        "550 5.1.1 <shop@customer.example>... User unknown",  # Sendmail
        "550 Unrouteable address",  # Exim
        "550 No Such User Here",  # Exim (cPanel)
        "550 sorry, no mailbox here by that name. (#5.1.1)",  # qmail
        (
            "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"
        ),  # Exchange Online
        "550 5.1.1 RESOLVER.ADR.RecipNotFound; not found",  # Exchange
        (
            "The email address you entered couldn't be found. Please check the address."
        ),  # Exchange, human part
        "User shop (shop@customer.example) not listed in Domino Directory",  # Domino
        "550 5.1.1 unknown or illegal alias: shop@customer.example",  # Oracle Messaging Server
        "550-5.1.1 The email account that you tried to reach does not exist.",  # Gmail
        "554 delivery error: dd This user doesn't have a customer.example account",  # Yahoo
        "550 #5.1.0 Address rejected shop@customer.example",  # Cisco IronPort
        "550 5.1.1 shop@customer.example Not our Customer",  # Comcast
        "550 Message was not accepted -- invalid mailbox.",  # Mail.ru
        "550 5.7.1 No such user!",  # Yandex
        "550 Mailbox not found.",  # QQ
        "550 <shop@customer.example>: Recipient address rejected.",  # bare refusal at RCPT
        "550 5.1.1 Usuário inexistente",  # Brazilian providers
        "550 Adresse inconnue / destinataire inconnu",  # French providers
    ],
)
def test_each_familys_user_unknown_is_nonexistent(text: str) -> None:
    assert classify_reply(550, None, text) is NONEXISTENT


@pytest.mark.parametrize(
    "text",
    [
        "Recipient address rejected: Greylisted, please try again later",
        "Recipient address rejected: Internal system error",
        "Recipient address rejected: Virus detected in a previous message",
        "Recipient address rejected: Policy rejection for this sender",
        # an access table's REJECT with no text of its own (the bounce lab's Postfix policy)
        "<shop@customer.example>: Recipient address rejected: Access denied",
    ],
)
def test_a_recipient_refusal_for_another_reason_is_not_nonexistent(text: str) -> None:
    assert classify_reply(550, "5.7.1", text) is not NONEXISTENT


def test_a_5_1_1_status_alone_is_still_read_as_unknown_user() -> None:
    # No words at all: the enhanced status code is the best evidence there is.
    assert classify_reply(550, "5.1.1", "") is NONEXISTENT


# --- 1. Precedence: words, then enhanced status, then reply code ---------------------------------
@pytest.mark.parametrize(
    ("code", "status", "text", "expected"),
    [
        (
            552,
            "5.2.2",
            "Client host [192.0.2.7] blocked using bl.blocklist.example",
            Category.SPAM_BLOCKED,
        ),
        (550, "5.7.13", "Mailbox is full", Category.MAILBOX_FULL),
        (
            550,
            "5.3.4",
            "Too many recipients for this message; try again later",
            Category.RECEIVING_PROBLEM,
        ),
        (550, "5.2.2", "", Category.MAILBOX_FULL),
        (550, "5.7.13", "", Category.MAILBOX_DISABLED),
        (452, None, "", Category.RECEIVING_PROBLEM),
        (550, None, "", Category.RECEIVING_PROBLEM),
    ],
)
def test_words_beat_the_status_which_beats_the_reply_code(
    code: int, status: str | None, text: str, expected: Category
) -> None:
    assert classify_reply(code, status, text) is expected


def test_words_in_the_human_part_beat_a_generic_refusal_in_the_diagnostic() -> None:
    human = "The recipient's mailbox is full and cannot accept messages now."
    raw = _dsn("5.0.0", "550 Message rejected", human=human)
    assert _category(raw) is Category.MAILBOX_FULL


# --- 4. Our set-up or our reputation: by the words -----------------------------------------------
@pytest.mark.parametrize(
    ("code", "status", "text", "expected"),
    [
        (
            550,
            "5.7.26",
            (
                "This message was blocked because the sender is unauthenticated; senders must "
                "authenticate with SPF or DKIM"
            ),
            Category.SENDER_CONFIG,
        ),
        (
            550,
            "5.7.1",
            (
                "Unauthenticated email from gateway.example is not accepted due to the domain's "
                "DMARC policy"
            ),
            Category.SENDER_CONFIG,
        ),
        (550, "5.7.1", "Message rejected: SPF check failed for 192.0.2.9", Category.SENDER_CONFIG),
        (530, "5.7.0", "Must issue a STARTTLS command first", Category.SENDER_CONFIG),
        (
            550,
            "5.7.1",
            "Message refused due to SPF policy of the sending domain",
            Category.SENDER_CONFIG,
        ),
        (550, "5.7.1", "Rejected: the sender's domain fails DMARC", Category.SENDER_CONFIG),
        (
            450,
            "4.7.1",
            "Client host rejected: cannot find your reverse hostname",
            Category.SENDER_CONFIG,
        ),
        (
            550,
            "5.1.1",
            "No such user here (Authentication-Results: dkim=pass spf=pass)",
            NONEXISTENT,
        ),
        (550, "5.7.25", "The sending IP has no PTR record", Category.SENDER_CONFIG),
        (
            554,
            "5.7.1",
            "Service unavailable; client host [192.0.2.9] blocked using zen.blocklist.example",
            Category.SPAM_BLOCKED,
        ),
        (550, "5.7.1", "Message rejected: content looks like spam", Category.SPAM_BLOCKED),
        (421, "4.7.0", "Temporarily deferred due to low IP reputation", Category.SPAM_BLOCKED),
        (554, "5.7.1", "Message contains a virus", Category.SPAM_BLOCKED),
    ],
)
def test_our_setup_and_our_reputation_are_told_apart_by_the_words(
    code: int, status: str, text: str, expected: Category
) -> None:
    assert classify_reply(code, status, text) is expected


# --- 5. Only the human-readable part -------------------------------------------------------------
def _plain(subject: str, body: str, sender: str = "MAILER-DAEMON@mx.customer.example") -> bytes:
    return (
        f"From: {sender}\r\nTo: bounce+token@gateway.example\r\nSubject: {subject}\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{body}\r\n"
    ).encode()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            (
                "Delivery to <shop@customer.example> failed.\r\n"
                "The user's mailbox has exceeded its "
                "storage limit."
            ),
            Category.MAILBOX_FULL,
        ),
        (
            (
                "Delivery to <shop@customer.example> failed.\r\n"
                "The mailbox of the recipient is over "
                "its quota."
            ),
            Category.MAILBOX_FULL,
        ),
        (
            (
                "Delivery to <shop@customer.example> failed.\r\n"
                "Your message was classified as "
                "unsolicited bulk mail by our filter."
            ),
            Category.SPAM_BLOCKED,
        ),
        (
            (
                "Delivery to <shop@customer.example> failed.\r\n"
                "The message looked like spam to our "
                "content filter."
            ),
            Category.SPAM_BLOCKED,
        ),
    ],
)
def test_human_readable_only_bounces(body: str, expected: Category) -> None:
    assert _category(_plain("Undeliverable: your invoice", body)) is expected


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        (
            "Re: your invoice",
            (
                "Thank you for your message. I am out of the office until 12 January and will "
                "reply "
                "when I am back."
            ),
        ),
        ("Re: your invoice", "Estou de férias até o dia 20. Responderei assim que voltar."),
        ("Re: your invoice", "I'm currently away with limited access to e-mail."),
    ],
)
def test_an_auto_reply_is_found_from_its_words(subject: str, body: str) -> None:
    reports = parse_bounce(_plain(subject, body, sender="Shop Owner <shop@customer.example>"))
    assert [r.category for r in reports] == [Category.AUTO_REPLY]
