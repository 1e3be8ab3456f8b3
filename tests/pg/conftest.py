"""Fixtures for tests under ``tests/pg``: a real PostgreSQL server and a database per test."""

from tests.pg.fixtures import pg_backend, pg_server

__all__ = ["pg_backend", "pg_server"]
