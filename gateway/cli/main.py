"""The ``gateway`` command line.

Exit codes: 0 success (or "would be accepted"), 1 refused permanently, 2 temporary failure
(e.g. DNS), 64 usage or configuration error (``EX_USAGE``).
"""

from __future__ import annotations

import os
import sys

# Everything else is imported where it is used: `gateway bounce classify FILE...` is timed as a
# whole process against Sisimai (bench/bounces.py), so this module, the console script's entry
# point, imports no more than that command needs (the parser, asyncio, gateway.config, json and
# typing are for the other commands; gateway.cli.args holds the parser).
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

EXIT_OK, EXIT_REFUSED, EXIT_TEMPORARY, EXIT_USAGE = 0, 1, 2, 64


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gateway`` console script."""
    words = list(sys.argv[1:] if argv is None else argv)
    files = words[2:] if words[:2] == ["bounce", "classify"] else []
    if files and not any(word.startswith("-") for word in files):
        # The plain form, files only: no parser to build (it would read the config module for
        # its help texts) and nothing else to import. The cyclic garbage collector stays off
        # until the process ends: its passes over the modules and the rules table as they are
        # built, and the one before exit, were 2-4 % of the command (classify_files turns it
        # off for its batch anyway: reports and MIME trees make no cycles).
        import gc

        gc.disable()
        from gateway.bounce.cli import classify_files

        status = classify_files(files, sys.stdout)
        if argv is None:  # the program itself (console script, python -m gateway)
            _exit_now(status)
        return status
    from gateway.cli.args import parse_args
    from gateway.core.errors import ConfigError, GatewayError

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


def _exit_now(status: int) -> None:
    """End the process with ``status`` once its output is written, without tearing down the
    interpreter: freeing every module's objects one by one (the rules, their index, the
    compiled patterns) was 3-4 % of ``gateway bounce classify`` over 400 files.

    Only when nothing is registered to run at exit (``atexit``); if the output cannot be
    written (a closed pipe), this returns and the interpreter ends as usual, reporting it.
    """
    import atexit

    if getattr(atexit, "_ncallbacks", lambda: 1)() != 0:
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    os._exit(status)


def _dkim_keygen(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

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
    import json

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
