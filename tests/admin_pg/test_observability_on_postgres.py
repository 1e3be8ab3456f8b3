"""The store-backed tests of ``tests/observability`` (metrics observed from the store, the
webhook outbox and its delivery) again, on a PostgreSQL store."""

from __future__ import annotations

from tests.admin_pg.recollect import recollect

RECOLLECTED = recollect("observability", frozenset({"sqlite_store", "observed"}), globals())
