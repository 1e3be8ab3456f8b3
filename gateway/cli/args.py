"""The ``gateway`` command line's arguments: the parser of every subcommand and ``--config``.

Owns: :func:`build_parser` and :func:`parse_args`. Does not own: running the commands
(``main``, ``commands``). Kept apart from ``main`` so that ``gateway bounce classify FILE...``,
timed as a whole process against Sisimai (issue 12 item 5), imports no ``argparse``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

EXIT_USAGE = 64  # gateway.cli.main's (not imported from it: main imports this module)


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
