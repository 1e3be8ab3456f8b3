"""The shipped Grafana dashboard and alert rules use only metrics the gateway exports.

See docs/architecture.md, "Observable by default". Every ``gateway_*`` name in an expression
must be a sample name the registry produces once every metric has a sample — so a counter
must be used as ``…_total`` and a histogram as ``…_bucket``/``…_sum``/``…_count``, exactly as
Prometheus stores them — and every label matched right after a name must be one of that
metric's labels.

The rules file is read with a small parser for the subset of YAML it uses (PyYAML is not a
dependency); ``promtool check rules`` and ``promtool test rules`` are the stronger checks
(``test_alert_rules.py``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from gateway.observe.metrics import Metrics
from tests.observability.samples import exercise

CONFIG = Path(__file__).resolve().parents[2] / "config"
DASHBOARD = CONFIG / "grafana/gateway.json"
RULES = CONFIG / "prometheus/alerts.yml"

# A recording rule's name (``tenant:gateway_…:increase1h``) is not an exported metric.
_NAME = re.compile(r"(?<![\w:])gateway_[a-z0-9_]+(?![\w:])")
_SELECTOR = re.compile(r"(?<![\w:])(gateway_[a-z0-9_]+)\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")


@dataclass
class Rule:
    alert: str  # "" for a recording rule
    expr: str = ""
    record: str = ""
    fields: dict[str, str] = field(default_factory=dict)


def exported() -> dict[str, frozenset[str]]:
    """Sample name → label names, once every metric has at least one sample."""
    metrics = Metrics()
    exercise(metrics)
    samples: dict[str, frozenset[str]] = {}
    for family in metrics.registry.collect():
        assert family.samples, f"exercise() left {family.name} without a sample"
        for sample in family.samples:
            samples[sample.name] = frozenset(sample.labels) - {"le"}
    return samples


def dashboard_exprs() -> list[str]:
    data = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("expr", "definition", "query") and isinstance(value, str):
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(data)
    return found


def parse_rules(text: str) -> list[Rule]:
    """The rules of ``groups[*].rules``, for the YAML subset the shipped file uses."""
    rules: list[Rule] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        i += 1
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("- alert:"):
            rules.append(Rule(stripped.split(":", 1)[1].strip()))
            continue
        if stripped.startswith("- record:"):
            rules.append(Rule("", record=stripped.split(":", 1)[1].strip()))
            continue
        key, sep, value = stripped.partition(":")
        if not sep or not rules:
            continue
        value = value.strip()
        if value in ("|", "|-", ">", ">-"):
            indent = len(line) - len(line.lstrip())
            block = []
            while i < len(lines) and (
                not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent
            ):
                block.append(lines[i].strip())
                i += 1
            value = " ".join(b for b in block if b)
        if key == "expr":
            rules[-1].expr = value
        else:
            rules[-1].fields[key] = value.strip('"')
    return rules


def check_exprs(exprs: list[str], samples: dict[str, frozenset[str]]) -> list[str]:
    problems = []
    for expr in exprs:
        for name in _NAME.findall(expr):
            if name not in samples:
                problems.append(f"{name!r} is not exported (in: {expr})")
        for name, matchers in _SELECTOR.findall(expr):
            for label in _MATCHER.findall(matchers):
                if name in samples and label not in samples[name]:
                    problems.append(f"{name} has no label {label!r} (in: {expr})")
    return problems


def test_dashboard_is_grafana_json_with_the_required_panels() -> None:
    data = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert data["uid"]
    assert data["schemaVersion"] >= 36
    titles = " | ".join(p["title"].lower() for p in data["panels"])
    for wanted in ("accepted", "delivered", "bounce rate by provider", "bounce rate by tenant",
                   "outcomes /s by category", "refused", "queue depth", "queue age",
                   "oldest deferred", "suppressions", "complaints", "webhook deliveries",
                   "webhook outbox", "webhook failure", "p50, p90, p99", "smtp sessions",
                   "dns lookups", "dns lookup latency", "spam_blocked",
                   "sender_config"):  # fmt: skip
        assert wanted in titles, wanted
    ids = [p["id"] for p in data["panels"]]
    assert len(ids) == len(set(ids))
    for p in data["panels"]:
        assert p["targets"], p["title"]
        assert all(t["expr"] for t in p["targets"])


def test_dashboard_uses_only_exported_metrics() -> None:
    exprs = dashboard_exprs()
    assert len(exprs) > 20
    assert check_exprs(exprs, exported()) == []


def test_alert_rules_cover_the_required_cases() -> None:
    rules = [r for r in parse_rules(RULES.read_text(encoding="utf-8")) if r.alert]
    names = {r.alert for r in rules}
    assert {
        "GatewayDown",
        "GatewayQueueBackingUp",
        "GatewayRelayNotDelivering",
        "GatewayBounceRateHigh",
        "GatewaySpamBlockedSpike",
        "GatewaySenderConfigFailures",
        "GatewayComplaintRateHigh",
        "GatewayWebhookFailures",
    } <= names
    assert len(names) == len(rules), "duplicate alert names"
    for rule in rules:
        assert rule.expr, rule.alert
        assert rule.fields.get("severity") in ("warning", "critical"), rule.alert
        assert rule.fields.get("summary"), rule.alert
        assert rule.expr.count("(") == rule.expr.count(")"), rule.alert


def test_alert_rules_use_only_exported_metrics() -> None:
    rules = parse_rules(RULES.read_text(encoding="utf-8"))
    assert check_exprs([r.expr for r in rules], exported()) == []


def test_the_checker_catches_wrong_names_and_labels() -> None:
    samples = exported()
    assert check_exprs(["rate(gateway_messages_accepted_total[5m])"], samples) == []
    assert check_exprs(["rate(gateway_messages_accepted[5m])"], samples)  # no _total
    assert check_exprs(["gateway_accept_to_delivery_seconds > 1"], samples)  # histogram base
    assert check_exprs(['gateway_deliveries_total{address="x"}'], samples)  # no such label
