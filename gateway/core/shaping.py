"""Traffic shaping as data: limits per mailbox provider, automatic responses to what the
destination replies, and the health of each site (the set of MX hosts a domain uses).

Owns: the shaping table (``shaping.toml`` beside this module, with an operator's file laid
over it: ``relay.shaping``), its validation, and :class:`SiteHealth`, the pure state machine
of one site — active, suspended after consecutive connection failures (back-off doubling
from ``suspend_first`` to ``suspend_max``) or by a reply a response names, probing with one
connection at the end of a suspension, and throttled (limits halved per step, recovering a
step per ``duration``) by replies such as ``421 4.7.0 Too many connections``. Every change
is returned as a :class:`Change` for the caller to record as an event and a metric.
Does not own: the ready queues, the clock, or sending (``relay``).

Pure: no I/O apart from reading the shipped file and the operator's file when asked.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from gateway.core.errors import ConfigError
from gateway.core.units import parse_duration

SHIPPED_FILE = "shaping.toml"
DEFAULT = "default"
MAX_THROTTLE_STEPS = 4  # limits halve at most four times (1/16): never below one connection


@dataclass(frozen=True, slots=True)
class Limits:
    """What a site may be sent.

    Args:
        connections: sessions open to the site at once.
        connection_rate: new sessions a minute: how fast the site's concurrency may grow
            from one (sessions are reused, so new ones are opened as concurrency grows).
        messages_per_connection: transactions on one session before it is closed.
        messages_per_second: transactions started a second; 0 for no limit.
        ready_queue: recipients waiting in memory for the site; the rest stay in the store.
        recipients_per_message: recipients in one transaction; a message for more is sent
            in several (RFC 5321 §4.5.3.1.8 only promises 100; many servers take 50).
        initial_connections: sessions a site starts with; each session that sets up (its
            greeting and EHLO answered) allows one more, up to ``connections`` (Postfix's
            slow start: a tarpit never gets more than this).
    """

    connections: int = 10
    connection_rate: float = 300.0
    messages_per_connection: int = 100
    messages_per_second: float = 0.0
    ready_queue: int = 2000
    recipients_per_message: int = 50
    initial_connections: int = 5

    def throttled(self, steps: int) -> Limits:
        """These limits halved ``steps`` times (never below one connection or zero rate)."""
        if steps <= 0:
            return self
        factor = 0.5**steps
        rate = self.messages_per_second
        return dataclasses.replace(
            self,
            connections=max(1, int(self.connections * factor)),
            connection_rate=max(1.0, self.connection_rate * factor),
            # An unlimited rate becomes a limit: one a second per allowed connection.
            messages_per_second=(rate * factor)
            if rate
            else float(max(1, int(self.connections * factor))),
        )


class Action(StrEnum):
    THROTTLE = "throttle"
    SUSPEND = "suspend"


@dataclass(frozen=True, slots=True)
class Response:
    """An automatic response: a reply that matches any of ``codes`` (reply codes such as
    ``"421"``), ``statuses`` (enhanced codes such as ``"4.7.0"``) or ``phrases`` (words of
    the reply, any case) makes the site ``action`` for ``duration``."""

    name: str
    action: Action
    duration: timedelta
    codes: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()

    def matches(self, code: int | None, status: str | None, text: str) -> bool:
        if code is not None and str(code) in self.codes:
            return True
        if status and status in self.statuses:
            return True
        lowered = text.lower()
        return any(phrase in lowered for phrase in self.phrases)


@dataclass(frozen=True, slots=True)
class Provider:
    """One provider's shaping: its limits, its responses (its own first, then the default's),
    and when consecutive connection failures suspend its sites."""

    name: str
    limits: Limits
    responses: tuple[Response, ...]
    suspend_after: int = 3
    suspend_first: timedelta = timedelta(minutes=1)
    suspend_max: timedelta = timedelta(hours=1)

    def response_to(self, code: int | None, status: str | None, text: str) -> Response | None:
        """The first response that matches the reply, if any."""
        for response in self.responses:
            if response.matches(code, status, text):
                return response
        return None


@dataclass(frozen=True, slots=True)
class Shaping:
    """The shaping table: a :class:`Provider` per name, ``"default"`` for everything else."""

    providers: Mapping[str, Provider]

    def for_provider(self, name: str) -> Provider:
        return self.providers.get(name) or self.providers[DEFAULT]


# --- the file ------------------------------------------------------------------------------

_LIMIT_KEYS = {f.name for f in dataclasses.fields(Limits)}
_HEALTH_KEYS = {"suspend_after", "suspend_first", "suspend_max"}
_RESPONSE_KEYS = {"name", "action", "duration", "codes", "statuses", "phrases"}


def parse_shaping(layers: list[tuple[str, Mapping[str, Any]]]) -> Shaping:
    """The shaping table from parsed files, later layers laid over earlier ones: a provider's
    keys replace the same keys below, its ``response`` list is put before the ones below.

    Args:
        layers: ``(where, data)`` pairs, the shipped file first; ``where`` prefixes every
            error (e.g. ``"relay.shaping (/etc/gateway/shaping.toml)"``).

    Raises:
        ConfigError: naming the file and the key, for an unknown key, a bad value, or a
            provider whose limits are impossible.
    """
    merged: dict[str, dict[str, Any]] = {}
    responses: dict[str, list[Response]] = {}
    for where, data in layers:
        for name, table in data.items():
            key = f"{where}: {name}"
            if not isinstance(table, dict):
                raise ConfigError(key, f"expected a table of settings, got {table!r}")
            unknown = set(table) - _LIMIT_KEYS - _HEALTH_KEYS - {"response"}
            if unknown:
                raise ConfigError(f"{key}.{sorted(unknown)[0]}", "unknown setting")
            own = [
                _response(f"{key}.response[{i}]", raw)
                for i, raw in enumerate(_list(f"{key}.response", table.get("response", [])))
            ]
            responses[name] = own + responses.get(name, [])
            settings = merged.setdefault(name, {})
            for setting, raw in table.items():
                if setting != "response":
                    settings[setting] = (f"{key}.{setting}", raw)
    if DEFAULT not in merged:
        raise ConfigError(f"{layers[0][0]}: {DEFAULT}", "the default provider is missing")
    base = _provider(DEFAULT, merged[DEFAULT], responses[DEFAULT], Provider(DEFAULT, Limits(), ()))
    providers = {DEFAULT: base}
    for name, settings in merged.items():
        if name != DEFAULT:
            providers[name] = _provider(name, settings, (*responses[name], *base.responses), base)
    return Shaping(providers)


def load_shaping(
    path: str | Path | None = None,
    key: str = "relay.shaping",
    rate_limits: tuple[tuple[str, float], ...] = (),
) -> Shaping:
    """The shipped shaping table, with the operator's file at ``path`` laid over it, and
    ``relay.rate_limits`` (provider, messages per second) over both.

    Raises:
        ConfigError: the operator's file cannot be read or is wrong, naming ``key``, the
            file and the setting; or the shipped file is broken (a packaging error).
    """
    shipped = resources.files("gateway.core").joinpath(SHIPPED_FILE).read_text("utf-8")
    layers: list[tuple[str, Mapping[str, Any]]] = [
        (f"gateway/core/{SHIPPED_FILE}", tomllib.loads(shipped))
    ]
    if path:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(key, f"cannot read {path}: {exc}") from None
        layers.append((f"{key} ({path})", data))
    if rate_limits:
        rates = {name: {"messages_per_second": rate} for name, rate in rate_limits}
        layers.append(("relay.rate_limits", rates))
    return parse_shaping(layers)


def _provider(
    name: str,
    settings: dict[str, tuple[str, Any]],
    responses: list[Response] | tuple[Response, ...],
    base: Provider,
) -> Provider:
    limits = {f: getattr(base.limits, f) for f in _LIMIT_KEYS}
    for setting in _LIMIT_KEYS & set(settings):
        key, raw = settings[setting]
        limits[setting] = _number(
            key,
            raw,
            integer=setting not in {"connection_rate", "messages_per_second"},
            zero_ok=setting == "messages_per_second",
        )
    health: dict[str, Any] = {
        "suspend_after": base.suspend_after,
        "suspend_first": base.suspend_first,
        "suspend_max": base.suspend_max,
    }
    if "suspend_after" in settings:
        health["suspend_after"] = _number(*settings["suspend_after"], integer=True)
    for setting in ("suspend_first", "suspend_max"):
        if setting in settings:
            key, raw = settings[setting]
            value = parse_duration(key, raw)
            if value <= timedelta(0):
                raise ConfigError(key, "expected a positive duration")
            health[setting] = value
    if health["suspend_max"] < health["suspend_first"]:
        key = settings.get("suspend_max", settings.get("suspend_first", (name, None)))[0]
        raise ConfigError(key, "suspend_max must not be shorter than suspend_first")
    return Provider(name, Limits(**limits), tuple(responses), **health)


def _response(key: str, raw: object) -> Response:
    if not isinstance(raw, dict):
        raise ConfigError(key, f"expected a table, got {raw!r}")
    unknown = set(raw) - _RESPONSE_KEYS
    if unknown:
        raise ConfigError(f"{key}.{sorted(unknown)[0]}", "unknown setting")
    try:
        action = Action(str(raw.get("action")))
    except ValueError:
        raise ConfigError(f"{key}.action", 'expected "throttle" or "suspend"') from None
    duration = parse_duration(f"{key}.duration", raw.get("duration"))
    if duration <= timedelta(0):
        raise ConfigError(f"{key}.duration", "expected a positive duration")
    codes = tuple(_strings(f"{key}.codes", raw.get("codes", [])))
    statuses = tuple(_strings(f"{key}.statuses", raw.get("statuses", [])))
    phrases = tuple(p.lower() for p in _strings(f"{key}.phrases", raw.get("phrases", [])))
    if not (codes or statuses or phrases):
        raise ConfigError(key, "a response needs codes, statuses or phrases to match")
    name = raw.get("name", phrases[0] if phrases else (codes or statuses)[0])
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{key}.name", "expected a non-empty string")
    return Response(name, action, duration, codes, statuses, phrases)


def _number(key: str, raw: object, *, integer: bool, zero_ok: bool = False) -> Any:
    if (
        isinstance(raw, bool)
        or not isinstance(raw, int | float)
        or (integer and not isinstance(raw, int))
        or raw < 0
        or (raw == 0 and not zero_ok)
    ):
        what = "a positive integer" if integer else "a positive number"
        raise ConfigError(key, f"expected {what}{' or 0' if zero_ok else ''}, got {raw!r}")
    return int(raw) if integer else float(raw)


def _list(key: str, raw: object) -> list[object]:
    if not isinstance(raw, list):
        raise ConfigError(key, f"expected a list, got {raw!r}")
    return raw


def _strings(key: str, raw: object) -> list[str]:
    values = _list(key, raw)
    if not all(isinstance(v, str | int) and not isinstance(v, bool) and str(v) for v in values):
        raise ConfigError(key, "expected a list of non-empty strings")
    return [str(v) for v in values]


# --- a site's health -----------------------------------------------------------------------


class SiteState(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    PROBING = "probing"


class ChangeKind(StrEnum):
    SUSPENDED = "suspended"  # no connection until ``until``
    PROBING = "probing"  # the suspension ended: one connection tries
    RESUMED = "resumed"  # the probe (or a delivery) worked: back to the limits
    THROTTLED = "throttled"  # limits halved once more, until ``until``
    RECOVERED = "recovered"  # one throttle step undone


@dataclass(frozen=True, slots=True)
class Change:
    """An automatic change of a site, with what caused it (an error or a reply)."""

    kind: ChangeKind
    cause: str
    until: datetime | None = None
    response: str | None = None  # the response's name, for a reply-driven change


class SiteHealth:
    """The state of one site. Every method takes the current time; none does I/O.

    Args:
        provider: the site's shaping.
    """

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.state = SiteState.ACTIVE
        self.since: datetime | None = None  # when the site stopped being reachable
        self.until: datetime | None = None  # end of the suspension
        self.backoff = timedelta(0)
        self.failures = 0
        self.last_error = ""
        self.throttle_steps = 0
        self.recover_at: datetime | None = None
        self._throttle_duration = timedelta(minutes=10)
        limits = provider.limits
        self.allowed = max(1, min(limits.initial_connections, limits.connections))

    @property
    def limits(self) -> Limits:
        """The limits in force: the provider's, throttled by the current steps."""
        return self.provider.limits.throttled(self.throttle_steps)

    def may_open(self, active: int) -> bool:
        """Whether another session may start while ``active`` are running. Each connection
        failure in a row halves the sessions allowed (Postfix's negative feedback), so a
        dying site is not sent more connections while it is being found out."""
        if self.state is SiteState.SUSPENDED:
            return False
        if self.state is SiteState.PROBING:
            return active == 0
        return active < max(1, min(self.limits.connections, self.allowed) >> self.failures)

    def tick(self, now: datetime) -> Change | None:
        """Time passed: a suspension that ended becomes a probe; a throttle step recovers."""
        if self.state is SiteState.SUSPENDED and self.until is not None and now >= self.until:
            self.state = SiteState.PROBING
            return Change(ChangeKind.PROBING, self.last_error)
        if self.throttle_steps and self.recover_at is not None and now >= self.recover_at:
            self.throttle_steps -= 1
            self.recover_at = now + self._throttle_duration if self.throttle_steps else None
            return Change(ChangeKind.RECOVERED, "no throttling reply since", self.recover_at)
        return None

    def connection_failed(self, now: datetime, error: str) -> Change | None:
        """A session could not be set up (refused, no route, greeting timeout, TLS failure
        where TLS is required). ``suspend_after`` in a row suspend the site; a failed probe
        suspends it again for twice as long, up to ``suspend_max``."""
        self.failures += 1
        self.last_error = error
        if self.since is None:
            self.since = now
        if self.state is SiteState.PROBING:
            self.backoff = min(self.backoff * 2, self.provider.suspend_max)
            return self._suspend(now, error)
        if self.state is SiteState.ACTIVE and self.failures >= self.provider.suspend_after:
            self.backoff = self.provider.suspend_first
            return self._suspend(now, error)
        return None

    def connected(self, now: datetime) -> Change | None:
        """A session was set up (the greeting and EHLO worked): failures are forgotten, one
        more session is allowed (up to ``connections``), a probe resumes the site."""
        self.failures = 0
        self.since = None
        self.last_error = ""
        self.allowed = min(self.allowed + 1, self.provider.limits.connections)
        if self.state is SiteState.PROBING:
            self.state = SiteState.ACTIVE
            self.until = None
            self.backoff = timedelta(0)
            return Change(ChangeKind.RESUMED, "a connection worked")
        return None

    def replied(
        self, now: datetime, code: int | None, status: str | None, text: str
    ) -> Change | None:
        """A reply from the site (any phase): the first response that matches acts."""
        response = self.provider.response_to(code, status, text)
        if response is None:
            return None
        cause = " ".join(f"{code or ''} {status or ''} {text}".split())[:300]
        if response.action is Action.SUSPEND:
            self.last_error = cause
            self.since = self.since or now
            self.backoff = response.duration
            return self._suspend(now, cause, response.name)
        self.throttle_steps = min(self.throttle_steps + 1, MAX_THROTTLE_STEPS)
        self._throttle_duration = response.duration
        self.recover_at = now + response.duration
        return Change(ChangeKind.THROTTLED, cause, self.recover_at, response.name)

    def _suspend(self, now: datetime, cause: str, response: str | None = None) -> Change:
        self.state = SiteState.SUSPENDED
        self.until = now + self.backoff
        return Change(ChangeKind.SUSPENDED, cause, self.until, response)


