"""Small charts drawn on the server: the geometry of SVG bars, for the overview page.

Owns: turning counts into rectangles and labels (a stacked column per day, horizontal bars
for a ranking), with numbers rounded for the markup. Does not own: the counts
(``admin.overview``) or the markup, which ``templates/chart.html`` prints (every value
escaped like any other). No script, no font file, no external resource: the page stays
within its CSP (``default-src 'none'``) and draws the same without JavaScript.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Rect:
    """One bar: position and size in the chart's units, its series (a CSS class) and the
    tooltip (``<title>``) that names the value."""

    x: float
    y: float
    w: float
    h: float
    series: str
    title: str
    value: int


@dataclass(frozen=True, slots=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "middle"


@dataclass(frozen=True, slots=True)
class Chart:
    """An SVG chart: ``width`` x ``height`` units, its bars and labels, and a legend."""

    kind: str
    title: str
    width: int
    height: int
    rects: list[Rect] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)  # (series, label)
    empty: bool = False


#: The longest name a ranking shows in full (the rest is in the bar's tooltip).
MAX_NAME = 26


def _r(value: float) -> float:
    return round(value, 1)


def stacked_columns(
    kind: str,
    title: str,
    columns: Sequence[tuple[str, dict[str, int]]],
    series: Sequence[tuple[str, str]],
    *,
    width: int = 560,
    height: int = 200,
) -> Chart:
    """A column per entry of ``columns`` (label, series -> count), its series stacked in the
    order of ``series`` ((key, label) pairs), scaled to the tallest column.

    Args:
        kind: a name for the chart (``data-chart`` in the markup, for tests).
        title: the chart's heading.
        columns: the columns, left to right.
        series: the series to stack, bottom first, with their legend labels.
        width: the chart's width in SVG units.
        height: the chart's height in SVG units.
    """
    top, bottom, left = 16, 22, 8
    plot = height - top - bottom
    most = max((sum(c.get(s, 0) for s, _ in series) for _, c in columns), default=0)
    slot = (width - 2 * left) / max(len(columns), 1)
    bar = slot * 0.62
    rects, labels = [], []
    for i, (name, counts) in enumerate(columns):
        x = left + i * slot + (slot - bar) / 2
        y = float(top + plot)
        total = 0
        for key, label in series:
            n = counts.get(key, 0)
            if n <= 0:
                continue
            h = plot * n / most
            y -= h
            total += n
            rects.append(Rect(_r(x), _r(y), _r(bar), _r(h), key, f"{name}: {label} {n}", n))
        labels.append(Label(_r(x + bar / 2), height - 6, name))
        if total:
            labels.append(Label(_r(x + bar / 2), _r(y - 4), str(total)))
    return Chart(kind, title, width, height, rects, labels, list(series), empty=most == 0)


def ranking(
    kind: str,
    title: str,
    rows: Sequence[tuple[str, int]],
    series: str,
    *,
    width: int = 560,
    row_height: int = 22,
) -> Chart:
    """Horizontal bars, one per ``(name, count)`` in the order given, scaled to the largest.

    Args:
        kind: a name for the chart (``data-chart`` in the markup).
        title: the chart's heading.
        rows: the names and counts, biggest first.
        series: the CSS class of every bar.
        width: the chart's width in SVG units.
        row_height: the height of one row.
    """
    name_w, pad = 190, 6
    most = max((n for _, n in rows), default=0)
    height = max(len(rows), 1) * row_height + pad
    span = width - name_w - 60
    rects, labels = [], []
    for i, (name, n) in enumerate(rows):
        y = pad + i * row_height
        w = span * n / most if most else 0
        rects.append(Rect(name_w, y, _r(max(w, 1)), row_height - 6, series, f"{name}: {n}", n))
        short = name if len(name) <= MAX_NAME else name[: MAX_NAME - 1] + "…"
        labels.append(Label(name_w - 6, y + row_height - 10, short, "end"))
        labels.append(Label(_r(name_w + w + 6), y + row_height - 10, str(n), "start"))
    return Chart(kind, title, width, height, rects, labels, [], empty=not rows)
