"""Small SVG charts for the report, written by hand: no plotting library, no script, nothing fetched. Each chart is
one `<svg>` string with a <title> for screen readers; sizes are in user units and the SVG scales to its column."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

BLUE = "#2f6fb0"
TEAL = "#2a9d8f"
AMBER = "#e0a030"
RED = "#d1495b"
PURPLE = "#7b5ea7"
GREY = "#9aa5b1"
INK = "#1f2933"
MUTED = "#616e7c"
GRID = "#e4e7eb"
SERIES = (BLUE, AMBER, TEAL, PURPLE, RED, GREY)
FONT = 'font-family="system-ui, -apple-system, Segoe UI, Noto Sans, sans-serif"'
HATCH = (
    '<defs><pattern id="{id}" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
    f'<rect width="6" height="6" fill="#f5f7fa"/><line x1="0" y1="0" x2="0" y2="6" stroke="{GREY}" stroke-width="2"/>'
    "</pattern></defs>"
)


_ids = itertools.count(1)


def _hatch_id() -> str:
    """A hatch pattern id unique in the document (several SVGs share one HTML page)."""
    return f"hatch-{next(_ids)}"


def _t(text: object) -> str:
    return escape(str(text), quote=True)


def _svg(width: float, height: float, title: str, body: list[str], hatch_id: str | None = None) -> str:
    defs = HATCH.format(id=hatch_id) if hatch_id else ""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" width="100%" '
        f'role="img" aria-label="{_t(title)}" {FONT} font-size="13" fill="{INK}"><title>{_t(title)}</title>'
        f"{defs}{''.join(body)}</svg>"
    )


def nice_max(value: float) -> float:
    """A round axis maximum at or above `value` (1, 2, 2.5, 5 × 10^n)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def ticks(maximum: float, count: int = 4) -> list[float]:
    return [maximum * i / count for i in range(count + 1)]


@dataclass(frozen=True)
class Bar:
    label: str
    value: float  # what sets the bar's length
    text: str  # what is printed beside it ("1,234", "42%", "<5")
    suppressed: bool = False  # a small cell: drawn as a hatched stub, no length
    color: str = BLUE


