"""The composition root: build every component from the config and run them together.

Owns: wiring adapters to ports, the one ``TaskGroup`` holding the long-running tasks, and
the shutdown sequence on SIGTERM/SIGINT: new sessions get ``421 4.3.2``, open sessions and
in-flight deliveries get ``relay.shutdown_grace`` to finish, what is left returns to the
queue (leases released), and the store is closed last.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway.admin.app import AdminDeps, build_admin_app, build_public_app, serve_http
from gateway.bounce import classify_reply, load_rules
from gateway.core.errors import ConfigError, StoreError
from gateway.core.model import Tenant
from gateway.core.policy import PolicySettings
from gateway.core.ports import Clock, SystemClock
from gateway.core.shaping import SiteView, load_shaping
from gateway.observe.events import ObservedStore
from gateway.observe.logging import log_event
from gateway.observe.metrics import Metrics, run_gauges
from gateway.observe.webhooks import WebhookDispatcher, WebhookOutbox
from gateway.relay.client import SmtpClient
from gateway.relay.shaping import Shaper
from gateway.relay.worker import Relay
from gateway.services.checks import RecipientChecker
from gateway.services.dns import DnsResolver
from gateway.services.holds import HoldKeeper, SweepSettings, run_sweeper
from gateway.services.outcomes import BounceNotifier, PolicyApplier
from gateway.services.pause import TenantPauser, policy_defaults
from gateway.services.retention import run_janitor
from gateway.services.signing import DkimSigner
from gateway.services.tenants import TenantDirectory
from gateway.smtp_in.bounce_sink import BounceSink
from gateway.smtp_in.handler import IntakeHandler
from gateway.smtp_in.server import Listener, start_listener, tls_context_from
from gateway.store import open_store
from gateway.workers import WorkerRole, merged_metrics, merged_sites, serve_peer

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.core.ports import Store

log = logging.getLogger("gateway.app")


@dataclass(slots=True)
class Gateway:
    """The running parts, for ``serve`` and for in-process tests."""

    config: Config
    store: Store
    relay: Relay
    handler: IntakeHandler
    tenants: TenantDirectory
    metrics: Metrics
    outbox: WebhookOutbox
    dispatcher: WebhookDispatcher
    admin: AdminDeps
    clock: Clock
    servers: list[asyncio.Server] = field(default_factory=list)
    listeners: list[Listener] = field(default_factory=list)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    webhooks_stopping: asyncio.Event = field(default_factory=asyncio.Event)
    admin_port: int | None = None
    public_port: int | None = None
    role: WorkerRole | None = None

    @property
    def smtp_port(self) -> int:
        return int(self.servers[0].sockets[0].getsockname()[1])

    def shutdown(self) -> None:
        self.stopping.set()

    def readiness(self) -> dict[str, bool]:
        """``/readyz``: intake listening (and not draining), relay running."""
        listening = bool(self.servers) and all(s.is_serving() for s in self.servers)
        draining = any(listener.shutting_down for listener in self.listeners)
        return {"intake": listening and not draining, "relay": self.relay.running}


async def build(
    config: Config, clock: Clock | None = None, role: WorkerRole | None = None
) -> Gateway:
    """Open the store and build every component (nothing listens yet). ``role``: this
    process is one worker of several (``gateway.workers``).

    Raises:
        ConfigError: a setting that only shows up while building (admin tokens, rules file).
    """
    clock = clock or SystemClock()
    raw = open_store(config.store)
    await raw.open()
    try:
        try:  # SQLite: one process per relay node id (PostgreSQL: nothing to hold)
            raw.hold_node(config.relay.node_id or config.smtp.hostname)
        except StoreError as exc:
            raise ConfigError("relay.node_id", f"{exc}; give each process its own") from None
        return await _build(config, clock, raw, role)
    except BaseException:
        await raw.close()
        raise


def _warn_about(config: Config) -> None:
    """Settings that are legal but risky: said once at start."""
    relay = config.relay
    attempt = relay.slow_attempt
    if relay.lease < attempt:
        log_event(
            log,
            "config.lease_short",
            logging.WARNING,
            key="relay.lease",
            lease=str(relay.lease),
            attempt=str(attempt),
            why="a lease that runs out mid-attempt lets another node resend the message",
        )
    if config.store.url and not relay.node_id:
        log_event(
            log,
            "config.node_id_default",
            logging.WARNING,
            key="relay.node_id",
            node_id=config.smtp.hostname,
            why="several nodes on one store need distinct ids; set relay.node_id",
        )
    if config.bounce.secret == "change-me-to-a-long-random-secret":  # noqa: S105
        log_event(
            log,
            "config.example_secret",
            logging.WARNING,
            key="bounce.secret",
            why="the example config's secret signs return paths: replace it",
        )


async def _build(
    config: Config, clock: Clock, raw: Store, role: WorkerRole | None = None
) -> Gateway:
    _warn_about(config)
    await raw.ensure_tenant(Tenant(config.smtp.default_tenant))
    try:
        rules = load_rules(config.bounce.local_rules or None)
    except (OSError, ValueError) as exc:
        raise ConfigError("bounce.local_rules", str(exc)) from None
    # A broken shaping file stops start-up naming relay.shaping and the setting.
    shaping = load_shaping(config.relay.shaping or None, rate_limits=config.relay.rate_limits)
    metrics = Metrics()
    servers: list[asyncio.Server] = []  # filled by start_listeners; read for loop detection
    dispatcher = WebhookDispatcher(config.webhooks, raw, metrics, clock)
    # One view of the tenants for the whole process: intake, shaping, signing, policy and
    # the webhook outbox.
    tenants = TenantDirectory(raw)
    outbox = WebhookOutbox(
        raw, metrics=metrics, wake=dispatcher.wake, endpoints=tenants.endpoint_tenants
    )
    # Every state change goes through the store: observing it feeds metrics and webhooks
    # without the protocol adapters knowing about either.
    store = ObservedStore(raw, [metrics, outbox], on_sink_error=metrics.sink_failed)
    resolver = DnsResolver(config.dns, clock, observe=metrics.observe_dns)
    policy = PolicyApplier(store, PolicySettings.from_config(config.policy), clock, tenants)
    client = SmtpClient(config.relay, config.helo_name, own_names=(config.smtp.hostname,))
    signer = DkimSigner(tenants)
    await signer.refresh(force=True)
    relay = Relay(
        config.relay,
        config.bounce,
        store,
        resolver,
        client,
        clock,
        policy,
        classify=lambda code, enhanced, text: classify_reply(code, enhanced, text, rules),
        node_id=config.relay.node_id or config.smtp.hostname,
        local_names=(config.smtp.hostname, config.helo_name),
        signer=signer,
        shaper=Shaper(tenants, config.bounce, config.public.base_url),
        local_endpoints=lambda: gw_endpoints(servers),
        shaping=shaping,
        site_changed=metrics.site_changed,
        share=role.count if role is not None else 1,
    )
    metrics.track_sites(relay.sites.views)
    relay.notifier = BounceNotifier(config.smtp.hostname, clock, relay.wake)
    sink = BounceSink(
        config.bounce, store, policy, clock, rules, on_feedback=metrics.feedback_report
    )
    checker = RecipientChecker(
        resolver,
        store,
        clock,
        config.smtp.typo_check,
        config.smtp.typo_domains,
        # A hold outlives any live transaction: each command comes within the timeout.
        hold_lifetime=3 * config.smtp.command_timeout,
    )
    # Hold instead of refuse and the tenant pause (issue 15).
    defaults = policy_defaults(config.policy)
    holds = HoldKeeper(store, clock, defaults, tenants, relay.notifier, relay.wake)
    relay.holds = holds

    def pause_changed() -> None:
        tenants.invalidate()
        relay.wake()

    pauser = TenantPauser(store, clock, defaults, tenants, pause_changed)
    handler = IntakeHandler(
        config.smtp,
        config.bounce,
        store,
        checker,
        clock,
        tenants,
        on_queued=relay.wake,
        bounce_check=sink.valid_address,
        bounce_sink=sink.receive,
        holds=holds,
    )
    admin = AdminDeps(
        config=config,
        store=store,
        checker=checker,
        clock=clock,
        readiness=dict,  # replaced below, once the Gateway exists
        metrics=_service_metrics(metrics, role),
        on_queued=relay.wake,
        tenants_changed=tenants.invalidate,
        destinations=_service_sites(relay, role),
        holds=holds,
        pauser=pauser,
    )
    build_admin_app(admin)  # validates admin.tokens now: a bad entry stops start-up
    gw = Gateway(
        config,
        store,
        relay,
        handler,
        tenants,
        metrics,
        outbox,
        dispatcher,
        admin,
        clock,
        servers=servers,
        role=role,
    )
    admin.readiness = gw.readiness
    metrics.track_smtp_sessions(lambda: sum(listener.sessions for listener in gw.listeners))
    return gw


async def start_listeners(gw: Gateway) -> None:
    cfg = gw.config
    tls = tls_context_from(cfg.smtp.tls_cert, cfg.smtp.tls_key)
    endpoints = [cfg.smtp.listen]
    if cfg.bounce.listen is not None:
        endpoints.append(cfg.bounce.listen)
    for endpoint in endpoints:
        server, listener = await start_listener(
            gw.handler, cfg.smtp, endpoint.host, endpoint.port, tls
        )
        gw.servers.append(server)
        gw.listeners.append(listener)
        log_event(log, "smtp.listening", address=str(endpoint))


async def run(gw: Gateway) -> None:
    """Run until ``gw.shutdown()``; then drain and close (see the module docstring)."""
    cfg = gw.config
    grace = cfg.relay.shutdown_grace.total_seconds()
    try:
        if not gw.servers:
            await start_listeners(gw)
        async with asyncio.TaskGroup() as tasks:
            relay_task = tasks.create_task(gw.relay.run())
            # PostgreSQL: mail committed by any node wakes this node's relay (NOTIFY);
            # SQLite has nothing to hear, and its listen returns when the store closes.
            listen_task = tasks.create_task(gw.store.listen(gw.relay.wake))
            _start_http(gw, tasks)
            if gw.role is not None and not gw.role.leader:
                # Worker 0 asks this worker for its metrics and sites (one /metrics, one
                # destinations list for the whole service).
                tasks.create_task(
                    serve_peer(
                        gw.role,
                        lambda: gw.metrics.exposition()[0],
                        gw.relay.sites.views,
                        gw.webhooks_stopping,
                    )
                )
            tasks.create_task(run_janitor(gw.store, cfg, gw.clock, gw.stopping))
            tasks.create_task(run_gauges(gw.store, gw.metrics, gw.stopping))
            if gw.admin.holds is not None and (gw.role is None or gw.role.leader):
                # Held recipients released or expired, tenants judged for a pause: one
                # worker of a service does it (every node of a shared PostgreSQL may).
                pauser = gw.admin.pauser
                tasks.create_task(
                    run_sweeper(
                        gw.admin.holds,
                        gw.stopping,
                        SweepSettings(interval=cfg.policy.sweep_interval),
                        also=None if pauser is None else pauser.judge_all,
                    )
                )
            tasks.create_task(gw.outbox.run(gw.webhooks_stopping))
            # Quota holds of sessions that hung up mid-transaction go back at once.
            tasks.create_task(gw.handler.run_releases(gw.webhooks_stopping))
            tasks.create_task(gw.dispatcher.run(gw.webhooks_stopping))
            await gw.stopping.wait()
            log_event(log, "gateway.stopping")
            for listener in gw.listeners:
                listener.shutting_down = True  # new sessions: 421 4.3.2
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    for listener in gw.listeners:
                        await listener.idle.wait()
            for server in gw.servers:
                server.close()
            gw.relay.stop()
            try:
                async with asyncio.timeout(grace):
                    await asyncio.shield(relay_task)
            except TimeoutError:
                relay_task.cancel()  # unfinished deliveries stay leased, released at start
            # Last: outcomes recorded while draining still reach the webhook outbox.
            gw.webhooks_stopping.set()
            gw.dispatcher.wake()  # now, not at the end of its idle poll (up to a second)
            if listen_task is not None:
                listen_task.cancel()  # runs until cancelled; the store closes after this
    finally:
        for server in gw.servers:
            server.close()
        with contextlib.suppress(Exception):
            await gw.store.release_claims(gw.relay.node_id)
        await gw.store.close()
        log_event(log, "gateway.stopped")


def _service_metrics(
    metrics: Metrics, role: WorkerRole | None
) -> Callable[[], Awaitable[tuple[bytes, str]]]:
    """``/metrics`` for the whole service: this process's, merged with the other workers'
    on worker 0 (``gateway.workers``)."""

    async def exposition() -> tuple[bytes, str]:
        body, content_type = metrics.exposition()
        if role is not None and role.count > 1:
            body = await merged_metrics(role, body)
        return body, content_type

    return exposition


def _service_sites(
    relay: Relay, role: WorkerRole | None
) -> Callable[[], Awaitable[Sequence[SiteView]]]:
    """The relay's destination sites for the whole service (merged on worker 0)."""

    async def sites() -> Sequence[SiteView]:
        own = relay.sites.views()
        if role is not None and role.count > 1:
            return await merged_sites(role, own)
        return own

    return sites


