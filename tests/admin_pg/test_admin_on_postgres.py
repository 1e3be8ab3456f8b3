"""Every admin API test of ``tests/admin`` again, on a PostgreSQL store (``env``)."""

from __future__ import annotations

from tests.admin_pg.recollect import recollect

RECOLLECTED = recollect("admin", frozenset({"env"}), globals())