def hbar_chart(bars: Sequence[Bar], *, title: str, maximum: float | None = None, width: int = 760,
               label_width: int = 230, fmt: Callable[[float], str] = lambda v: f"{v:,.0f}") -> str:  # fmt: skip
    """Horizontal bars with a label on the left and the value on the right."""
    row, top = 26, 24
    height = top + row * max(1, len(bars)) + 14
    maximum = nice_max(maximum if maximum is not None else max((b.value for b in bars), default=1))
    plot = width - label_width - 150  # room for the value printed after the longest bar
    hatch = _hatch_id()
    body = []
    for tick in ticks(maximum):
        x = label_width + plot * tick / maximum
        body.append(f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{height - 10}" stroke="{GRID}"/>')
        body.append(f'<text x="{x:.1f}" y="{top - 10}" text-anchor="middle" fill="{MUTED}" font-size="11">'
                    f"{_t(fmt(tick))}</text>")  # fmt: skip
    for i, bar in enumerate(bars):
        y = top + i * row
        body.append(f'<text x="{label_width - 8}" y="{y + 16}" text-anchor="end">{_t(bar.label)}</text>')
        if bar.suppressed:
            body.append(f'<rect x="{label_width}" y="{y + 4}" width="14" height="{row - 8}" fill="url(#{hatch})"/>')
            length = 14.0
        else:
            length = max(1.5, plot * min(bar.value, maximum) / maximum)
            body.append(f'<rect x="{label_width}" y="{y + 4}" width="{length:.1f}" height="{row - 8}" rx="2" '
                        f'fill="{bar.color}"/>')  # fmt: skip
        body.append(f'<text x="{label_width + length + 6:.1f}" y="{y + 16}" fill="{MUTED}">{_t(bar.text)}</text>')
    return _svg(width, height, title, body, hatch_id=hatch)


def grouped_hbar_chart(groups: Sequence[tuple[str, Sequence[Bar]]], *, title: str, legend: Sequence[tuple[str, str]],
                       width: int = 760, label_width: int = 200) -> str:  # fmt: skip
    """Groups of horizontal bars (e.g. a topic, one bar per language), with a legend on top."""
    bar_h, gap, top = 16, 12, 34
    per_group = max((len(bars) for _, bars in groups), default=1)
    height = top + len(groups) * (per_group * bar_h + gap) + 10
    maximum = nice_max(max((b.value for _, bars in groups for b in bars), default=1))
    plot = width - label_width - 70
    hatch = _hatch_id()
    body = _legend(legend, label_width, 14)
    for tick in ticks(maximum):
        x = label_width + plot * tick / maximum
        body.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 8}" stroke="{GRID}"/>')
    for g, (label, bars) in enumerate(groups):
        y0 = top + g * (per_group * bar_h + gap)
        middle = y0 + per_group * bar_h / 2 + 4
        body.append(f'<text x="{label_width - 8}" y="{middle:.1f}" text-anchor="end">{_t(label)}</text>')
        for i, bar in enumerate(bars):
            y = y0 + i * bar_h
            if bar.suppressed:
                length = 12.0
                body.append(f'<rect x="{label_width}" y="{y + 2}" width="12" height="{bar_h - 4}" '
                            f'fill="url(#{hatch})"/>')  # fmt: skip
            else:
                length = max(1.5, plot * bar.value / maximum)
                body.append(f'<rect x="{label_width}" y="{y + 2}" width="{length:.1f}" height="{bar_h - 4}" rx="2" '
                            f'fill="{bar.color}"/>')  # fmt: skip
            body.append(f'<text x="{label_width + length + 5:.1f}" y="{y + bar_h - 4}" fill="{MUTED}" '
                        f'font-size="11">{_t(bar.text)}</text>')  # fmt: skip
    return _svg(width, height, title, body, hatch_id=hatch)


def _legend(items: Sequence[tuple[str, str]], x: float, y: float) -> list[str]:
    body = []
    for name, color in items:
        body.append(f'<rect x="{x:.1f}" y="{y - 9}" width="11" height="11" rx="2" fill="{color}"/>')
        body.append(f'<text x="{x + 16:.1f}" y="{y}" font-size="12">{_t(name)}</text>')
        x += 28 + 7.2 * len(name)
    return body


def line_chart(labels: Sequence[str], series: Sequence[tuple[str, str, Sequence[float | None]]], *, title: str,
               fmt: Callable[[float], str] = lambda v: f"{v:,.0f}", maximum: float | None = None,
               notes: Sequence[str | None] | None = None, width: int = 760, height: int = 260) -> str:  # fmt: skip
    """Lines over weeks (x: labels; y from 0). `notes[i]` replaces the point's value label (e.g. "<5")."""
    left, right, top, bottom = 56, 16, 30, 44
    values = [v for _, _, points in series for v in points if v is not None]
    maximum = nice_max(maximum if maximum is not None else max(values, default=1))
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(1, len(labels) - 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return left + plot_w * i / n, top + plot_h * (1 - min(v, maximum) / maximum)

    body = _legend([(name, color) for name, color, _ in series], left, 14) if len(series) > 1 else []
    for tick in ticks(maximum):
        y = top + plot_h * (1 - tick / maximum)
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="{GRID}"/>')
        body.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{MUTED}" font-size="11">'
                    f"{_t(fmt(tick))}</text>")  # fmt: skip
    step = max(1, math.ceil(len(labels) / 10))
    for i, label in enumerate(labels):
        if i % step == 0 or i == len(labels) - 1:
            x = left + plot_w * i / n
            body.append(f'<text x="{x:.1f}" y="{height - bottom + 18}" text-anchor="middle" fill="{MUTED}" '
                        f'font-size="11">{_t(label)}</text>')  # fmt: skip
    for _, color, points in series:
        path: list[str] = []
        for i, v in enumerate(points):
            if v is None:
                continue
            x, y = xy(i, v)
            path.append(f"{'M' if not path else 'L'}{x:.1f},{y:.1f}")
        if path:
            body.append(f'<path d="{" ".join(path)}" fill="none" stroke="{color}" stroke-width="2.5" '
                        'stroke-linejoin="round"/>')  # fmt: skip
        for i, v in enumerate(points):
            if v is None:
                continue
            x, y = xy(i, v)
            body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>')
            if notes and i < len(notes) and notes[i]:
                body.append(f'<text x="{x:.1f}" y="{y - 8:.1f}" text-anchor="middle" font-size="10" '
                            f'fill="{MUTED}">{_t(notes[i])}</text>')  # fmt: skip
    return _svg(width, height, title, body)