def gw_endpoints(servers: list[asyncio.Server]) -> list[tuple[str, int]]:
    """Our SMTP listeners' (address, port): an MX resolving to one of them is a mail loop."""
    return [sock.getsockname()[:2] for server in servers for sock in server.sockets]


def _start_http(gw: Gateway, tasks: asyncio.TaskGroup) -> None:
    """The admin listener (API, support page, /metrics) and the public one-click listener."""
    cfg = gw.config

    def admin_port(port: int) -> None:
        gw.admin_port = port

    def public_port(port: int) -> None:
        gw.public_port = port

    if cfg.admin.listen is not None:
        app = build_admin_app(gw.admin)
        tasks.create_task(
            serve_http(
                app,
                cfg.admin.listen.host,
                cfg.admin.listen.port,
                gw.stopping,
                on_listening=admin_port,
            )
        )
    if cfg.public.listen is not None:
        app = build_public_app(gw.admin)
        tasks.create_task(
            serve_http(
                app,
                cfg.public.listen.host,
                cfg.public.listen.port,
                gw.stopping,
                on_listening=public_port,
            )
        )


async def serve(config: Config) -> None:
    """``gateway serve`` (one process, or one worker of ``smtp.workers``): build, install
    signal handlers, run."""
    try:
        role = WorkerRole.from_env()
    except ValueError as exc:
        raise ConfigError("smtp.workers", str(exc)) from None
    gw = await build(config, role=role)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, gw.shutdown)
    await run(gw)
