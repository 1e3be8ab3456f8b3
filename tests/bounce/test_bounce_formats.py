"""Hand-written messages for formats the corpus lacks: Brazilian providers, charsets, mbox."""

from __future__ import annotations

import base64

from gateway.bounce import parse_bounce
from gateway.core.model import Category

UOL_CHALLENGE = """\
From: AntiSpam UOL <antispam@uol.com.br>
To: app@gateway.example
Subject: =?utf-8?q?Confirma=C3=A7=C3=A3o_de_envio_=28AntiSpam_UOL=29?=
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Olá,

Você enviou uma mensagem para cliente@uol.com.br.
O destinatário utiliza o AntiSpam UOL. Para que sua mensagem seja entregue,
clique no link abaixo e digite os caracteres da imagem.
""".encode()

PORTUGUESE_BOUNCE = """\
From: MAILER-DAEMON@terra.example.br
To: app@gateway.example
Subject: Mensagem não entregue
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

A mensagem n=E3o p=F4de ser entregue aos seguintes destinat=E1rios:

<maria@terra.example.br>: 552 Caixa postal cheia
<joao@terra.example.br>: 550 Usu=E1rio inexistente
""".encode()


def _report(raw: bytes, recipient: str):  # type: ignore[no-untyped-def]
    found = {r.recipient: r for r in parse_bounce(raw)}
    assert recipient in found, sorted(map(str, found))
    return found[recipient]


def test_uol_antispam_challenge_is_spam_blocked_with_provider_hint() -> None:
    report = _report(UOL_CHALLENGE, "cliente@uol.com.br")
    assert report.category is Category.SPAM_BLOCKED
    assert report.provider_hint == "uol"


def test_portuguese_texts_per_recipient() -> None:
    assert _report(PORTUGUESE_BOUNCE, "maria@terra.example.br").category is Category.MAILBOX_FULL
    joao = _report(PORTUGUESE_BOUNCE, "joao@terra.example.br")
    assert joao.category is Category.NONEXISTENT_ADDRESS
    assert joao.reply_code == 550


def _dsn(charset: str, text: bytes, cte: str = "8bit") -> bytes:
    return (
        b"From: MAILER-DAEMON@mx.example\r\nTo: app@gateway.example\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain; charset=" + charset.encode() + b"\r\n"
        b"Content-Transfer-Encoding: " + cte.encode() + b"\r\n\r\n" + text + b"\r\n"
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.example\r\n\r\n"
        b"Final-Recipient: rfc822; User@Example.JP\r\nAction: failed\r\nStatus: 5.0.0\r\n\r\n"
        b"--B--\r\n"
    )


def test_misspelt_charset_is_read_as_utf8() -> None:
    report = _report(_dsn("uft-8", "Caixa postal está cheia".encode()), "user@example.jp")
    assert report.category is Category.MAILBOX_FULL
    assert report.kind == "dsn"


def test_iso_2022_jp_and_euc_jp_mislabelled_text() -> None:
    japanese = "メールボックスが一杯です mailbox full"
    for data in (japanese.encode("iso2022_jp"), japanese.encode("euc_jp")):
        report = _report(_dsn("ISO-2022-JP", data), "user@example.jp")
        assert report.category is Category.MAILBOX_FULL


def test_utf7_and_base64_bodies() -> None:
    body = base64.encodebytes("550 5.1.1 usuário inexistente".encode("utf-7"))
    report = _report(_dsn("UTF-7", body, "base64"), "user@example.jp")
    assert report.category is Category.NONEXISTENT_ADDRESS


def test_success_dsn_is_delivered() -> None:
    raw = _dsn("us-ascii", b"Your message was delivered.").replace(
        b"Action: failed\r\nStatus: 5.0.0", b"Action: delivered\r\nStatus: 2.0.0"
    )
    assert _report(raw, "user@example.jp").category is Category.DELIVERED


def test_auto_submitted_reply_without_subject_hint_is_auto_reply() -> None:
    raw = (
        b"From: Ana <ana@example.com.br>\nTo: app@gateway.example\nSubject: Re: Fatura\n"
        b"Auto-Submitted: auto-replied\n\nEstou de f\xc3\xa9rias at\xc3\xa9 segunda.\n"
    )
    (report,) = parse_bounce(raw)
    assert report.category is Category.AUTO_REPLY
    assert report.recipient == "ana@example.com.br"


def test_ordinary_message_yields_no_report() -> None:
    raw = b"From: a@example.com\nTo: b@example.com\nSubject: hello\n\nHi there.\n"
    assert parse_bounce(raw) == []


def test_mbox_with_two_bounces_reports_both() -> None:
    one = _dsn("us-ascii", b"550 5.1.1 user unknown")
    two = one.replace(b"User@Example.JP", b"other@example.jp")
    raw = b"From MAILER-DAEMON Thu Apr 29 23:34:45 2015\n" + one
    raw += b"From MAILER-DAEMON Thu Apr 29 23:35:45 2015\n" + two
    assert sorted(r.recipient or "" for r in parse_bounce(raw)) == [
        "other@example.jp",
        "user@example.jp",
    ]


def test_report_json_dict_is_plain() -> None:
    (report,) = parse_bounce(_dsn("us-ascii", b"550 5.1.1 user unknown"))
    data = report.to_json_dict()
    assert data["category"] == "nonexistent_address"
    assert data["recipient"] == "user@example.jp"
    assert set(data) >= {"recipient", "action", "status", "reply_code", "diagnostic", "kind"}