def heatmap(rows: Sequence[str], columns: Sequence[str], cells: Sequence[Sequence[tuple[float | None, str]]], *,
            title: str, width: int = 760, row_label_width: int = 110) -> str:  # fmt: skip
    """A grid of shares (0-1) with the text in each cell; None is an empty cell (not yet observable)."""
    cell_h, top = 24, 34
    cell_w = (width - row_label_width - 10) / max(1, len(columns))
    height = top + cell_h * max(1, len(rows)) + 8
    hatch = _hatch_id()
    body = []
    for j, label in enumerate(columns):
        x = row_label_width + cell_w * (j + 0.5)
        body.append(f'<text x="{x:.1f}" y="{top - 10}" text-anchor="middle" fill="{MUTED}" font-size="11">'
                    f"{_t(label)}</text>")  # fmt: skip
    for i, label in enumerate(rows):
        y = top + i * cell_h
        body.append(f'<text x="{row_label_width - 8}" y="{y + 16}" text-anchor="end" font-size="12">{_t(label)}</text>')
        for j, (value, text) in enumerate(cells[i]):
            x = row_label_width + cell_w * j
            if value is None and not text:
                continue
            fill = f"url(#{hatch})" if value is None else _blue_scale(value)
            body.append(f'<rect x="{x + 1:.1f}" y="{y + 1}" width="{cell_w - 2:.1f}" height="{cell_h - 2}" rx="2" '
                        f'fill="{fill}"/>')  # fmt: skip
            ink = "#ffffff" if value is not None and value > 0.45 else INK
            body.append(f'<text x="{x + cell_w / 2:.1f}" y="{y + 16}" text-anchor="middle" font-size="11" '
                        f'fill="{ink}">{_t(text)}</text>')  # fmt: skip
    return _svg(width, height, title, body, hatch_id=hatch)


