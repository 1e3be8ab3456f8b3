"""The bounce lab's committed corpus: real MTAs' reports, labelled by the scenario that made them.

Regenerating the corpus is ``bench/bounce_lab/lab.py`` (root, not part of CI); these tests read
what it committed under ``tests/data/bounce_lab``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.bounce import parse_bounce
from gateway.core.model import Category

LAB = Path(__file__).resolve().parents[2] / "tests" / "data" / "bounce_lab"
ROWS = [json.loads(line) for line in (LAB / "labels.jsonl").read_text().splitlines() if line]
CLEAR = [row for row in ROWS if not row.get("ambiguous")]


def _answer(row: dict[str, str]) -> Category | None:
    found = {r.recipient: r for r in parse_bounce((LAB / row["file"]).read_bytes())}
    report = found.get(row["recipient"])
    return report.category if report is not None else None


def test_the_lab_covers_three_mtas_and_every_scenario() -> None:
    mtas = {row["source"] for row in ROWS}
    assert mtas == {"lab-postfix", "lab-exim", "lab-opensmtpd"}
    scenarios = {row["scenario"] for row in ROWS}
    assert len(scenarios) == 9
    for row in ROWS:
        assert (LAB / row["file"]).is_file(), row["file"]


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
