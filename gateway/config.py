"""Configuration: one TOML file plus ``GATEWAY__SECTION__KEY`` environment overrides.

Owns: the schema (frozen, slotted dataclasses, one per section), parsing of durations,
sizes and addresses, and error messages that name the dotted key at fault. Does not own:
what components do with their section; each receives its own section, never a global.

Environment overrides are written in TOML syntax, e.g.
``GATEWAY__SMTP__TRUSTED_NETWORKS='["127.0.0.0/8"]'`` or ``GATEWAY__RELAY__MX_PORT=2525``;
a bare word that is not valid TOML is taken as a string (``GATEWAY__SMTP__HOSTNAME=mx1``).
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any

from gateway.core.addresses import parse_typo_domains
from gateway.core.errors import ConfigError
from gateway.core.units import parse_duration

ENV_PREFIX = "GATEWAY__"
DEFAULT_PATH = "config/gateway.toml"

_SIZE = re.compile(r"^\s*(\d+)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1000,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1000**3,
    "gib": 1024**3,
}


@dataclass(frozen=True, slots=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


# --- value parsers: each takes (key, raw) and returns the typed value or raises ConfigError --


def _duration(key: str, raw: object) -> timedelta:
    return parse_duration(key, raw)


def _durations(key: str, raw: object) -> tuple[timedelta, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(key, f"expected a non-empty list of durations, got {raw!r}")
    values = tuple(_duration(key, item) for item in raw)
    if any(v <= timedelta(0) for v in values):
        raise ConfigError(key, "every interval must be positive")
    return values


def _size(key: str, raw: object) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0:
        return raw
    if isinstance(raw, str) and (m := _SIZE.match(raw)):
        return int(m.group(1)) * _SIZE_UNITS[(m.group(2) or "").lower()]
    raise ConfigError(key, f"expected a positive size such as 25MiB, got {raw!r}")


def _int(key: str, raw: object) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    raise ConfigError(key, f"expected an integer, got {raw!r}")


def _positive_int(key: str, raw: object) -> int:
    value = _int(key, raw)
    if value <= 0:
        raise ConfigError(key, f"expected a positive integer, got {value}")
    return value


def _workers(key: str, raw: object) -> int:
    """``"auto"`` (one per core this process may run on) or a number of processes."""
    if raw == "auto":
        return max(1, len(os.sched_getaffinity(0)))
    if isinstance(raw, int) and not isinstance(raw, bool) and 1 <= raw <= 256:
        return raw
    raise ConfigError(key, f'expected "auto" or a number of processes from 1 to 256, got {raw!r}')


def _non_negative_int(key: str, raw: object) -> int:
    value = _int(key, raw)
    if value < 0:
        raise ConfigError(key, f"expected zero or a positive integer, got {value}")
    return value


def _optional_positive_int(key: str, raw: object) -> int | None:
    if raw in (0, None, ""):
        return None
    return _positive_int(key, raw)


def _port(key: str, raw: object) -> int:
    value = _int(key, raw)
    if not 0 <= value <= 65535:
        raise ConfigError(key, f"port out of range: {value}")
    return value


def _bool(key: str, raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    raise ConfigError(key, f"expected true or false, got {raw!r}")


def _str(key: str, raw: object) -> str:
    if isinstance(raw, str):
        if any(c in raw for c in "\r\n\x00"):
            raise ConfigError(key, "must not contain CR, LF or NUL")
        return raw
    raise ConfigError(key, f"expected a string, got {raw!r}")


def _strs(key: str, raw: object) -> tuple[str, ...]:
    if isinstance(raw, list):
        return tuple(_str(key, item) for item in raw)
    raise ConfigError(key, f"expected a list of strings, got {raw!r}")


def parse_hostport(key: str, raw: object, default_port: int | None = None) -> HostPort:
    """Parse ``host:port``, ``[v6]:port`` or (with a default port) a bare host."""
    text = _str(key, raw).strip()
    m = re.match(r"^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$", text) or re.match(
        r"^([^:\s]+)(?::(\d+))?$", text
    )
    if not m or (m.group(2) is None and default_port is None):
        raise ConfigError(key, f'expected "host:port", got {raw!r}')
    port = int(m.group(2)) if m.group(2) is not None else default_port
    assert port is not None
    return HostPort(m.group(1), _port(key, port))


def _hostport(key: str, raw: object) -> HostPort:
    return parse_hostport(key, raw)


def _optional_hostport(key: str, raw: object) -> HostPort | None:
    return None if raw == "" else parse_hostport(key, raw)


def _networks(key: str, raw: object) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    try:
        return tuple(ipaddress.ip_network(item, strict=False) for item in _strs(key, raw))
    except ValueError as exc:
        raise ConfigError(key, f"not a CIDR network: {exc}") from None


def _nameservers(key: str, raw: object) -> tuple[HostPort, ...]:
    servers = []
    for item in _strs(key, raw):
        hp = parse_hostport(key, item, default_port=53)
        try:
            ipaddress.ip_address(hp.host)
        except ValueError:
            raise ConfigError(key, f"nameservers must be IP addresses, got {item!r}") from None
        servers.append(hp)
    return tuple(servers)


def _choice(*options: str) -> Callable[[str, object], str]:
    def parse(key: str, raw: object) -> str:
        value = _str(key, raw)
        if value not in options:
            raise ConfigError(key, f"expected one of {', '.join(options)}, got {value!r}")
        return value

    return parse


def _rate_limits(key: str, raw: object) -> tuple[tuple[str, float], ...]:
    if not isinstance(raw, dict):
        raise ConfigError(key, f"expected a table of provider = messages per second, got {raw!r}")
    out = []
    for name, value in raw.items():
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{key}.{name}", f"expected a positive rate, got {value!r}")
        out.append((str(name).lower(), float(value)))
    return tuple(out)


def _typo_domains(key: str, raw: object) -> tuple[tuple[str, str], ...]:
    try:
        return parse_typo_domains(raw, allow_removal=True)
    except ValueError as exc:
        raise ConfigError(key, str(exc)) from None


def _rate(key: str, raw: object) -> float:
    """A fraction from 0 to 1 (``0.05`` is 5 %)."""
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw <= 1:
        raise ConfigError(key, f"expected a fraction from 0 to 1 (0.05 is 5 %), got {raw!r}")
    return float(raw)


def _opt(parse: Callable[[str, object], Any], default: Any) -> Any:
    return field(default=default, metadata={"parse": parse})


# --- sections -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    listen: HostPort = _opt(_hostport, HostPort("127.0.0.1", 2525))
    hostname: str = _opt(_str, "")
    trusted_networks: tuple[Any, ...] = _opt(_networks, ())
    default_tenant: str = _opt(_str, "default")
    max_message_size: int = _opt(_size, 25 * 1024 * 1024)
    max_recipients: int = _opt(_positive_int, 100)
    tls_cert: str = _opt(_str, "")
    tls_key: str = _opt(_str, "")
    auth_max_failures: int = _opt(_positive_int, 3)
    auth_failure_window: timedelta = _opt(_duration, timedelta(minutes=15))
    typo_check: str = _opt(_choice("reject", "warn", "off"), "reject")
    typo_domains: tuple[tuple[str, str], ...] = _opt(_typo_domains, ())
    duplicate_window: timedelta = _opt(_duration, timedelta(hours=24))
    max_line_length: int = _opt(_positive_int, 4096)
    command_timeout: timedelta = _opt(_duration, timedelta(minutes=5))
    max_sessions: int = _opt(_positive_int, 200)
    reuse_port: bool = _opt(_bool, False)
    workers: int = _opt(_workers, _workers("smtp.workers", "auto"))
    # Hostile clients (issue 14): per-client limits, the error budget, discipline, hops.
    max_sessions_per_client: int = _opt(_positive_int, 20)
    max_sessions_per_network: int = _opt(_positive_int, 50)
    max_connections_per_minute: int = _opt(_positive_int, 60)
    trusted_sessions_per_client: int | None = _opt(_optional_positive_int, None)
    trusted_connections_per_minute: int | None = _opt(_optional_positive_int, None)
    session_lifetime: timedelta = _opt(_duration, timedelta(minutes=30))
    min_data_rate: int = _opt(_non_negative_int, 500)
    error_soft_limit: int = _opt(_positive_int, 20)
    error_hard_limit: int = _opt(_positive_int, 50)
    greeting_delay: timedelta = _opt(_duration, timedelta(seconds=1))
    max_hops: int = _opt(_positive_int, 50)
    postmaster_address: str = _opt(_str, "")


@dataclass(frozen=True, slots=True)
class StoreConfig:
    path: str = _opt(_str, "var/gateway.db")
    url: str = _opt(_str, "")
    busy_timeout: timedelta = _opt(_duration, timedelta(seconds=5))
    pool_size: int = _opt(_positive_int, 10)
    retain_content: timedelta = _opt(_duration, timedelta(days=7))
    retain_events: timedelta = _opt(_duration, timedelta(days=180))


@dataclass(frozen=True, slots=True)
class DnsConfig:
    nameservers: tuple[HostPort, ...] = _opt(_nameservers, ())
    timeout: timedelta = _opt(_duration, timedelta(seconds=5))
    cache_size: int = _opt(_positive_int, 10000)
    negative_ttl: timedelta = _opt(_duration, timedelta(minutes=5))


@dataclass(frozen=True, slots=True)
class RelayConfig:
    mx_port: int = _opt(_port, 25)
    smarthost: HostPort | None = _opt(_optional_hostport, None)
    smarthost_user: str = _opt(_str, "")
    smarthost_password: str = _opt(_str, "")
    retry_intervals: tuple[timedelta, ...] = _opt(
        _durations,
        tuple(timedelta(minutes=m) for m in (1, 5, 15, 30, 60, 120, 240)),
    )
    max_queue_lifetime: timedelta = _opt(_duration, timedelta(days=5))
    tls: str = _opt(_choice("opportunistic", "required", "off"), "opportunistic")
    tls_verify: bool = _opt(_bool, False)
    helo_name: str = _opt(_str, "")
    concurrency: int = _opt(_positive_int, 100)
    per_destination_concurrency: int = _opt(_positive_int, 50)
    max_messages_per_connection: int = _opt(_positive_int, 100)
    idle_timeout: timedelta = _opt(_duration, timedelta(seconds=10))
    connect_timeout: timedelta = _opt(_duration, timedelta(seconds=30))
    command_timeout: timedelta = _opt(_duration, timedelta(minutes=5))
    data_timeout: timedelta = _opt(_duration, timedelta(minutes=10))
    rate_limits: tuple[tuple[str, float], ...] = _opt(_rate_limits, ())
    lease: timedelta = _opt(_duration, timedelta(minutes=30))
    node_id: str = _opt(_str, "")
    shutdown_grace: timedelta = _opt(_duration, timedelta(seconds=30))
    batch_size: int = _opt(_positive_int, 200)
    ready_queue_limit: int = _opt(_positive_int, 10000)
    shaping: str = _opt(_str, "")

    @property
    def slow_attempt(self) -> timedelta:
        """How long a slow delivery attempt lasts with these timeouts: the connect, three
        commands stalled to ``command_timeout`` and the data. ``lease`` must be longer, or
        another node takes over an attempt still running (``app`` warns at start)."""
        return self.connect_timeout + 3 * self.command_timeout + self.data_timeout


@dataclass(frozen=True, slots=True)
class BounceConfig:
    domain: str = _opt(_str, "bounces.localhost")
    secret: str = _opt(_str, "")
    previous_secret: str = _opt(_str, "")
    token_lifetime: timedelta = _opt(_duration, timedelta(days=30))
    listen: HostPort | None = _opt(_optional_hostport, None)
    local_rules: str = _opt(_str, "")
    # The local part at ``domain`` that takes providers' feedback-loop (ARF) reports.
    fbl_address: str = _opt(_str, "fbl")


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    failure_threshold: int = _opt(_positive_int, 3)
    failure_window: timedelta = _opt(_duration, timedelta(days=30))
    mailbox_full_suppression: timedelta = _opt(_duration, timedelta(days=7))
    # Unblock on probation (issue 15): each tenant's default (``PATCH /api/v1/tenants``).
    probation: timedelta = _opt(_duration, timedelta(days=30))
    # Hold instead of refuse and the tenant pause (issue 15): each tenant's default.
    suppressed_action: str = _opt(_choice("refuse", "hold"), "refuse")
    hold_window: timedelta = _opt(_duration, timedelta(days=7))
    pause_bounce_rate: float = _opt(_rate, 0.05)
    pause_complaint_rate: float = _opt(_rate, 0.001)
    pause_min_messages: int = _opt(_positive_int, 500)
    pause_window: timedelta = _opt(_duration, timedelta(hours=24))
    pause_delivery: bool = _opt(_bool, True)
    sweep_interval: timedelta = _opt(_duration, timedelta(seconds=30))


@dataclass(frozen=True, slots=True)
class AdminConfig:
    listen: HostPort | None = _opt(_optional_hostport, HostPort("127.0.0.1", 8025))
    tokens: tuple[str, ...] = _opt(_strs, ())
    read_only_tokens: tuple[str, ...] = _opt(_strs, ())
    max_body_size: int = _opt(_size, 1024 * 1024)
    # POST /api/v1/suppressions/import's body (read as it arrives, not held in memory).
    max_import_size: int = _opt(_size, 256 * 1024 * 1024)


@dataclass(frozen=True, slots=True)
class PublicConfig:
    listen: HostPort | None = _opt(_optional_hostport, None)
    base_url: str = _opt(_str, "")


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    timeout: timedelta = _opt(_duration, timedelta(seconds=10))
    retry_intervals: tuple[timedelta, ...] = _opt(
        _durations, tuple(timedelta(minutes=m) for m in (1, 5, 30, 120, 720))
    )
    max_attempts: int = _opt(_positive_int, 20)
    allow_private_targets: bool = _opt(_bool, False)


@dataclass(frozen=True, slots=True)
class LogConfig:
    level: str = _opt(_choice("debug", "info", "warning", "error"), "info")
    format: str = _opt(_choice("json", "text"), "json")


@dataclass(frozen=True, slots=True)
class Config:
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    dns: DnsConfig = field(default_factory=DnsConfig)
    relay: RelayConfig = field(default_factory=RelayConfig)
    bounce: BounceConfig = field(default_factory=BounceConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    public: PublicConfig = field(default_factory=PublicConfig)
    webhooks: WebhookConfig = field(default_factory=WebhookConfig)
    log: LogConfig = field(default_factory=LogConfig)
    source: str = ""

    @property
    def helo_name(self) -> str:
        return self.relay.helo_name or self.smtp.hostname


_SECTION_TYPES = {
    "smtp": SmtpConfig,
    "store": StoreConfig,
    "dns": DnsConfig,
    "relay": RelayConfig,
    "bounce": BounceConfig,
    "policy": PolicyConfig,
    "admin": AdminConfig,
    "log": LogConfig,
    "public": PublicConfig,
    "webhooks": WebhookConfig,
}


def _build_section(name: str, cls: type, raw: object) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(name, "expected a table")
    known = {f.name: f for f in fields(cls)}
    values = {}
    for key, value in raw.items():
        dotted = f"{name}.{key}"
        if key not in known:
            raise ConfigError(dotted, "unknown key")
        values[key] = known[key].metadata["parse"](dotted, value)
    return cls(**values)


def _env_value(text: str) -> object:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def load(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load the TOML file, apply environment overrides, validate, and freeze.

    Args:
        path: the TOML file; ``None`` means ``$GATEWAY_CONFIG`` or ``config/gateway.toml``.
        env: the environment to read overrides from (defaults to ``os.environ``).

    Raises:
        ConfigError: naming the dotted key at fault (or ``config`` for an unreadable file).
    """
    env = os.environ if env is None else env
    path = Path(path or env.get("GATEWAY_CONFIG") or DEFAULT_PATH)
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("config", f"file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("config", f"cannot read {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config", f"{path} is not valid TOML: {exc}") from None
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        parts = name[len(ENV_PREFIX) :].lower().split("__")
        if len(parts) != 2 or not all(parts):
            raise ConfigError(name, "environment overrides take the form GATEWAY__SECTION__KEY")
        section, key = parts
        raw.setdefault(section, {})
        if not isinstance(raw[section], dict):
            raise ConfigError(section, "expected a table")
        raw[section][key] = _env_value(value)
    return from_dict(raw, source=str(path))


def from_dict(raw: Mapping[str, Any], source: str = "") -> Config:
    """Validate a parsed mapping into a ``Config`` (see ``load``)."""
    sections = {}
    for name, value in raw.items():
        if name not in _SECTION_TYPES:
            raise ConfigError(name, "unknown section")
        sections[name] = _build_section(name, _SECTION_TYPES[name], value)
    config = Config(**sections, source=source)
    _validate(config)
    return config


_MIN_LINE_LENGTH = 1000


def _validate(config: Config) -> None:
    if not config.smtp.hostname:
        # No getfqdn(): that is a DNS query. The kernel's name is what we can know locally.
        object.__setattr__(config.smtp, "hostname", socket.gethostname())
    if len(config.bounce.secret) < 16:
        raise ConfigError("bounce.secret", "must be set, at least 16 characters (an HMAC key)")
    if bool(config.smtp.tls_cert) != bool(config.smtp.tls_key):
        raise ConfigError("smtp.tls_key", "smtp.tls_cert and smtp.tls_key go together")
    if config.smtp.max_line_length < _MIN_LINE_LENGTH:
        # RFC 5321 §4.5.3.1.6: 1000 bytes with the CRLF is what every server must take.
        raise ConfigError("smtp.max_line_length", f"must be at least {_MIN_LINE_LENGTH} bytes")
    _validate_hostile_client_limits(config)
    for key in ("tls_cert", "tls_key"):
        value = getattr(config.smtp, key)
        if value and not Path(value).is_file():
            raise ConfigError(f"smtp.{key}", f"file not found: {value}")
    if config.store.url and not config.store.url.startswith(("postgresql://", "postgres://")):
        raise ConfigError("store.url", "expected a postgresql:// URL")
    if bool(config.relay.smarthost_user) != bool(config.relay.smarthost_password):
        raise ConfigError("relay.smarthost_password", "smarthost user and password go together")
    if "@" in config.bounce.domain or not config.bounce.domain:
        raise ConfigError("bounce.domain", "expected a domain name")
    _validate_fbl_address(config.bounce.fbl_address)


_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*=?^_`{|}~-]+)*")


def _validate_fbl_address(local: str) -> None:
    """``bounce.fbl_address``: a dot-atom local part (RFC 5321 §4.1.2) without ``+`` (the
    signed ``b+``/``u+`` addresses use it), not ``postmaster`` (RFC 5321 §4.5.1 mail)."""
    if not _LOCAL_PART.fullmatch(local) or len(local) > 64:
        raise ConfigError(
            "bounce.fbl_address",
            f"expected the local part of an address (letters, digits, dots; no '+' or '@'),"
            f" got {local!r}",
        )
    if local.lower() == "postmaster":
        raise ConfigError("bounce.fbl_address", "must not be postmaster (it has its own use)")


def _validate_hostile_client_limits(config: Config) -> None:
    smtp = config.smtp
    if smtp.error_soft_limit > smtp.error_hard_limit:
        raise ConfigError("smtp.error_soft_limit", "must not be above smtp.error_hard_limit")
    if smtp.max_sessions_per_client > smtp.max_sessions_per_network:
        raise ConfigError(
            "smtp.max_sessions_per_client", "must not be above smtp.max_sessions_per_network"
        )
    if smtp.session_lifetime <= timedelta(0):
        raise ConfigError("smtp.session_lifetime", "must be positive")
    if not timedelta(0) <= smtp.greeting_delay < smtp.command_timeout:
        raise ConfigError(
            "smtp.greeting_delay", "must be at least 0s and shorter than smtp.command_timeout"
        )
    address = smtp.postmaster_address
    if address:
        local, at, domain = address.rpartition("@")
        if not at or not local or not domain or any(c in address for c in " <>\t"):
            raise ConfigError(
                "smtp.postmaster_address", f"expected an e-mail address, got {address!r}"
            )
        if domain.lower() in (config.bounce.domain.lower(), smtp.hostname.lower()):
            # Mail to postmaster@ those domains goes to this address: it would loop.
            raise ConfigError(
                "smtp.postmaster_address", "must not be at bounce.domain or smtp.hostname (a loop)"
            )
