"""The bounce lab's committed corpus: real MTAs' reports, labelled by the scenario that made them.

Regenerating the corpus is ``bench/bounce_lab/lab.py`` (root, not part of CI); these tests read
what it committed under ``tests/data/bounce_lab``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.bounce import classify_reply, parse_bounce
from gateway.core.model import Category

LAB = Path(__file__).resolve().parents[2] / "tests" / "data" / "bounce_lab"
ROWS = [json.loads(line) for line in (LAB / "labels.jsonl").read_text().splitlines() if line]
CLEAR = [row for row in ROWS if not row.get("ambiguous")]


def _answer(row: dict[str, str]) -> Category | None:
    found = {r.recipient: r for r in parse_bounce((LAB / row["file"]).read_bytes())}
    report = found.get(row["recipient"])
    return report.category if report is not None else None


#: The security and policy refusals (issue 12's sender_config / spam_blocked family).
POLICY = {
    "rbl_listed": "spam_blocked",
    "no_ptr": "sender_config",
    "tls_required": "sender_config",
    "sender_domain": "spam_blocked",
    "greylisted": "receiving_problem",
}


def test_the_lab_covers_three_mtas_and_every_scenario() -> None:
    mtas = {row["source"] for row in ROWS}
    assert mtas == {"lab-postfix", "lab-exim", "lab-opensmtpd"}
    scenarios = {row["scenario"] for row in ROWS}
    assert len(scenarios) == 14
    assert len(ROWS) == 38
    for row in ROWS:
        assert (LAB / row["file"]).is_file(), row["file"]


def test_each_mta_makes_every_scenario_or_says_why_not() -> None:
    """Postfix and Exim make all 14; OpenSMTPD's missing ones are recorded with a reason."""
    run = json.loads((LAB / "lab-run.json").read_text())
    every = {row["scenario"] for row in ROWS}
    made = {
        mta: {row["scenario"] for row in ROWS if row["source"] == f"lab-{mta}"}
        for mta in ("postfix", "exim", "opensmtpd")
    }
    assert made["postfix"] == every
    assert made["exim"] == every
    assert len(made["opensmtpd"]) == 10
    skipped = run["skipped"]["opensmtpd"]
    assert set(skipped) == every - made["opensmtpd"]
    assert all(len(why) > 30 for why in skipped.values()), skipped


def test_the_security_and_policy_refusals_are_labelled_by_their_family() -> None:
    rows = [row for row in ROWS if row["scenario"] in POLICY]
    assert len(rows) == 13
    for row in rows:
        assert row["category"] == POLICY[row["scenario"]], row
        assert _answer(row) is Category(row["category"]), (row["file"], row["how"])


@pytest.mark.parametrize("row", CLEAR, ids=[f"{r['source']}-{r['scenario']}" for r in CLEAR])
def test_every_scenario_is_answered_as_it_was_made(row: dict[str, str]) -> None:
    assert _answer(row) is Category(row["category"]), row["how"]


def test_nonexistent_precision_on_the_lab_is_complete() -> None:
    said = [row for row in CLEAR if _answer(row) is Category.NONEXISTENT_ADDRESS]
    assert said, "the lab has unknown users and NXDOMAIN domains"
    assert all(row["category"] == "nonexistent_address" for row in said), said


def test_the_ambiguous_rows_say_why() -> None:
    for row in ROWS:
        if row.get("ambiguous"):
            assert len(row["ambiguous"]) > 40


def test_the_gateway_ingress_recorded_each_report_when_the_lab_ran() -> None:
    """lab-run.json: what the gateway's bounce ingress recorded for each recipient, end to end."""
    run = json.loads((LAB / "lab-run.json").read_text())
    for row in CLEAR:
        events = run["ingress"][row["recipient"]]
        categories = {e["category"] for e in events if e["category"]}
        assert row["category"] in categories, (row["recipient"], events)


#: The same family as the relay meets it in a synchronous reply, in the lab MTAs' words and in
#: the neighbouring wordings of other MTAs (Sendmail's sender-domain check, Exim's callout),
#: with documentation addresses: a refused sender is never nonexistent_address.
FAMILY = {
    "spam_blocked": [
        "450 4.1.8 <b@bounces.example>: Sender address rejected: Domain not found",
        "550 5.1.8 <b@bounces.example>: Sender address rejected: Domain not found",
        "553 5.1.8 <b@bounces.example>... Domain of sender address b@bounces.example does not "
        "exist",
        "451 4.1.8 Domain of sender address b@bounces.example does not resolve",
        "550-Verification failed for <b@bounces.example>\n550-Unrouteable address\n"
        "550 Sender verify failed",
        "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org",
        "550 rejected because 192.0.2.1 is in a black list at zen.spamhaus.org",
    ],
    "sender_config": [
        "550 5.7.1 Client host rejected: cannot find your hostname, [192.0.2.1]",
        "450 4.7.25 Client host rejected: cannot find your reverse hostname, [192.0.2.1]",
        "550 no host name found for IP address 192.0.2.1",
        "530 5.7.0 Must issue a STARTTLS command first",
        "530 5.5.1 Invalid command: Must issue a STARTTLS command first",
    ],
    "receiving_problem": [
        "450 4.3.2 <a@example.org>: Recipient address rejected: Try again later",
        "451 Temporary local problem - please try later",
        "451 4.7.1 Greylisted, please try again later",
    ],
}
FAMILY_ROWS = [(want, text) for want, texts in FAMILY.items() for text in texts]


@pytest.mark.parametrize(("want", "text"), FAMILY_ROWS, ids=[t[:40] for _w, t in FAMILY_ROWS])
def test_the_family_reads_the_same_in_a_synchronous_reply(want: str, text: str) -> None:
    assert classify_reply(None, None, text) is Category(want)