@dataclass(frozen=True, slots=True)
class SiteView:
    """A site as the relay holds it, for the admin API (``GET /api/v1/destinations``) and the
    metrics: its state, since when it is unreachable, until when it is suspended, the
    recipients waiting for it, the transactions running and its connection limit now."""

    site: str
    provider: str
    state: SiteState
    since: datetime | None
    until: datetime | None
    queued: int
    active: int
    connections: int
    throttled: bool
    last_error: str


_WORST = {SiteState.SUSPENDED: 0, SiteState.PROBING: 1, SiteState.ACTIVE: 2}


def merge_views(groups: Iterable[Iterable[SiteView]]) -> list[SiteView]:
    """The sites of several worker processes as one list: a site each process holds is
    shown once, in its worst state (suspended, then probing), with the waiting recipients,
    running transactions and connection limits added up, unreachable since the earliest
    ``since`` and suspended until the latest ``until``."""
    merged: dict[str, SiteView] = {}
    for views in groups:
        for view in views:
            seen = merged.get(view.site)
            if seen is None:
                merged[view.site] = view
                continue
            sinces = [t for t in (seen.since, view.since) if t is not None]
            untils = [t for t in (seen.until, view.until) if t is not None]
            worse = view if _WORST[view.state] < _WORST[seen.state] else seen
            merged[view.site] = dataclasses.replace(
                worse,
                since=min(sinces, default=None),
                until=max(untils, default=None),
                queued=seen.queued + view.queued,
                active=seen.active + view.active,
                connections=seen.connections + view.connections,
                throttled=seen.throttled or view.throttled,
                last_error=worse.last_error or seen.last_error or view.last_error,
            )
    return list(merged.values())
