"""The ``gateway`` command line.

Exit codes: 0 success (or "would be accepted"), 1 refused permanently, 2 temporary failure
(e.g. DNS), 64 usage or configuration error (``EX_USAGE``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gateway.core.errors import ConfigError, GatewayError

# asyncio and gateway.config are imported where they are used: `gateway bounce classify` is
# timed as a whole process against Sisimai (bench/bounces.py), so it loads neither.

EXIT_OK, EXIT_REFUSED, EXIT_TEMPORARY, EXIT_USAGE = 0, 1, 2, 64


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse exits 2; usage errors are 64 here
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


# Every parser, the top level and each subcommand at any depth, takes ``--config``, each into
# a dest of its own (``default=SUPPRESS``): argparse copies a subcommand's namespace over its
# parent's, so one shared dest would let a default hide what the user typed elsewhere.
# ``parse_args`` folds them into ``args.config``.
_CONFIG_DEST = "config at "


def _config_help() -> str:
    from gateway import config as config_module

    return f"TOML config file (default: $GATEWAY_CONFIG or {config_module.DEFAULT_PATH})"


def _with_config(parser: argparse.ArgumentParser, reads: str = "") -> argparse.ArgumentParser:
    """Give ``parser`` the ``--config`` option; ``reads`` says when a command that mostly
    needs no config reads it (``"never"`` for one that never does)."""
    if reads == "never":
        text = "accepted like everywhere else; this command reads no config"
    elif reads:
        text = f"{_config_help()}; read only {reads}"
    else:
        text = _config_help()
    parser.add_argument(
        "--config",
        dest=_CONFIG_DEST + parser.prog,
        default=argparse.SUPPRESS,
        metavar="PATH",
        help=text,
    )
    return parser


def _subcommands(parser: argparse.ArgumentParser, dest: str) -> Any:
    return parser.add_subparsers(dest=dest, required=True, parser_class=_Parser)


def _command(sub: Any, name: str, text: str, reads: str = "") -> argparse.ArgumentParser:
    return _with_config(sub.add_parser(name, help=text, description=text), reads)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; ``--config`` is taken before or after any subcommand."""
    parser = _with_config(_Parser(prog="gateway", description="Self-hosted mail delivery gateway."))
    sub = _subcommands(parser, "command")
    _command(sub, "serve", "run the SMTP intake and the relay")
    check = _command(sub, "check", "run the RCPT checks on an address")
    check.add_argument("address")
    check.add_argument(
        "--tenant", default=None, help="check as this tenant (default: smtp.default_tenant)"
    )
    tenant = _command(sub, "tenant", "manage tenants")
    add = _command(
        _subcommands(tenant, "tenant_command"),
        "add",
        "create a tenant and print its SMTP credentials once",
    )
    add.add_argument("name")
    add.add_argument("--allowed-sender-domain", action="append", default=[])
    add.add_argument("--hourly-quota", type=int, default=None)
    add.add_argument("--daily-quota", type=int, default=None)
    _command(sub, "queue", "recipient counts per status, oldest deferred")
    test = _command(sub, "send-test", "send a test message along the relay path")
    test.add_argument("--to", required=True)
    test.add_argument("--from", dest="sender", default=None)
    backup = _command(sub, "backup", "consistent copy of the live SQLite store")
    backup.add_argument("dest")
    bounce = _command(sub, "bounce", "bounce tools", "never")
    classify = _command(
        _subcommands(bounce, "bounce_command"),
        "classify",
        "print one JSON line per recipient report",
        "never",
    )
    classify.add_argument("files", nargs="+")
    dkim = _command(sub, "dkim", "DKIM keys", "with keygen --tenant")
    keygen = _command(
        _subcommands(dkim, "dkim_command"),
        "keygen",
        "create a key; print the DNS TXT record",
        "with --tenant",
    )
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
    admin = _command(sub, "admin", "admin listener tools", "never")
    token = _command(_subcommands(admin, "admin_command"), "token", "admin tokens", "never")
    create = _command(
        _subcommands(token, "token_command"),
        "create",
        "make a random admin token; print it once and the hash to put in the config",
        "never",
    )
    create.add_argument(
        "--read-only", action="store_true", help="for admin.read_only_tokens (GET routes only)"
    )
    create.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line; ``args.config`` is the one ``--config`` given, or ``None``.

    Raises:
        SystemExit: 64 on a usage error, among them two ``--config`` naming different files.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    given: dict[str, str] = {}
    for key in sorted(k for k in vars(args) if k.startswith(_CONFIG_DEST)):
        path = getattr(args, key)
        delattr(args, key)
        given.setdefault(os.path.normpath(os.path.abspath(path)), path)
    if len(given) > 1:
        first, second, *_ = given.values()
        parser.error(f"--config given twice with different files: {first} and {second}")
    args.config = next(iter(given.values()), None)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gateway`` console script."""
    words = list(sys.argv[1:] if argv is None else argv)
    files = words[2:] if words[:2] == ["bounce", "classify"] else []
    if files and not any(word.startswith("-") for word in files):
        # The plain form, files only: no parser to build (it would read the config module for
        # its help texts) and nothing else to import.
        from gateway.bounce.cli import classify_files

        return classify_files(files, sys.stdout)
    args = parse_args(argv)
    try:
        if args.command == "bounce":
            from gateway.bounce.cli import classify_files

            return classify_files(args.files, sys.stdout)
        if args.command == "dkim" and args.tenant is None:
            return _dkim_keygen(args)
        if args.command == "admin":
            return _admin_token_create(args.read_only, as_json=args.json)
        import asyncio

        from gateway import config as config_module

        config = config_module.load(args.config)
        from gateway.observe.logging import configure

        configure(config.log.level, config.log.format)
        from gateway.cli import commands as cli_commands

        if args.command == "serve" and config.smtp.workers > 1:
            # One worker process per core, each a node on the one store (cli.workers);
            # imported here: the other commands start faster without it.
            from gateway.cli.workers import supervise
            from gateway.workers import ENV_WORKER

            if not os.environ.get(ENV_WORKER):
                return supervise(args.config, config)
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
    from gateway.mail.dkim import keygen

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


def _admin_token_create(read_only: bool, *, as_json: bool) -> int:
    """Print a new admin token once, and the ``sha256:`` entry that goes into the config in
    its place (so the config never holds the token itself). Needs no config and no store."""
    from gateway.admin.auth import hashed_token_entry, new_admin_token

    token = new_admin_token()
    entry = hashed_token_entry(token)
    from gateway import config as config_module

    key = "read_only_tokens" if read_only else "tokens"
    env_name = f"{config_module.ENV_PREFIX}ADMIN__{key.upper()}"
    env_value = json.dumps([entry])  # a JSON list of strings is a TOML array too
    if as_json:
        print(
            json.dumps(
                {
                    "token": token,
                    "read_only": read_only,
                    "entry": entry,
                    "config_key": f"admin.{key}",
                    "env": {env_name: env_value},
                }
            )
        )
        return EXIT_OK
    kind = "read-only" if read_only else "full access"
    print(f"admin token ({kind}); it is shown only now, keep it somewhere safe:")
    print(f"  {token}")
    print(f'add to [admin] {key} in your config: "{entry}"')
    print(f"or set in the environment (replaces the whole list): {env_name}='{env_value}'")
    return EXIT_OK
