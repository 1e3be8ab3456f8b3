"""Self-hosted mail delivery gateway."""

__version__ = "0.1.0"
