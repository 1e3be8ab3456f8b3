"""The ``gateway`` subcommands that need the store, DNS or the relay path.

Owns: what each command prints and its exit code. Does not own: argument parsing
(``__main__``) or any behaviour the commands report on.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING

from gateway.core.errors import (
    DnsPermanent,
    DnsTemporary,
    PermanentRelayError,
    TransientRelayError,
)
from gateway.core.model import Tenant
from gateway.core.ports import SystemClock
from gateway.core.routing import order_mx
from gateway.services.checks import RecipientChecker
from gateway.services.credentials import generate_secret, hash_secret
from gateway.services.dns import DnsResolver
from gateway.store import open_store

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.core.ports import Gauges, Store, TenantStore

EXIT_OK, EXIT_REFUSED, EXIT_TEMPORARY, EXIT_USAGE = 0, 1, 2, 64


def _out(text: str) -> None:
    print(text, flush=True)


async def run(args: argparse.Namespace, config: Config) -> int:
    if args.command == "serve":
        from gateway.app import serve

        await serve(config)
        return EXIT_OK
    store = open_store(config.store)
    await store.open()
    try:
        if args.command == "check":
            return await _check(args, config, store)
        if args.command == "tenant":
            return await _tenant_add(args, store)
        if args.command == "queue":
            return await _queue(store)
        if args.command == "send-test":
            return await _send_test(args, config, store)
        if args.command == "dkim":
            return await _dkim_for_tenant(args, store)
        if args.command == "backup":
            await store.backup(args.dest)
            _out(f"backup written to {args.dest}")
            return EXIT_OK
    finally:
        await store.close()
    return EXIT_USAGE


async def _check(args: argparse.Namespace, config: Config, store: Store) -> int:
    clock = SystemClock()
    resolver = DnsResolver(config.dns, clock)
    checker = RecipientChecker(
        resolver, store, clock, config.smtp.typo_check, config.smtp.typo_domains
    )
    # Without --tenant, check as the SMTP intake does for a trusted client: as
    # smtp.default_tenant, with its stored settings, or with none when it is not stored yet.
    default = config.smtp.default_tenant
    name = args.tenant or default
    tenant = await store.get_tenant(name)
    if tenant is None and name != default:
        print(f"gateway: no such tenant: {name}", file=sys.stderr)
        return EXIT_USAGE
    tenant = tenant or Tenant(name)
    _out(f"tenant: {name}" + ("" if args.tenant else " (smtp.default_tenant)"))
    verdict = await checker.check(args.address, tenant)
    if verdict.reply is None:
        _out(f"{verdict.address}: would be accepted")
        if verdict.warning:
            _out(f"warning: {verdict.warning}")
        return EXIT_OK
    _out(f"{verdict.address}: refused ({verdict.reason}): {verdict.reply}")
    if verdict.suggestion:
        _out(f"did you mean: {verdict.suggestion}")
    return EXIT_TEMPORARY if verdict.reply.is_transient else EXIT_REFUSED


async def _tenant_add(args: argparse.Namespace, store: TenantStore) -> int:
    tenant = Tenant(
        args.name,
        tuple(d.lower() for d in args.allowed_sender_domain),
        args.hourly_quota,
        args.daily_quota,
    )
    if await store.get_tenant(args.name) is not None:
        print(f"gateway: tenant {args.name} exists already", file=sys.stderr)
        return EXIT_REFUSED
    await store.ensure_tenant(tenant)
    secret = generate_secret()
    await store.set_credentials(args.name, args.name, hash_secret(secret))
    _out(f"tenant {args.name} created; SMTP credentials (shown once, stored hashed):")
    _out(f"  username: {args.name}")
    _out(f"  password: {secret}")
    return EXIT_OK


async def _dkim_for_tenant(args: argparse.Namespace, store: TenantStore) -> int:
    from gateway.mail.dkim import keygen

    if await store.get_tenant(args.tenant) is None:
        print(f"gateway: no such tenant: {args.tenant}", file=sys.stderr)
        return EXIT_USAGE
    key, record = keygen(args.domain, args.selector, args.algorithm)
    await store.set_dkim_key(
        args.tenant, key.domain, key.selector, key.algorithm, key.private_key_pem
    )
    _out(
        f"key stored for tenant {args.tenant}: mail from {key.domain} is signed"
        " (running gateways pick it up within a minute)"
    )
    _out("publish this DNS record:")
    _out(record)
    return EXIT_OK


async def _queue(store: Gauges) -> int:
    summary = await store.queue_summary()
    if not summary.counts:
        _out("queue is empty")
    for status, count in sorted(summary.counts.items()):
        _out(f"{status:<11} {count}")
    if summary.oldest_deferred is not None:
        _out(f"oldest deferred message received {summary.oldest_deferred:%Y-%m-%d %H:%M:%S} UTC")
    return EXIT_OK


async def _send_test(args: argparse.Namespace, config: Config, store: Store) -> int:
    """Walk the relay path step by step for one test message and print each step."""
    from gateway.relay.client import SmtpClient

    clock = SystemClock()
    resolver = DnsResolver(config.dns, clock)
    checker = RecipientChecker(
        resolver, store, clock, config.smtp.typo_check, config.smtp.typo_domains
    )
    _out(f"1. checks for {args.to}")
    default = config.smtp.default_tenant
    # As the intake and `gateway check` do: the default tenant's stored settings (quotas).
    tenant = await store.get_tenant(default) or Tenant(default)
    verdict = await checker.check(args.to, tenant)
    if verdict.reply is not None:
        _out(f"   refused: {verdict.reply}")
        return EXIT_TEMPORARY if verdict.reply.is_transient else EXIT_REFUSED
    _out("   passed")
    rcpt = verdict.address
    domain = rcpt.rpartition("@")[2]
    sender = args.sender or f"postmaster@{config.smtp.hostname}"
    targets: list[tuple[str, int, str | None]]
    if config.relay.smarthost is not None:
        targets = [(config.relay.smarthost.host, config.relay.smarthost.port, None)]
        _out(f"2. route: smarthost {config.relay.smarthost}")
    else:
        try:
            answer = await resolver.mx(domain)
        except (DnsPermanent, DnsTemporary) as exc:
            _out(f"2. route: DNS failed: {exc}")
            return EXIT_TEMPORARY if isinstance(exc, DnsTemporary) else EXIT_REFUSED
        hosts = order_mx(answer)
        _out(
            f"2. route: MX {', '.join(hosts)}" + (" (implicit, A/AAAA)" if answer.implicit else "")
        )
        targets = []
        for host in hosts:
            try:
                for address in await resolver.addresses(host):
                    targets.append((address, config.relay.mx_port, host))
            except (DnsPermanent, DnsTemporary) as exc:
                _out(f"   {host}: no address ({exc})")
    now = datetime.now(UTC)
    content = (
        f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: gateway test message\r\n"
        f"Date: {format_datetime(now)}\r\nMessage-ID: {make_msgid(domain=config.smtp.hostname)}\r\n"
        f"\r\nThis is a test message sent by 'gateway send-test'.\r\n"
    ).encode()
    client = SmtpClient(config.relay, config.helo_name)
    auth = None
    if config.relay.smarthost_user:
        auth = (config.relay.smarthost_user, config.relay.smarthost_password)
    try:
        for host, port, name in targets[:6]:
            _out(f"3. SMTP to {host}:{port}")
            try:
                result = await client.send(
                    host, port, sender, [rcpt], content, server_name=name, auth=auth
                )
            except TransientRelayError as exc:
                _out(f"   temporary failure at {exc.phase}: {exc.reply}")
                continue
            except PermanentRelayError as exc:
                _out(f"   permanent failure at {exc.phase}: {exc.reply}")
                return EXIT_REFUSED
            _out(f"   TLS: {'yes' if result.tls else 'no'}")
            for reply in result.accepted.values():
                _out(f"   accepted: {reply}")
                return EXIT_OK
            for reply in result.bounced.values():
                _out(f"   refused: {reply}")
                return EXIT_REFUSED
            for reply in result.deferred.values():
                _out(f"   deferred: {reply}")
            return EXIT_TEMPORARY
    finally:
        await client.close()
    _out("   no destination host could be reached")
    return EXIT_TEMPORARY
