"""Structured logs: one JSON object per line, with secrets redacted.

Owns: the log format and redaction. Callers log events with ``log_event(logger, name,
**fields)``; a field whose name suggests a secret (password, secret, token, auth) is never
written, whatever its value.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

_SECRET_WORDS = ("password", "secret", "token", "auth_data", "authorization", "credential")
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message"}


def redact(fields: dict[str, Any]) -> dict[str, Any]:
    """Drop values of secret-looking keys (the key stays, so the omission is visible)."""
    return {
        key: "[redacted]" if any(word in key.lower() for word in _SECRET_WORDS) else value
        for key, value in fields.items()
    }


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one structured event (``event`` is a stable machine name, e.g. ``smtp.accepted``)."""
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={"fields": redact(fields)})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        payload.update(getattr(record, "fields", {}))
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", {})
        tail = " ".join(f"{k}={v}" for k, v in fields.items())
        base = f"{time.strftime('%H:%M:%S', time.gmtime(record.created))} {record.levelname:<7}"
        text = f"{base} {record.name}: {record.getMessage()} {tail}".rstrip()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def configure(level: str, fmt: str) -> None:
    """Install one handler on the root logger (stderr)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiosmtpd logs every command line at INFO, AUTH blobs included: keep it at WARNING.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
