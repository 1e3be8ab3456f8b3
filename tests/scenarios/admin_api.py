"""A scenario's gateway as support sees it: its admin API over HTTP on loopback.

Start the gateway with ``admin=ADMIN`` (``harness.start(..., admin=ADMIN)``); ``admin`` then
sends one authenticated request to the listener the gateway opened (``admin.listen`` on
port 0) and returns the response.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.scenarios.harness import GatewayHarness
from tests.waiting import wait_until

TOKEN = "scenario-admin-token-issue13-0123456789"
ADMIN: dict[str, Any] = {"tokens": [TOKEN]}


async def admin(harness: GatewayHarness, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """``method path`` on the gateway's admin listener with the token (``httpx`` keywords:
    ``params``, ``json``)."""
    gw = harness.gw
    assert gw is not None
    await wait_until(lambda: gw.admin_port is not None, 10, what="the admin listener up")
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{harness.gw.admin_port}", timeout=10
    ) as client:
        return await client.request(
            method, path, headers={"Authorization": f"Bearer {TOKEN}"}, **kwargs
        )


async def recipient(harness: GatewayHarness, address: str) -> dict[str, Any]:
    """``GET /api/v1/recipients/{address}`` (English texts), which must answer ``200``."""
    response = await admin(harness, "GET", f"/api/v1/recipients/{address}", params={"lang": "en"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def metric(harness: GatewayHarness, name: str, **labels: str) -> float:
    """One sample of ``GET /metrics`` (0 when the series does not exist yet)."""
    from prometheus_client.parser import text_string_to_metric_families

    response = await admin(harness, "GET", "/metrics")
    assert response.status_code == 200, response.text
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0
