"""Shared fixtures: a DNS server on loopback and fake destination MTAs.

Nothing in the tests talks to anything but 127.0.0.0/8: the gateway's resolver points at
``FakeDns`` (``dns.nameservers``) and every destination is a ``FakeMx`` on 127.0.0.x.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from tests.fakes.dns_server import FakeDns
from tests.fakes.mx import FakeMx


@pytest.fixture
def fake_dns() -> Iterator[FakeDns]:
    with FakeDns() as server:
        yield server


@pytest.fixture
async def make_mx() -> AsyncIterator[Callable[..., FakeMx]]:
    """Start fake MX servers on demand; every one is stopped at the end of the test."""
    started: list[FakeMx] = []

    def make(**kwargs: Any) -> FakeMx:
        fake = FakeMx(**kwargs).start()
        started.append(fake)
        return fake

    yield make
    for fake in started:
        fake.stop()


@pytest.fixture
async def fake_mx(make_mx: Callable[..., FakeMx]) -> FakeMx:
    return make_mx()
