"""Fixtures shared by the scenario tests (the gateway harness itself is ``tests/conftest.py``'s
``harness``)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(params=["sqlite", "postgres"])
def store_section(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The ``[store]`` section of a scenario run on both stores: ``{}`` (the harness's SQLite
    file), or the URL of a fresh PostgreSQL database (``tests/conftest.py``'s ``pg_backend``,
    which fails under CI=true and skips elsewhere when PostgreSQL is missing)."""
    if request.param == "sqlite":
        return {}
    pg = request.getfixturevalue("pg_backend")
    return {"url": pg.url}
