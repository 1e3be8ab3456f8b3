"""Tables for issue 16's pure parts: the tenant texts' placeholder syntax (what is refused
when saved, what a message becomes), the no-record texts file, the day boundaries and the
charts' geometry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.admin import charts
from gateway.core.activity import day_starts
from gateway.core.no_record import no_record_text, parse
from gateway.core.tenant_texts import (
    TemplateError,
    TenantWords,
    check_template,
    check_texts,
    customer_message,
    fill,
    shipped_signatures,
)

GOOD = [
    "",
    "Olá!",
    "Olá {address}, seria {suggestion}?",
    "{company}\n{support}\n{sender}",
    "Linha com {company} e {company} de novo",
]
BAD = [
    ("Olá {nome}", "unknown placeholder {nome} at character 5"),
    ("Olá {Company}", "a lone '{' at character 5"),
    ("{{address}}", "a lone '{' at character 1"),
    ("fim }", "a lone '}' at character 5"),
    ("{address", "a lone '{' at character 1"),
    ("{ company }", "a lone '{' at character 1"),
    ("{company.__class__}", "a lone '{' at character 1"),
    ("tab\there", "control character"),
    ("cr\r\nlf", "control character"),
    ("x" * 2001, "longer than 2000"),
]


@pytest.mark.parametrize("text", GOOD)
def test_templates_accepted(text: str) -> None:
    check_template("message.sent", text)


@pytest.mark.parametrize(("text", "words"), BAD)
def test_templates_refused_naming_where(text: str, words: str) -> None:
    with pytest.raises(TemplateError, match=r"message\.sent") as caught:
        check_template("message.sent", text)
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"message.Sent": "x"}, "'Sent' is not a status key"),
        ({"message.sent:": "x"}, "is not a status key"),
        ({"colour": "red"}, "unknown text 'colour'"),
        ({"company_name": "a\nb"}, "company_name must be one line"),
        ({"support_channel": "{support}"}, "must not hold braces"),
        ({f"message.k{i:02d}": "x" for i in range(65)}, "at most 64 texts"),
    ],
)
def test_texts_refused(values: dict[str, str], words: str) -> None:
    with pytest.raises(TemplateError) as caught:
        check_texts(values)
    assert words in str(caught.value)


def test_texts_trimmed() -> None:
    assert check_texts({"company_name": "  ACME  ", "message.bounced:mailbox_full": " x "}) == {
        "company_name": "ACME",
        "message.bounced:mailbox_full": "x",
    }


@pytest.mark.parametrize(
    ("template", "values", "expected"),
    [
        ("Olá {address}", {"address": "a@b.c"}, "Olá a@b.c"),
        ("A\nSeria {suggestion}?\nB", {"suggestion": ""}, "A\nB"),
        ("{company}\n{support}", {"company": "X"}, "X"),
        ("{company}", {"company": "Linha\r\nquebrada"}, "Linha quebrada"),
        ("{sender}", {}, ""),
    ],
)
def test_fill(template: str, values: dict[str, str], expected: str) -> None:
    assert fill(template, values) == expected


def test_customer_message_defaults_and_fills() -> None:
    shipped = "Mensagem de sempre."
    assert customer_message(shipped, ("sent",), "pt-BR", None) == shipped
    assert customer_message(shipped, ("sent",), "pt-BR", TenantWords({})) == shipped
    words = TenantWords({"sender_addresses": "a@x.com, b@x.com", "company_name": "X"})
    message = customer_message(shipped, ("sent",), "pt-BR", words)
    assert message.startswith(shipped + "\n\n")
    assert "adicione a@x.com, b@x.com aos seus contatos" in message
    assert "Atendimento" not in message  # no support channel: its line is left out
    en = customer_message(shipped, ("sent",), "en", words)
    assert "add a@x.com, b@x.com to your contacts" in en
    own = TenantWords({"message.sent": "Só {suggestion}", "message.bounced": "B", "signature": ""})
    assert customer_message(shipped, ("sent",), "pt-BR", own) == shipped  # line left out: empty
    assert customer_message(shipped, ("bounced:x", "bounced"), "pt-BR", own) == "B"
    assert customer_message(shipped, ("sent",), "pt-BR", own, suggestion="a@b.c") == "Só a@b.c"


def test_shipped_signatures_and_no_record_texts() -> None:
    assert set(shipped_signatures()) == {"pt-BR", "en"}
    pt, en = no_record_text("pt-BR"), no_record_text("en")
    assert [c.key for c in pt.checks] == [c.key for c in en.checks]
    assert len(pt.checks) == 6
    assert no_record_text("fr") == pt
    broken = {
        "no_record": {
            lang: {"title": "t", "what_to_do": "w", "customer_message": "c",
                   "checks": [{"key": k, "title": "t", "detail": "d"}]}
            for lang, k in (("pt-BR", "a"), ("en", "b"))
        }
    }  # fmt: skip
    with pytest.raises(ValueError, match="same checks"):
        parse(broken)


def test_day_starts_are_utc_midnights_newest_first() -> None:
    brt = timezone(timedelta(hours=-3))
    starts = day_starts(datetime(2025, 3, 10, 22, 30, tzinfo=brt))  # 01:30 UTC on the 11th
    assert starts[0] == datetime(2025, 3, 11, tzinfo=UTC)
    assert starts[-1] == datetime(2025, 3, 5, tzinfo=UTC)
    assert len(starts) == 7


def test_stacked_columns_scale_to_the_tallest() -> None:
    chart = charts.stacked_columns(
        "c", "t", [("a", {"x": 1, "y": 1}), ("b", {"x": 4})], [("x", "X"), ("y", "Y")],
        width=200, height=122,
    )  # fmt: skip
    heights = {(r.title): r.h for r in chart.rects}
    assert heights == {"a: X 1": 21.0, "a: Y 1": 21.0, "b: X 4": 84.0}  # plot height 84
    assert not chart.empty
    empty = charts.stacked_columns("c", "t", [("a", {})], [("x", "X")])
    assert empty.empty
    assert empty.rects == []


def test_ranking_bars_and_cut_names() -> None:
    chart = charts.ranking("r", "t", [("a" * 40, 10), ("b", 5)], "bounced")
    widths = [r.w for r in chart.rects]
    assert widths[0] == 2 * widths[1]
    names = [label.text for label in chart.labels if label.anchor == "end"]
    assert names == ["a" * 25 + "…", "b"]
    assert chart.rects[0].title == "a" * 40 + ": 10"
