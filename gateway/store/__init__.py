"""Store adapters behind the ``core.ports`` store ports (``Store`` is all of them).

``store.path`` selects the embedded SQLite store (the default); ``store.url``
(``postgresql://…``) selects the PostgreSQL store shared by several nodes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.core.errors import ConfigError
from gateway.store.postgres import PostgresStore
from gateway.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from gateway.config import StoreConfig
    from gateway.core.ports import Store


def open_store(config: StoreConfig) -> Store:
    """The store the config selects (not yet opened)."""
    if config.url:
        if not config.url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("store.url", "must be a postgresql:// URL")
        return PostgresStore(config.url, config.busy_timeout, pool_size=config.pool_size)
    return SqliteStore(config.path, config.busy_timeout)
