"""No dead wiring: every metric is fed by the gateway, every config key is read and documented.

Static checks over the source (``ast``), so a metric that only a test increments, or a key
that is parsed and documented but read by nothing, fails here rather than in production
where it silently says nothing:

* every metric ``Metrics.__init__`` defines is incremented, observed or set by gateway code
  that the rest of the gateway calls (a method of ``Metrics`` counts only when something
  outside ``metrics.py`` reaches it, directly or through other such methods);
* every key of every config section is read (``<something>.<key>``) outside ``config.py``;
* ``config/gateway.toml`` documents every key with the code's default, except the few values
  the shipped file sets on purpose (listed below, each with its reason).

The checks go by name, not by type: a key named like another attribute (``timeout``) is
only caught when nothing anywhere reads that name. They still catch what they were written
for: ``gateway_events_dropped_total`` fed only by a test, ``smtp.max_line_length`` read by
nothing.
"""

from __future__ import annotations

import ast
import dataclasses
import tomllib
from collections.abc import Iterator
from pathlib import Path

from gateway import config as config_module

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = ROOT / "gateway"
METRICS = GATEWAY / "observe" / "metrics.py"
CONFIG = GATEWAY / "config.py"
METRIC_TYPES = frozenset({"Counter", "Gauge", "Histogram", "Summary"})
FEEDS = frozenset({"inc", "dec", "set", "observe", "set_function"})

# Keys whose value in config/gateway.toml differs from the code's default on purpose: the
# shipped file is a starting point for a real server, so it names one. Nothing else may.
SHIPPED_NOT_DEFAULT = {
    "smtp.hostname": "the default is the kernel's host name; the file shows where to set it",
    "smtp.trusted_networks": "the file trusts loopback so a local application can send",
    "bounce.domain": "an example domain under the example hostname",
    "bounce.secret": "no default (a start-up error); the file holds a placeholder to replace",
}


def _trees(skip: Path | None = None) -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(GATEWAY.rglob("*.py")):
        if path != skip:
            yield path, ast.parse(path.read_text(encoding="utf-8"), str(path))


def _defined_metrics(metrics: ast.Module) -> dict[str, str]:
    """``{attribute: metric name}`` for each metric ``Metrics.__init__`` assigns."""
    (cls,) = [n for n in metrics.body if isinstance(n, ast.ClassDef) and n.name == "Metrics"]
    (init,) = [n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"]
    found = {}
    for node in ast.walk(init):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id in METRIC_TYPES
        ):
            (target,) = node.targets
            assert isinstance(target, ast.Attribute)
            name = node.value.args[0]
            assert isinstance(name, ast.Constant)
            found[target.attr] = str(name.value)
    return found


def _fed(node: ast.AST) -> str | None:
    """The metric attribute a call feeds: ``x.M.inc()``, ``x.M.labels(…).observe(…)`` or
    ``self._labels(self.M, …).set(…)``; else None."""
    if not (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in FEEDS
    ):
        return None
    target = node.func.value
    if isinstance(target, ast.Call) and isinstance(target.func, ast.Attribute):
        if target.func.attr == "labels":
            target = target.func.value
        elif target.func.attr == "_labels" and target.args:
            target = target.args[0]
    return target.attr if isinstance(target, ast.Attribute) else None


def _names_used(node: ast.AST) -> set[str]:
    """Every attribute and plain name loaded (or imported) under ``node``."""
    names: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Attribute):
            names.add(child.attr)
        elif isinstance(child, ast.Name):
            names.add(child.id)
        elif isinstance(child, ast.ImportFrom):
            names.update(alias.name for alias in child.names)
    return names


def _functions(metrics: ast.Module) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    """The module's functions and ``Metrics``' methods, ``__init__`` left out (it defines
    the metrics; setting one there observes nothing)."""
    functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
    for node in metrics.body:
        members = node.body if isinstance(node, ast.ClassDef) and node.name == "Metrics" else [node]
        for member in members:
            if isinstance(member, ast.FunctionDef | ast.AsyncFunctionDef):
                functions[member.name] = member
    functions.pop("__init__", None)
    return functions