def _blue_scale(share: float) -> str:
    """White (0) to deep blue (1)."""
    share = max(0.0, min(1.0, share)) ** 0.7
    start, end = (238, 244, 250), (23, 63, 120)
    r, g, b = (round(s + (e - s) * share) for s, e in zip(start, end, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


@dataclass(frozen=True)
class Interval:
    label: str
    estimate: float | None  # None: too few to show
    low: float
    high: float
    text: str
    color: str = BLUE


def interval_chart(items: Sequence[Interval], *, title: str, lower: float, upper: float, zero: float | None = None,
                   fmt: Callable[[float], str] = lambda v: f"{v:.0%}", width: int = 760,
                   label_width: int = 190) -> str:  # fmt: skip
    """Estimates with 95% confidence intervals (a forest plot); `zero` draws a reference line."""
    row, top = 30, 26
    height = top + row * max(1, len(items)) + 10
    plot = width - label_width - 190

    def x(v: float) -> float:
        return label_width + plot * (min(max(v, lower), upper) - lower) / (upper - lower)

    body = []
    for tick in ticks(upper - lower):
        value = lower + tick
        body.append(f'<line x1="{x(value):.1f}" y1="{top - 6}" x2="{x(value):.1f}" y2="{height - 8}" '
                    f'stroke="{GRID}"/>')  # fmt: skip
        body.append(f'<text x="{x(value):.1f}" y="{top - 10}" text-anchor="middle" fill="{MUTED}" font-size="11">'
                    f"{_t(fmt(value))}</text>")  # fmt: skip
    if zero is not None:
        body.append(f'<line x1="{x(zero):.1f}" y1="{top - 6}" x2="{x(zero):.1f}" y2="{height - 8}" stroke="{INK}" '
                    'stroke-dasharray="4 3"/>')  # fmt: skip
    for i, item in enumerate(items):
        y = top + i * row + row / 2
        body.append(f'<text x="{label_width - 8}" y="{y + 4:.1f}" text-anchor="end">{_t(item.label)}</text>')
        if item.estimate is not None:
            body.append(f'<line x1="{x(item.low):.1f}" y1="{y:.1f}" x2="{x(item.high):.1f}" y2="{y:.1f}" '
                        f'stroke="{item.color}" stroke-width="3" stroke-linecap="round"/>')  # fmt: skip
            body.append(f'<circle cx="{x(item.estimate):.1f}" cy="{y:.1f}" r="6" fill="{item.color}" '
                        'stroke="#ffffff" stroke-width="1.5"/>')  # fmt: skip
        body.append(f'<text x="{label_width + plot + 12}" y="{y + 4:.1f}" fill="{MUTED}" font-size="12">'
                    f"{_t(item.text)}</text>")  # fmt: skip
    return _svg(width, height, title, body)


def stacked_hbar_chart(rows: Sequence[tuple[str, Sequence[tuple[str, int, str]]]], *, title: str,
                       legend: Sequence[tuple[str, str]], width: int = 760, label_width: int = 190,
                       count_text: Callable[[int], str] = lambda n: f"{n:,}") -> str:  # fmt: skip
    """One bar per row split into segments (name, count, color) as shares of the row's total; `count_text` prints
    counts (the report's shows small cells as "<5")."""
    row, top = 30, 36
    height = top + row * max(1, len(rows)) + 8
    plot = width - label_width - 80
    body = _legend(legend, label_width, 14)
    for i, (label, segments) in enumerate(rows):
        y = top + i * row
        total = sum(count for _, count, _ in segments) or 1
        body.append(f'<text x="{label_width - 8}" y="{y + 18}" text-anchor="end">{_t(label)}</text>')
        x = float(label_width)
        for name, count, color in segments:
            w = plot * count / total
            if w <= 0:
                continue
            body.append(f'<rect x="{x:.1f}" y="{y + 5}" width="{w:.1f}" height="{row - 10}" fill="{color}">'
                        f"<title>{_t(name)}: {_t(count_text(count))}</title></rect>")  # fmt: skip
            if w > 38 and count_text(count) == f"{count:,}":
                body.append(f'<text x="{x + w / 2:.1f}" y="{y + 19}" text-anchor="middle" font-size="11" '
                            f'fill="#ffffff">{count / total:.0%}</text>')  # fmt: skip
            x += w
        body.append(f'<text x="{label_width + plot + 8}" y="{y + 19}" fill="{MUTED}" font-size="12">'
                    f"{_t(count_text(total))}</text>")  # fmt: skip
    return _svg(width, height, title, body)


def empty_chart(message: str, *, title: str, width: int = 760, height: int = 70) -> str:
    """What a section shows when there is nothing to plot yet (still a rendered figure)."""
    body = [
        f'<rect x="1" y="1" width="{width - 2}" height="{height - 2}" rx="6" fill="#f5f7fa" stroke="{GRID}"/>',
        f'<text x="{width / 2}" y="{height / 2 + 5}" text-anchor="middle" fill="{MUTED}">{_t(message)}</text>',
    ]
    return _svg(width, height, title, body)
