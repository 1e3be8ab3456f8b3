"""The shipped alert rules and dashboard against a real Prometheus scraping a running gateway
(issue 16 item 9).

Debian's ``prometheus`` binary (``dev.py test`` unpacks it from the package beside promtool;
``$PROMETHEUS`` overrides) runs on loopback with a private data directory, scraping the
gateway's ``/metrics`` every second and evaluating a copy of ``config/prometheus/alerts.yml``
every second. The copy is made here from the shipped file, with every ``for:`` at one second
and every range and offset at ``WINDOW`` (a week's offset included), so an hour's silence and
a week's rhythm fit in seconds; the expressions are otherwise the shipped ones.

The scenario: the default tenant sends a burst of mail for a few seconds, most of it to
addresses the destination refuses (``550 5.1.1``: a bounce storm), with addresses that are
garbage beside good ones (a broken integration: refused at ``RCPT``), and then nothing (a
silent tenant). Prometheus's own API must then show ``GatewayBounceRateHigh``,
``GatewayTenantRefusalsSpiking`` and ``GatewayTenantStoppedSending`` firing for that tenant,
and every query of the Grafana dashboard must be valid PromQL, the panels the scenario feeds
returning data.

A missing binary skips the test on a developer's machine and fails it in CI
(``tests/observability/tools.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.mx import free_port
from tests.observability.test_dashboards import DASHBOARD, RULES, dashboard_exprs
from tests.observability.tools import require
from tests.scenarios.harness import GatewayHarness
from tests.waiting import wait_until

#: Every range and offset of the rules in the test copy: long enough for a few scrapes at 1 s.
WINDOW = "20s"
#: The whole wait for the alerts; the test stays well under 90 s.
ALERTS_WITHIN = 60.0
STORM_MESSAGES = 8
STORM_RECIPIENTS = 5
GOOD_MESSAGES = 8
GARBAGE_PER_MESSAGE = 5  # in a session of its own each time: under smtp.error_soft_limit

_FOR = re.compile(r"^(\s*for:\s*)\S+\s*$", re.MULTILINE)
_RANGE = re.compile(r"\[\d+[smhdwy]\]")
_OFFSET = re.compile(r"\boffset\s+\d+[smhdwy]\b")

#: Dashboard panels (by title) the scenario must feed with data.
FED_PANELS = (
    "Messages accepted /s",
    "Delivered /s by provider",
    "Delivery outcomes /s by result",
    "Bounces /s by category",
    "Bounce rate by provider",
    "Bounce rate by tenant",
    "Queue depth",
    "Suppressions added /s by reason, and unblocks",
    "Outcomes /s by category",
    "Active SMTP sessions",
    "DNS lookups /s by outcome",
    "Recipients accepted /s by tenant",
    "Recipients refused at intake /s, by reply code",
    "Recipients refused at intake /s, by tenant and reason",
    "Messages per hour by tenant, and the same hour a week ago",  # the recording rules
)


def fast_rules(text: str) -> str:
    """The shipped rules with every ``for:`` at 1 s and every range and offset at ``WINDOW``."""
    text = _FOR.sub(lambda m: f"{m.group(1)}1s", text)
    text = _RANGE.sub(f"[{WINDOW}]", text)
    return _OFFSET.sub(f"offset {WINDOW}", text)


def test_the_fast_copy_changes_only_durations() -> None:
    shipped = RULES.read_text(encoding="utf-8")
    fast = fast_rules(shipped)
    assert "offset 1w" in shipped
    assert "offset 1w" not in fast
    assert f"[1h] offset {WINDOW}" not in fast
    assert f"[{WINDOW}] offset {WINDOW}" in fast
    assert all(m.group(0).split()[-1] == "1s" for m in _FOR.finditer(fast))
    assert len(list(_FOR.finditer(fast))) == len(list(_FOR.finditer(shipped))) > 5
    assert _RANGE.sub("", fast).count("[") == 0
    # Nothing but the durations moved: the same lines, the same thresholds.
    strip = lambda t: _OFFSET.sub("", _RANGE.sub("", _FOR.sub("", t)))  # noqa: E731
    assert strip(fast) == strip(shipped)


def dashboard_queries() -> list[str]:
    """The dashboard's expressions with Grafana's variables filled in as Grafana would."""
    return [
        expr.replace("$__rate_interval", "1m").replace("$tenant", ".*")
        for expr in dashboard_exprs()
        if "label_values(" not in expr
    ]


def panel_exprs(title: str) -> list[str]:
    panels = json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"]
    [panel] = [p for p in panels if p["title"] == title]
    return [
        t["expr"].replace("$__rate_interval", "1m").replace("$tenant", ".*")
        for t in panel["targets"]
    ]


@contextlib.contextmanager
def prometheus(binary: str, tmp: Path, target: str) -> Iterator[str]:
    """A Prometheus on loopback scraping ``target`` with the fast rules; yields its URL."""
    rules = tmp / "rules.yml"
    rules.write_text(fast_rules(RULES.read_text(encoding="utf-8")), encoding="utf-8")
    config = tmp / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - {rules}\n"
        "scrape_configs:\n  - job_name: gateway\n    metrics_path: /metrics\n"
        f"    static_configs:\n      - targets: ['{target}']\n",
        encoding="utf-8",
    )
    port = free_port()
    log = (tmp / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp / 'data'}",
            "--storage.tsdb.retention.time=1h",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        log.close()


@pytest.fixture
async def api(harness: GatewayHarness, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A started gateway and a Prometheus scraping its admin listener; the HTTP client of
    Prometheus's API."""
    binary = require(
        "prometheus",
        env="PROMETHEUS",
        how="apt-get download prometheus; dpkg -x prometheus_*.deb D; cp D/usr/bin/prometheus",
    )
    harness.mx("127.0.0.2", "example.com")
    gw = await harness.start(smtp={"trusted_networks": ["127.0.0.1/32"]})
    await wait_until(lambda: gw.admin_port is not None, 10, what="the admin listener up")
    with prometheus(binary, tmp_path, f"127.0.0.1:{gw.admin_port}") as url:
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:

            async def scraping() -> bool:
                # "Service Unavailable" (not JSON) until its storage is open.
                with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                    targets = (await client.get("/api/v1/targets")).json()["data"]
                    active = targets["activeTargets"]
                    return bool(active) and active[0]["health"] == "up"
                return False

            await wait_until(scraping, 20, what="prometheus scraping the gateway")
            yield client


