"""The alert rules through promtool, from Debian's ``prometheus`` package: the file is valid
(``promtool check rules``) and each alert fires on the series it is meant for and stays quiet
on the others (``promtool test rules tests/observability/alerts_test.yml``, and
``alerts_tenants_test.yml`` for the per-tenant silence that needs a week of history). The same
rules against a real Prometheus scraping a running gateway: ``test_alerts_live.py``.

``dev.py test`` unpacks promtool from the package (``apt-get download`` + ``dpkg -x``, so no
Prometheus service is ever started) into ``.venv/bin``; ``$PROMTOOL`` overrides.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.observability.test_dashboards import RULES, parse_rules
from tests.observability.tools import require

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
UNIT_TESTS = HERE / "alerts_test.yml"
TENANT_TESTS = HERE / "alerts_tenants_test.yml"
_RECORDED = re.compile(r"\b[a-z_]+:[a-z0-9_]+:[a-z0-9_]+\b")


@pytest.fixture(scope="module")
def promtool() -> str:
    return require(
        "promtool",
        env="PROMTOOL",
        how="apt-get download prometheus; dpkg -x prometheus_*.deb D; cp D/usr/bin/promtool",
    )


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), capture_output=True, text=True, timeout=120, check=False, cwd=ROOT
    )


def test_promtool_accepts_the_rules(promtool: str) -> None:
    result = run(promtool, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    count = len(parse_rules(RULES.read_text(encoding="utf-8")))
    assert f"SUCCESS: {count} rules found" in result.stdout


@pytest.mark.parametrize("unit_tests", [UNIT_TESTS, TENANT_TESTS], ids=lambda p: p.name)
def test_alert_unit_tests_pass(promtool: str, unit_tests: Path) -> None:
    result = run(promtool, "test", "rules", str(unit_tests))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_unit_test_that_fires_it() -> None:
    tests = UNIT_TESTS.read_text(encoding="utf-8") + TENANT_TESTS.read_text(encoding="utf-8")
    fired = set(re.findall(r"alertname: (\w+)\n\s+exp_alerts:\n\s+- exp_labels", tests))
    alerts = {r.alert for r in parse_rules(RULES.read_text(encoding="utf-8")) if r.alert}
    untested = alerts - fired
    assert not untested, f"alerts with no unit test that fires them: {sorted(untested)}"


def test_a_broken_expectation_fails(promtool: str, tmp_path: Path) -> None:
    """The unit tests can fail: flip one expectation and promtool must say so."""
    text = UNIT_TESTS.read_text(encoding="utf-8").replace(
        "../../config/prometheus/alerts.yml", str(RULES)
    )
    broken = text.replace("tenant: acme}", "tenant: billing}", 1)
    assert broken != text
    target = tmp_path / "alerts_test.yml"
    target.write_text(broken, encoding="utf-8")
    result = run(promtool, "test", "rules", str(target))
    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr


def test_recorded_series_used_are_recorded_before_use() -> None:
    """Every ``level:metric:operation`` name an expression reads is recorded in the file, by
    a rule above its first reader (a group evaluates its rules in order)."""
    rules = parse_rules(RULES.read_text(encoding="utf-8"))
    recorded: set[str] = set()
    for rule in rules:
        for name in _RECORDED.findall(rule.expr):
            assert name in recorded, f"{name} is read by {rule.alert or rule.record} first"
        if rule.record:
            assert _RECORDED.fullmatch(rule.record), rule.record
            recorded.add(rule.record)
    assert len(recorded) >= 5
