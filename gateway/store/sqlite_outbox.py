"""SQLite queries for the webhook outbox (mixed into ``SqliteStore``).

Owns: durable webhook deliveries (enqueue, claim, mark delivered/failed). Does not own:
the connection, the writer or the schema (``store.sqlite``).
"""

from __future__ import annotations


class OutboxQueries:
    """Webhook outbox queries; relies on ``SqliteStore._read`` and ``._write``."""
