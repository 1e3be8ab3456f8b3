"""Corpus tables: representative real bounces per category and source, and overall accuracy.

The emails and labels are the repository's copy in ``tests/data/bounce-corpus`` (see its
README for the source and licence); the tests fail when that folder is missing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import ModuleType

import pytest

from gateway.bounce import parse_bounce
from gateway.core.model import Category

ERRATA = Path(__file__).resolve().parents[1] / "data" / "bounce-corpus-errata.jsonl"

PLACEHOLDER = "undisclosed-recipient-in-headers@libsisimai.org.invalid"

# (file under emails/, recipient, expected category): at least one per category, many sources.
SAMPLES = [
    ("arf-11.eml", None, Category.COMPLAINT),
    ("arf-16.eml", "sabineko@example.com", Category.COMPLAINT),
    ("lhost-activehunter-01.eml", "kijitora@example.org", Category.NONEXISTENT_ADDRESS),
    ("lhost-amavis-01.eml", "neko@example.co.jp", Category.NONEXISTENT_ADDRESS),
    ("lhost-amazonses-03.eml", "kijitora@example.jp", Category.MAILBOX_FULL),
    ("lhost-amazonses-11.eml", "complaint@simulator.amazonses.com", Category.COMPLAINT),
    ("lhost-amazonses-13.eml", "complaint@simulator.amazonses.com", Category.DELIVERED),
    ("lhost-amazonses-19.eml", "kijitora@example.com", Category.MAILBOX_DISABLED),
    ("lhost-amazonworkmail-03.eml", "kuroneko@example.org", Category.RECEIVING_PROBLEM),
    ("lhost-barracuda-02.eml", "kijitora@example.jp", Category.SPAM_BLOCKED),
    ("lhost-courier-01.eml", "kijitora@example.co.jp", Category.NONEXISTENT_ADDRESS),
    ("lhost-dragonfly-01.eml", "pseudo-local-part@google.example.com", Category.SENDER_CONFIG),
    ("lhost-dragonfly-08.eml", "exceedlimit@libsisimai.net", Category.MESSAGE_TOO_LARGE),
    ("lhost-dragonfly-27.eml", "neko-nyaan@example.org", Category.MAILBOX_DISABLED),
    ("lhost-einsundeins-02.eml", "kijitora@example.org", Category.MESSAGE_TOO_LARGE),
    ("lhost-exchange2003-03.eml", "kijitora@example.jp", Category.NONEXISTENT_ADDRESS),
    ("lhost-exim-01.eml", "kijitora@example.ed.jp", Category.SPAM_BLOCKED),
    ("lhost-exim-06.eml", "kijitora@example.com", Category.RECEIVING_PROBLEM),
    ("lhost-exim-07.eml", "shiba@example.com", Category.MAILBOX_FULL),
    ("lhost-exim-29.eml", "kijitora@example.co.jp", Category.SENDER_CONFIG),
    (
        "lhost-ezweb-02.eml",
        "this-local-part-does-not-exist-on-the-server@ezweb.ne.jp",
        Category.MAILBOX_DISABLED,
    ),
    ("lhost-gmail-06.eml", "kijitora@example.jp", Category.MAILBOX_FULL),
    ("lhost-gmail-18.eml", "kijitora@example.or.jp", Category.NONEXISTENT_ADDRESS),
    ("lhost-googlegroups-02.eml", "libsisimai@googlegroups.com", Category.SPAM_BLOCKED),
    ("lhost-imailserver-02.eml", "kijitora@example.co.jp", Category.MAILBOX_FULL),
    ("lhost-kddi-01.eml", "kijitora@x0000000000000.dion.ne.jp", Category.MAILBOX_FULL),
    ("lhost-mailru-03.eml", "mikeneko@example.jp", Category.MAILBOX_FULL),
    ("lhost-mailru-03.eml", "sabineko@example.jp", Category.NONEXISTENT_ADDRESS),
    ("lhost-messagingserver-02.eml", "kijitora@example.net", Category.MAILBOX_FULL),
    ("lhost-mfilter-05.eml", "kijitora@example.co.jp", Category.RECEIVING_PROBLEM),
    ("lhost-mimecast-02.eml", "sabatora@example.net", Category.SENDER_CONFIG),
    ("lhost-office365-01.eml", "kijitora@example.com", Category.NONEXISTENT_ADDRESS),
    ("lhost-opensmtpd-17.eml", "mailboxfull@libsisimai.net", Category.MAILBOX_FULL),
    ("lhost-opensmtpd-17.eml", "userunknown@libsisimai.net", Category.NONEXISTENT_ADDRESS),
    ("lhost-outlook-06.eml", "kijitora@example.com", Category.RECEIVING_PROBLEM),
    ("lhost-postfix-03.eml", "kijitora@example.net", Category.NONEXISTENT_ADDRESS),
    ("lhost-postfix-28.eml", "kijitora@gmail.example.com", Category.SENDER_CONFIG),
    ("lhost-postfix-61.eml", "neko@email.example.ua", Category.MAILBOX_DISABLED),
    ("lhost-qmail-02.eml", "filtered@example.jp", Category.NONEXISTENT_ADDRESS),
    ("lhost-qmail-03.eml", "kijitora@example.org", Category.SPAM_BLOCKED),
    ("lhost-qmail-10.eml", "kijitora@neko2.example.co.jp", Category.MAILBOX_DISABLED),
    ("lhost-receivingses-05.eml", "exceedlimit@neko.example.jp", Category.MESSAGE_TOO_LARGE),
    ("lhost-sendmail-05.eml", "kijitora@example.org", Category.MESSAGE_TOO_LARGE),
    ("lhost-sendmail-06.eml", "kijitora@example.org", Category.SENDER_CONFIG),
    ("lhost-sendmail-14.eml", "kijitora@example.com", Category.NONEXISTENT_ADDRESS),
    ("lhost-v5sendmail-05.eml", "kijitora@example.edu", Category.SPAM_BLOCKED),
    ("lhost-v5sendmail-05.eml", "kuroneko@example.or.jp", Category.NONEXISTENT_ADDRESS),
    ("lhost-x2-02.eml", "mikeneko@example.com", Category.MAILBOX_DISABLED),
    ("lhost-x3-06.eml", "xxxx@xxxx.net", Category.MAILBOX_FULL),
    ("lhost-yahoo-12.eml", "kijitora@example.jp", Category.SPAM_BLOCKED),
    ("lhost-zoho-02.eml", "sabineko@example.co.jp", Category.MAILBOX_FULL),
    ("rfc3464-28.eml", "kijitora@neko.example.jp", Category.DELIVERED),
    ("rfc3464-28.eml", "info@neko.example.jp", Category.DELIVERED),
    ("rfc3834-02.eml", "nekonyaan@example.org", Category.AUTO_REPLY),
    ("rfc3834-04.eml", "kijitora@example.org", Category.AUTO_REPLY),
    ("rhost-apple-04.eml", "pseudo-local-part-of-icloud@icloud.com", Category.MAILBOX_DISABLED),
    ("rhost-franceptt-03.eml", "pseudo-local-part-kijitora@wanadoo.fr", Category.SPAM_BLOCKED),
    ("rhost-franceptt-05.eml", "xxxx@laposte.net", Category.MAILBOX_DISABLED),
    ("rhost-google-04.eml", "kijitora@google.example.com", Category.SENDER_CONFIG),
    ("rhost-gsuite-06.eml", "sotoneko@nora.nyaan.jp", Category.RECEIVING_PROBLEM),
    ("rhost-microsoft-06.eml", "sabineko@example.onmicrosoft.com", Category.SENDER_CONFIG),
    (
        "rhost-nttdocomo-01.eml",
        "azumakuniyuki@ntt.docomo.example.ne.jp",
        Category.NONEXISTENT_ADDRESS,
    ),
    ("rhost-outlook-01.eml", "kijitora@example.jp", Category.MAILBOX_FULL),
    ("rhost-tencent-01.eml", "nekochan@qq.example.cn", Category.RECEIVING_PROBLEM),
]


@pytest.mark.parametrize(("name", "recipient", "category"), SAMPLES)
def test_corpus_sample(corpus: Path, name: str, recipient: str | None, category: Category) -> None:
    reports = parse_bounce((corpus / "emails" / name).read_bytes())
    found = {r.recipient: r for r in reports}
    assert recipient in found, f"{name}: recipients {sorted(map(str, found))}"
    assert found[recipient].category is category


def test_every_category_is_sampled() -> None:
    assert {c for _, _, c in SAMPLES} == set(Category)


def test_crlf_copies_read_like_the_originals(corpus: Path) -> None:
    for path in sorted((corpus / "emails" / "crlf").glob("*.eml")):
        original = corpus / "emails" / path.name
        if not original.exists():
            continue
        got = [(r.recipient, r.category) for r in parse_bounce(path.read_bytes())]
        want = [(r.recipient, r.category) for r in parse_bounce(original.read_bytes())]
        assert got == want, path.name


def test_arf_auth_failure_is_a_complaint_with_its_feedback_type(corpus: Path) -> None:
    (report,) = parse_bounce((corpus / "emails" / "arf-18.eml").read_bytes())
    assert report.category is Category.COMPLAINT
    assert report.feedback_type == "auth-failure"
    assert report.kind == "arf"


def test_dsn_fields_are_reported(corpus: Path) -> None:
    (report,) = parse_bounce((corpus / "emails" / "lhost-postfix-03.eml").read_bytes())
    assert report.kind == "dsn"
    assert report.action == "failed"
    assert report.reply_code == 550
    assert report.remote_mta == "mail.example.net"
    assert "Unknown user" in report.diagnostic


# Six DEV label rows name an address that is not the one in the email: a Sisimai 5.1 artefact
# ("kijitora@exampl", a local part one digit short, a mailto: link taken for the recipient) or
# a domain the anonymiser changed in the label only. tests/data/bounce-corpus-errata.jsonl
# quotes the email's own line for each, and the benchmark matches those rows by the email's
# address (it prints the figure without the errata too: 0.958).
#
# Twelve rows are answered against their label on purpose, by the evidence rules of issue 12
# (test_bounce_evidence.py): LABEL_DISAGREEMENTS pins each of them with the reason. The labels
# are Sisimai's judgement, and the README asks to disagree only after reading the email. Two of
# them since the bounce lab (tests/data/bounce_lab): real Postfix writes "Recipient address
# rejected: Access denied" for a policy REJECT, and a human part that says "over quota" beats a
# delivery agent's bare exit code. 421/433 = 0.972 (originals only: 377/388 = 0.972);
# test_every_miss_is_pinned holds the exact set of misses.
ACCURACY_FLOOR = 0.97  # DEV measures 0.9723 (issue 12's target)
NONEXISTENT_PRECISION_FLOOR = 0.995  # the target; DEV measures 1.000

# (file, recipient, our category, why the label is not followed)
LABEL_DISAGREEMENTS = [
    (
        "emails/lhost-dragonfly-04.eml",
        "postmaster@cx.libsisimai.org",
        Category.RECEIVING_PROBLEM,
        "'DNS lookup failure': a lookup that failed is no evidence that the domain does not exist",
    ),
    (
        "emails/rhost-aol-06.eml",
        "neko@libsisimai.org",
        Category.RECEIVING_PROBLEM,
        "'Malformed or unexpected name server reply': a DNS failure at the reporter's resolver",
    ),
    (
        "emails/lhost-ezweb-01.eml",
        "this-message-rejected-by-the-domain-filter@ezweb.ne.jp",
        Category.SPAM_BLOCKED,
        "refused by the recipient's domain filter: nothing says the address is wrong",
    ),
    (
        "emails/crlf/lhost-ezweb-01.eml",
        "this-message-rejected-by-the-domain-filter@ezweb.ne.jp",
        Category.SPAM_BLOCKED,
        "the CRLF copy of the row above",
    ),
    (
        "emails/lhost-receivingses-07.eml",
        "neko@neko.example.jp",
        Category.SPAM_BLOCKED,
        "'5.2.0 Message Filtered': a filter, not a missing mailbox",
    ),
    (
        "emails/rhost-facebook-03.eml",
        "kijitora@facebook.com",
        Category.SPAM_BLOCKED,
        "'Refused due to recipient preferences': the words beat the 5.1.1 status",
    ),
    (
        "emails/lhost-gmail-03.eml",
        "kijitora@example.co.jp",
        Category.SPAM_BLOCKED,
        "'554 5.7.0 Header error': a policy refusal of the message, nothing about the mailbox",
    ),
    (
        "emails/rhost-messagelabs-03.eml",
        "kijitora@example.com",
        Category.RECEIVING_PROBLEM,
        "'542 … Rejected' alone: no positive evidence about the mailbox",
    ),
    (
        "emails/lhost-amavis-03.eml",
        "kijitora@example.com",
        Category.SPAM_BLOCKED,
        (
            "Diagnostic-Code 'Reject … SPAM' (unsolicited bulk e-mail) beats the header remark in "
            "the text"
        ),
    ),
    (
        "emails/lhost-exim-30.eml",
        "kijitora@exmaple.ch",
        Category.SPAM_BLOCKED,
        (
            "'554 5.7.1 … Recipient address rejected: Access denied' is Postfix's own reply to "
            "an access(5) REJECT (the bounce lab's policy scenario makes it): a policy, not the "
            "mailbox"
        ),
    ),
    (
        "emails/lhost-sendmail-13.eml",
        "kijitora@example.or.jp",
        Category.MAILBOX_FULL,
        "'maildrop: maildir over quota.' in the transcript beats the bare 'X-Unix; 77' exit code",
    ),
    (
        "emails/lhost-exim-46.eml",
        "kijitora@example.com",
        Category.SENDER_CONFIG,
        "'Missing reverse DNS for <our IP>': our PTR, our set-up",
    ),
]


@pytest.mark.parametrize(("name", "recipient", "category", "why"), LABEL_DISAGREEMENTS)
def test_rows_answered_against_their_label_on_purpose(
    corpus: Path, bench: ModuleType, name: str, recipient: str, category: Category, why: str
) -> None:
    (label,) = [
        row
        for row in bench.load_labels(corpus)
        if (row["file"], row["recipient"]) == (name, recipient)
    ]
    assert label["category"] != category.value, f"the label now agrees: drop the row ({why})"
    found = {r.recipient: r for r in parse_bounce((corpus / name).read_bytes())}
    assert found[recipient].category is category, why


def test_corpus_accuracy_and_nonexistent_precision(corpus: Path, bench: ModuleType) -> None:
    result = bench.score(corpus, bench.load_labels(corpus))
    assert result.rows >= 400
    assert result.accuracy >= ACCURACY_FLOOR, f"accuracy {result.accuracy:.4f}"
    precision = result.precision(Category.NONEXISTENT_ADDRESS.value)
    assert precision >= NONEXISTENT_PRECISION_FLOOR, f"nonexistent precision {precision:.4f}"


@pytest.mark.parametrize(
    "erratum",
    [pytest.param(row, id=row["file"]) for row in map(json.loads, ERRATA.read_text().splitlines())],
)
def test_recipient_errata_quote_the_email(
    corpus: Path, bench: ModuleType, erratum: dict[str, str]
) -> None:
    """Each erratum names a label row, quotes the email's own line, and we read that address."""
    (label,) = [
        row
        for row in bench.load_labels(corpus, errata=False)
        if (row["file"], row["recipient"]) == (erratum["file"], erratum["recipient"])
    ]
    raw = (corpus / erratum["file"]).read_bytes().decode("latin-1")
    assert erratum["evidence"] in raw.replace("\r\n", "\n").splitlines()
    assert erratum["in_email"] in erratum["evidence"]
    whole = re.compile(r"(?<![\w.+-])" + re.escape(erratum["recipient"]) + r"(?![\w.-])")
    assert not whole.search(erratum["evidence"]), "the quoted line names the label's address"
    found = {r.recipient: r for r in parse_bounce((corpus / erratum["file"]).read_bytes())}
    assert erratum["recipient"] not in found
    assert found[erratum["in_email"]].category is Category(label["category"])


def test_every_miss_is_pinned(corpus: Path, bench: ModuleType) -> None:
    """No unexplained miss on DEV: each is a pinned evidence-rule answer (errata applied)."""
    result = bench.score(corpus, bench.load_labels(corpus))
    pinned = {(name, rcpt) for name, rcpt, _, _ in LABEL_DISAGREEMENTS}
    missed = {(row["file"], row["recipient"]) for row, _ in result.misses}
    assert missed == pinned
