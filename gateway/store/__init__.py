"""Store adapters behind the ``core.ports.Store`` port.

``store.path`` selects the embedded SQLite store (the default); ``store.url``
(``postgresql://``) is reserved for the shared PostgreSQL store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.core.errors import ConfigError
from gateway.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from gateway.config import StoreConfig


def open_store(config: StoreConfig) -> SqliteStore:
    """The store the config selects (not yet opened)."""
    if config.url:
        raise ConfigError("store.url", "the PostgreSQL store is not available in this version")
    return SqliteStore(config.path, config.busy_timeout)
