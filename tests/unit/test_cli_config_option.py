"""``--config PATH`` before or after any subcommand, for every command of ``gateway``.

The commands are found by walking the parser, so a new subcommand is covered without
touching this file; each is parsed with ``--config`` at every position it can take.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from gateway.cli.args import build_parser, parse_args
from gateway.cli.main import EXIT_USAGE

PATH = "/etc/gateway/site.toml"


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:  # type: ignore[type-arg]
    found = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return found[0] if found else None


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every runnable command: (the words naming it, its parser)."""
    sub = _subparsers(parser)
    if sub is None:
        yield path, parser
        return
    for name, child in sub.choices.items():
        yield from _commands(child, (*path, name))


def _required(parser: argparse.ArgumentParser) -> list[str]:
    """Values for the arguments a command cannot run without (positionals, required options)."""
    words: list[str] = []
    for action in parser._actions:
        if action.option_strings and not action.required:
            continue
        value = str(next(iter(action.choices))) if action.choices else "1"
        words += [action.option_strings[0], value] if action.option_strings else [value]
    return words


COMMANDS = sorted(_commands(build_parser()))
IDS = [" ".join(path) for path, _ in COMMANDS]


def _placements(path: tuple[str, ...], rest: list[str]) -> Iterator[list[str]]:
    """The command line with ``--config PATH`` before the first word, after each word, after
    the arguments, and as ``--config=PATH``."""
    option = ["--config", PATH]
    for i in range(len(path) + 1):
        yield [*path[:i], *option, *path[i:], *rest]
    yield [*path, *rest, *option]
    yield [*path, *rest, f"--config={PATH}"]


def test_the_walk_finds_every_documented_command() -> None:
    assert {
        "serve",
        "check",
        "tenant add",
        "queue",
        "send-test",
        "backup",
        "bounce classify",
        "dkim keygen",
        "admin token create",
    } <= set(IDS)


@pytest.mark.parametrize(("path", "parser"), COMMANDS, ids=IDS)
def test_config_is_taken_before_or_after_the_subcommand(
    path: tuple[str, ...], parser: argparse.ArgumentParser
) -> None:
    rest = _required(parser)
    assert parse_args([*path, *rest]).config is None
    for argv in _placements(path, rest):
        args = parse_args(argv)
        assert args.config == PATH, argv
        assert args.command == path[0], argv
        assert not [k for k in vars(args) if k.startswith("config ")], argv


@pytest.mark.parametrize(("path", "parser"), COMMANDS, ids=IDS)
def test_two_different_configs_are_a_usage_error_naming_both(
    path: tuple[str, ...], parser: argparse.ArgumentParser, capsys: pytest.CaptureFixture[str]
) -> None:
    rest = _required(parser)
    with pytest.raises(SystemExit) as exited:
        parse_args(["--config", "first.toml", *path, *rest, "--config", "second.toml"])
    assert exited.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "first.toml" in err
    assert "second.toml" in err
    # The same file twice, even spelt differently, is no conflict.
    args = parse_args(["--config", "site.toml", *path, *rest, "--config", "./site.toml"])
    assert args.config in {"site.toml", "./site.toml"}