def unfed_metrics(metrics: ast.Module, others: list[ast.Module]) -> dict[str, str]:
    """The metrics (``{attribute: name}``) that no live code feeds.

    Live code: every module in ``others``, and the functions of ``metrics`` that ``others``
    name, directly or through other live functions of ``metrics``.
    """
    functions = _functions(metrics)
    used_outside = set().union(*(_names_used(tree) for tree in others))
    live = {name for name in functions if name in used_outside}
    todo = list(live)
    while todo:
        for name in _names_used(functions[todo.pop()]) & set(functions) - live:
            live.add(name)
            todo.append(name)
    fed = {
        attribute
        for tree in [*(functions[name] for name in live), *others]
        for node in ast.walk(tree)
        if (attribute := _fed(node)) is not None
    }
    return {attr: name for attr, name in _defined_metrics(metrics).items() if attr not in fed}


def test_every_metric_is_fed_by_code_the_gateway_runs() -> None:
    metrics = ast.parse(METRICS.read_text(encoding="utf-8"))
    assert len(_defined_metrics(metrics)) > 20  # the parse found the definitions
    others = [tree for _, tree in _trees(skip=METRICS)]

    dead = unfed_metrics(metrics, others)

    assert dead == {}, f"metrics nothing in gateway/ feeds (a test at most): {dead}"


_OLD_BUG = """
class Metrics:
    def __init__(self):
        self.accepted = Counter("accepted_total", "", ["tenant"])
        self.dropped_events = Counter("events_dropped_total", "", ["sink"])
        self.sessions = Gauge("sessions", "")
        self.sessions.set(0)

    def publish(self, event):
        self._count(event)

    def _count(self, event):
        self._labels(self.accepted, event.tenant).inc()

    def dropped(self, sink):
        self.dropped_events.labels(sink).inc()
"""


def test_the_check_finds_a_metric_fed_only_by_a_method_nothing_calls() -> None:
    """gateway_events_dropped_total before issue 13: ``dropped()`` had no caller in gateway/
    (a test called it), and a value set in ``__init__`` observes nothing."""
    caller = ast.parse("for sink in sinks:\n    sink.publish(event)\n")

    dead = unfed_metrics(ast.parse(_OLD_BUG), [caller])

    assert dead == {"dropped_events": "events_dropped_total", "sessions": "sessions"}
    fixed = ast.parse("store = ObservedStore(raw, [m], on_sink_error=m.dropped)\n")
    assert unfed_metrics(ast.parse(_OLD_BUG), [caller, fixed]) == {"sessions": "sessions"}


def test_every_config_key_is_read_outside_config_py() -> None:
    read: set[str] = set()
    for _, tree in _trees(skip=CONFIG):
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                read.add(node.attr)
    unread = [
        f"{section}.{field.name}"
        for section, cls in config_module._SECTION_TYPES.items()
        for field in dataclasses.fields(cls)
        if field.name not in read
    ]
    assert unread == [], f"config keys parsed but read by nothing in gateway/: {unread}"


def test_the_shipped_config_documents_every_key_with_its_default() -> None:
    shipped = tomllib.loads((ROOT / "config/gateway.toml").read_text(encoding="utf-8"))
    missing, differs = [], []
    for section, cls in config_module._SECTION_TYPES.items():
        defaults = cls()
        values = shipped.get(section, {})
        for field in dataclasses.fields(cls):
            key = f"{section}.{field.name}"
            if field.name not in values:
                missing.append(key)
                continue
            value = field.metadata["parse"](key, values[field.name])
            if value != getattr(defaults, field.name) and key not in SHIPPED_NOT_DEFAULT:
                differs.append((key, value, getattr(defaults, field.name)))
    assert missing == [], f"keys config/gateway.toml does not document: {missing}"
    assert differs == [], f"(key, in config/gateway.toml, the code's default): {differs}"
    # every key of the shipped file is a known one (an unknown key stops start-up)
    assert config_module.load(ROOT / "config/gateway.toml", env={}).source
