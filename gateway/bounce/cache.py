"""What start-up derives from constant inputs, kept in a file from one process to the next.

Owns: :func:`regex` (``re.compile``, with the compiled form kept), :func:`memo` (a pure
function's result kept under its inputs) and :func:`save`. Does not own: what is computed
(``literals``, ``rules_file``, the modules' own patterns).

Why: ``gateway bounce classify`` is timed as a whole process against Sisimai (issue 12 item 5,
``bench/bounces.py --process``). Compiling the package's regular expressions (the rules' literal
finder alone is a pattern of 2,500 characters), reading ``rules.toml`` and finding the literals
each pattern requires took about a fifth of a run over 403 files, the same work every time.

Validity. A value is found by its full inputs (a pattern and its flags, the whole text of
``rules.toml``), so an edited rules file or pattern is never answered from the cache: it is
computed again, and the file rewritten. The file also holds the Python version and the source
of the modules whose results it keeps (this one, ``literals``, ``rules_file``); any difference
and the whole file is ignored. A compiled pattern is kept as the arguments ``re`` itself passes
to ``_sre.compile`` (private: read from its compiler), and only when the pattern they make
equals ``re.compile``'s (same flags and code, compared by ``==``), so a Python whose internals
differ gets no cache, never a different pattern. Any failure to read, parse or write the file
only means "no cache".

Where, and trust: like bytecode, beside the package's own (``gateway/bounce/__pycache__``), or
where that cannot be written in the user's cache directory (``$XDG_CACHE_HOME`` or
``~/.cache``, ``gateway/``); never written when Python is told not to write bytecode
(``PYTHONDONTWRITEBYTECODE``, ``-B``). It is as trusted as the bytecode beside it. A process
writes only the entries it used, and only when it had to compute one, so the file neither
grows with old rules nor is rewritten by every run.
"""

from __future__ import annotations

# _sre, re._compiler, re._parser: the regex engine's entry point and re's own compiler
# (private and untyped; a change only turns the regex cache off, see _arguments;
# tests/bounce/test_bounce_cache.py fails if it does).
import _sre  # type: ignore[import-not-found,unused-ignore]  # no stub
import _thread
import marshal
import os
import re
import sys
from re import _compiler, _parser  # type: ignore[attr-defined]  # private modules

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from collections.abc import Callable, Hashable
    from typing import TypeVar

    T = TypeVar("T")

_FORMAT = 1
# The modules whose results are kept (memo callers): their source is part of the key.
_KEYED_SOURCES = ("cache.py", "index.py", "literals.py", "rules_file.py")
_HERE = os.path.dirname(os.path.abspath(__file__))
_NAME = f"bounce-start.{sys.implementation.cache_tag}.bin"


class _State:
    """The cache of this process: what was read, what was used, whether anything was added."""

    __slots__ = ("dirty", "header", "patterns", "used_patterns", "used_values", "values")

    def __init__(self, header: tuple[object, ...] | None) -> None:
        self.header = header  # None: the sources could not be read, so nothing is kept
        self.patterns: dict[tuple[str, int], tuple[object, ...]] = {}
        self.values: dict[tuple[str, object], object] = {}
        self.used_patterns: set[tuple[str, int]] = set()
        self.used_values: set[tuple[str, object]] = set()
        self.dirty = False


_state: _State | None = None
_lock = _thread.allocate_lock()


