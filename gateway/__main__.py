"""The ``gateway`` command line.

Exit codes: 0 success (or "would be accepted"), 1 refused permanently, 2 temporary failure
(e.g. DNS), 64 usage or configuration error (``EX_USAGE``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gateway import config as config_module
from gateway.core.errors import ConfigError, GatewayError

EXIT_OK, EXIT_REFUSED, EXIT_TEMPORARY, EXIT_USAGE = 0, 1, 2, 64


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse exits 2; usage errors are 64 here
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gateway", description="Self-hosted mail delivery gateway.")
    parser.add_argument(
        "--config",
        default=None,
        help=f"TOML config file (default: $GATEWAY_CONFIG or {config_module.DEFAULT_PATH})",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("serve", help="run the SMTP intake and the relay")
    check = sub.add_parser("check", help="run the RCPT checks on an address")
    check.add_argument("address")
    check.add_argument("--tenant", default=None)
    tenant = sub.add_parser("tenant", help="manage tenants")
    tsub = tenant.add_subparsers(dest="tenant_command", required=True, parser_class=_Parser)
    add = tsub.add_parser("add", help="create a tenant and print its SMTP credentials once")
    add.add_argument("name")
    add.add_argument("--allowed-sender-domain", action="append", default=[])
    add.add_argument("--hourly-quota", type=int, default=None)
    add.add_argument("--daily-quota", type=int, default=None)
    sub.add_parser("queue", help="recipient counts per status, oldest deferred")
    test = sub.add_parser("send-test", help="send a test message along the relay path")
    test.add_argument("--to", required=True)
    test.add_argument("--from", dest="sender", default=None)
    backup = sub.add_parser("backup", help="consistent copy of the live SQLite store")
    backup.add_argument("dest")
    bounce = sub.add_parser("bounce", help="bounce tools")
    bsub = bounce.add_subparsers(dest="bounce_command", required=True, parser_class=_Parser)
    classify = bsub.add_parser("classify", help="print one JSON line per recipient report")
    classify.add_argument("files", nargs="+")
    dkim = sub.add_parser("dkim", help="DKIM keys")
    dsub = dkim.add_subparsers(dest="dkim_command", required=True, parser_class=_Parser)
    keygen = dsub.add_parser("keygen", help="create a key; print the DNS TXT record")
    keygen.add_argument("domain")
    keygen.add_argument("selector")
    keygen.add_argument(
        "--algorithm", choices=["rsa-sha256", "ed25519-sha256"], default="rsa-sha256"
    )
    keygen.add_argument("--out", default=None, help="where to write the private key (PEM)")
    keygen.add_argument(
        "--tenant",
        default=None,
        help="also store the key for this tenant: its mail from DOMAIN is signed",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gateway`` console script."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "bounce":
            from gateway.bounce.cli import classify_files

            return classify_files(args.files, sys.stdout)
        if args.command == "dkim" and args.tenant is None:
            return _dkim_keygen(args)
        config = config_module.load(args.config)
        from gateway.logging import configure

        configure(config.log.level, config.log.format)
        from gateway import cli_commands

        if args.command == "serve":
            # uvloop: the event loop is the intake's and the relay's bottleneck (issue 5
            # profile: socket writes, callbacks, thread hand-offs); libuv does them in C.
            import uvloop

            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                return runner.run(cli_commands.run(args, config))
        return asyncio.run(cli_commands.run(args, config))
    except ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except GatewayError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return EXIT_TEMPORARY
    except KeyboardInterrupt:
        return 130


def _dkim_keygen(args: argparse.Namespace) -> int:
    from gateway.dkim import keygen

    key, record = keygen(args.domain, args.selector, args.algorithm)
    out = Path(args.out or f"{args.selector}._domainkey.{args.domain}.pem")
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.private_key_pem)
    print(f"private key written to {out} (mode 600)", file=sys.stderr)
    print(
        json.dumps(
            {
                "domain": key.domain,
                "selector": key.selector,
                "algorithm": key.algorithm,
                "key_file": str(out),
            }
        ),
        file=sys.stderr,
    )
    print(record)
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
