"""SQLite queries for the admin API and the support page (mixed into ``SqliteStore``).

Owns: listing and filtering messages, recipients, suppressions and statistics for the
admin API. Does not own: the connection, the writer or the schema (``store.sqlite``).
"""

from __future__ import annotations


class AdminQueries:
    """Read and admin-write queries; relies on ``SqliteStore._read`` and ``._write``."""