async def query(client: httpx.AsyncClient, expr: str) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/query", params={"query": expr})
    body = response.json()
    assert response.status_code == 200, (expr, body)
    assert body["status"] == "success", (expr, body)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


async def firing(client: httpx.AsyncClient) -> set[tuple[str, str]]:
    alerts = (await client.get("/api/v1/alerts")).json()["data"]["alerts"]
    return {
        (a["labels"]["alertname"], a["labels"].get("tenant", ""))
        for a in alerts
        if a["state"] == "firing"
    }


async def test_alerts_fire_and_the_dashboard_has_data(
    harness: GatewayHarness, api: httpx.AsyncClient
) -> None:
    started = time.monotonic()
    # The burst: good mail and a bounce storm, spread over a few seconds so that Prometheus
    # sees the counters grow (a series first scraped at 30 counts no increase).
    for i in range(max(STORM_MESSAGES, GOOD_MESSAGES)):
        if i < GOOD_MESSAGES:
            # A broken integration: beside one good address, addresses that are garbage.
            garbage = [f"bad..{i}.{j}@example.com" for j in range(GARBAGE_PER_MESSAGE)]
            refused = await harness.send([f"ok-{i}@example.com", *garbage])
            assert sorted(refused) == sorted(garbage)
        if i < STORM_MESSAGES:
            storm = [f"permfail-{i}-{j}@example.com" for j in range(STORM_RECIPIENTS)]
            assert await harness.send(storm) == {}
        await asyncio.sleep(0.5)
    # Then the tenant falls silent. The storm bounces as it is relayed.
    seen: set[tuple[str, str]] = set()
    want = {
        ("GatewayBounceRateHigh", "default"),
        ("GatewayTenantRefusalsSpiking", "default"),
        ("GatewayTenantStoppedSending", "default"),
    }

    async def fired() -> bool:
        seen.update(await firing(api))
        return want <= seen

    await wait_until(fired, ALERTS_WITHIN, what=f"{want} firing (seen: {seen})")

    # The dashboard's queries, as Grafana sends them.
    failed_panels = []
    for expr in dashboard_queries():
        await query(api, expr)  # valid PromQL, accepted by this Prometheus
    for title in FED_PANELS:
        results = [await query(api, expr) for expr in panel_exprs(title)]
        if not any(results):
            failed_panels.append(title)
    assert failed_panels == [], "panels without data after the scenario"
    tenants = (
        await api.get(
            "/api/v1/label/tenant/values", params={"match[]": "gateway_messages_accepted_total"}
        )
    ).json()["data"]
    assert "default" in tenants  # the dashboard's $tenant variable
    assert time.monotonic() - started < 80
