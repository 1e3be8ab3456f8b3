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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway.bounce import classify_reply, load_rules
from gateway.checks import RecipientChecker
from gateway.core.model import Tenant
from gateway.core.policy import PolicySettings
from gateway.core.ports import Clock, SystemClock
from gateway.dns import DnsResolver
from gateway.logging import log_event
from gateway.outcomes import PolicyApplier
from gateway.relay.client import SmtpClient
from gateway.relay.worker import Relay
from gateway.signing import DkimSigner
from gateway.smtp_in.bounce_sink import BounceSink
from gateway.smtp_in.handler import IntakeHandler
from gateway.smtp_in.server import Listener, start_listener, tls_context_from
from gateway.store import open_store

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
    servers: list[asyncio.Server] = field(default_factory=list)
    listeners: list[Listener] = field(default_factory=list)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def smtp_port(self) -> int:
        return int(self.servers[0].sockets[0].getsockname()[1])

    def shutdown(self) -> None:
        self.stopping.set()


async def build(config: Config, clock: Clock | None = None) -> Gateway:
    """Open the store and build every component (nothing listens yet)."""
    clock = clock or SystemClock()
    store = open_store(config.store)
    await store.open()
    await store.ensure_tenant(Tenant(config.smtp.default_tenant))
    rules = load_rules(config.bounce.local_rules or None)
    resolver = DnsResolver(config.dns, clock)
    policy = PolicyApplier(store, PolicySettings.from_config(config.policy), clock)
    client = SmtpClient(config.relay, config.helo_name)
    signer = DkimSigner(store)
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
    )
    sink = BounceSink(config.bounce, store, policy, clock, rules)
    handler = IntakeHandler(
        config.smtp,
        config.bounce,
        store,
        RecipientChecker(resolver, store, clock, config.smtp.typo_check),
        clock,
        on_queued=relay.wake,
        bounce_check=sink.valid_address,
        bounce_sink=sink.receive,
    )
    return Gateway(config, store, relay, handler)


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
    grace = gw.config.relay.shutdown_grace.total_seconds()
    try:
        if not gw.servers:
            await start_listeners(gw)
        async with asyncio.TaskGroup() as tasks:
            relay_task = tasks.create_task(gw.relay.run())
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
    finally:
        for server in gw.servers:
            server.close()
        with contextlib.suppress(Exception):
            await gw.store.release_claims(gw.relay.node_id)
        await gw.store.close()
        log_event(log, "gateway.stopped")


async def serve(config: Config) -> None:
    """``gateway serve``: build, install signal handlers, run."""
    gw = await build(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, gw.shutdown)
    await run(gw)