def paths() -> list[str]:
    """The cache file's places, in order: beside the bytecode, then the user's cache."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    own = _HERE.strip(os.sep).replace(os.sep, "-")  # one file per installed copy
    return [
        os.path.join(_HERE, "__pycache__", _NAME),
        os.path.join(base, "gateway", f"{own}.{_NAME}"),
    ]


def _header() -> tuple[object, ...] | None:
    sources = []
    for name in _KEYED_SOURCES:
        try:
            with open(os.path.join(_HERE, name), "rb") as handle:
                sources.append(handle.read())
        except OSError:
            return None
    return (_FORMAT, sys.version, _sre.MAGIC, *sources)


def _load() -> _State:
    global _state  # noqa: PLW0603  # one cache per process, read at first use
    with _lock:
        if _state is not None:
            return _state
        state = _State(_header())
        if state.header is not None:
            for path in paths():
                try:
                    with open(path, "rb") as handle:
                        data = marshal.loads(handle.read())  # noqa: S302  # our own file
                except (OSError, EOFError, ValueError, TypeError):
                    continue
                if (
                    isinstance(data, tuple)
                    and len(data) == 3
                    and data[0] == state.header
                    and isinstance(data[1], dict)
                    and isinstance(data[2], dict)
                ):
                    state.patterns, state.values = data[1], data[2]
                    break
        _state = state
        return state


def regex(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """Return ``re.compile(pattern, flags)``, compiled from the cache when it holds it.

    Args:
        pattern: a regular expression (a module's constant or a packaged rule's).
        flags: its ``re`` flags.

    Raises:
        re.error: as ``re.compile`` does.
    """
    state = _state or _load()
    key = (pattern, int(flags))
    arguments = state.patterns.get(key)
    if arguments is not None:
        try:
            made: re.Pattern[str] = _sre.compile(pattern, *arguments)
        except Exception:  # noqa: S110  # a bad entry: compile it as if it were not there
            pass
        else:
            state.used_patterns.add(key)
            return made
    compiled = re.compile(pattern, flags)
    if state.header is not None:
        arguments = _arguments(compiled, pattern, int(flags))
        if arguments is not None:
            state.patterns[key] = arguments
            state.used_patterns.add(key)
            state.dirty = True
    return compiled


def _arguments(compiled: re.Pattern[str], pattern: str, flags: int) -> tuple[object, ...] | None:
    """What ``re._compiler.compile`` passes to ``_sre.compile`` for ``pattern``, if the pattern
    they make equals ``compiled`` (else ``None``: this Python's internals are not the ones
    read here)."""
    try:
        tree = _parser.parse(pattern, flags)
        code = [int(op) for op in _compiler._code(tree, flags)]  # opcodes are int subclasses
        groupindex = dict(tree.state.groupdict)
        indexgroup: list[str | None] = [None] * tree.state.groups
        for name, index in groupindex.items():
            indexgroup[index] = name
        arguments = (
            flags | tree.state.flags,
            code,
            tree.state.groups - 1,
            groupindex,
            tuple(indexgroup),
        )
        made = _sre.compile(pattern, *arguments)
        same = (
            made == compiled
            and made.groupindex == compiled.groupindex
            and made.groups == compiled.groups
        )
        if same:
            return arguments
    except Exception:  # noqa: S110  # internals not as expected: no cache for this pattern
        pass
    return None


def memo(section: str, key: Hashable, compute: Callable[[], T]) -> T:
    """Return ``compute()``, kept under ``(section, key)`` from one process to the next.

    ``compute`` must be a pure function of ``key`` defined in a module of ``_KEYED_SOURCES``,
    and its result made of what ``marshal`` writes (tuples, lists, dicts, sets, strings,
    numbers, booleans, ``None``). The result may be shared: callers must not change it.

    Args:
        section: what the value is (``"literals"``, ``"rules.toml"``…).
        key: the inputs of ``compute``, in full.
        compute: the function.
    """
    state = _state or _load()
    full = (section, key)
    try:
        value = state.values[full]
    except KeyError:
        value = compute()
        if state.header is not None:
            state.values[full] = value
            state.dirty = True
    except TypeError:  # an unhashable key: nothing to keep it under
        return compute()
    state.used_values.add(full)
    return value  # type: ignore[return-value]  # stored by this function for this key


def save() -> None:
    """Write the entries this process used, if it had to compute any; errors are ignored."""
    state = _state
    if state is None or not state.dirty or state.header is None or sys.dont_write_bytecode:
        return
    with _lock:
        try:
            data = marshal.dumps(
                (  # type: ignore[arg-type]  # marshal's stub knows no object values
                    state.header,
                    {key: state.patterns[key] for key in state.used_patterns},
                    {key: state.values[key] for key in state.used_values},
                )
            )
        except (ValueError, KeyError, RuntimeError):
            return  # a value marshal cannot write, or entries added meanwhile (threads)
        for path in paths():
            if _write(path, data):
                state.dirty = False
                return


def _write(path: str, data: bytes) -> bool:
    temporary = f"{path}.{os.getpid()}.{_thread.get_ident()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(temporary, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)  # readers see the old file or the new one, never half
    except OSError:
        try:  # noqa: SIM105  # contextlib is one more import at start-up
            os.unlink(temporary)
        except OSError:
            pass
        return False
    return True


def reset() -> None:
    """Forget this process's cache (tests: the next use reads the file again)."""
    global _state  # noqa: PLW0603
    with _lock:
        _state = None
