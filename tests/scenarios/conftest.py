from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.dns_server import FakeDns
from tests.scenarios.harness import GatewayHarness


@pytest.fixture
async def harness(fake_dns: FakeDns, tmp_path: Path) -> AsyncIterator[GatewayHarness]:
    h = GatewayHarness(fake_dns, tmp_path)
    try:
        yield h
    finally:
        await h.stop()
        h.close()
