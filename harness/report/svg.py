"""Inline SVG charts for the HTML report: drawn here in Python, so the report needs no script,
no CDN and no network to show them.

One function draws a chart of line and point series on linear or log axes, with ticks at
"nice" values, a legend, optional reference lines and a tooltip (``<title>``) on each point;
:func:`bar_chart` draws a horizontal bar chart (the journey funnel). Every chart is an
``<svg class="chart" data-chart="NAME">`` so tests (and readers of the DOM) can find it.

    >>> axes = Axes(x_label="s", y_label="req/s")
    >>> svg = line_chart("t", [Series("rps", [0, 1, 2], [5, 7, 6])], axes)
    >>> svg.startswith('<svg class="chart"') and "polyline" in svg
    True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 760
HEIGHT = 300
MARGIN = (16, 20, 46, 64)  # top, right, bottom, left, px
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf")


@dataclass(frozen=True)
class Series:
    name: str
    xs: Sequence[float]
    ys: Sequence[float]
    color: str = ""
    points: bool = False  # markers instead of (or with) a line
    line: bool = True
    dash: bool = False


@dataclass(frozen=True)
class RefLine:
    """A horizontal (``axis="y"``) or vertical (``axis="x"``) reference line with a label."""

    axis: str
    value: float
    label: str
    color: str = "#666"


def nice_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """Ticks at 1, 2, 2.5 or 5 x 10^k covering ``[lo, hi]``."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, count)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    t = start
    while t <= hi + step * 1e-9:
        if t >= lo - step * 1e-9:
            ticks.append(round(t, 12))
        t += step
    return ticks


def log_ticks(lo: float, hi: float) -> list[float]:
    ticks = []
    for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for m in (1, 2, 5):
            v = m * 10.0**k
            if lo <= v <= hi:
                ticks.append(v)
    return ticks or [lo, hi]


def fmt(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:g}M"
    if a >= 1e4:
        return f"{v / 1e3:g}k"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 1:
        return f"{v:.3g}"
    return f"{v:.2g}"


class _Axis:
    def __init__(self, lo: float, hi: float, log: bool, a: float, b: float) -> None:
        if log:
            lo = max(lo, 1e-9)
            hi = max(hi, lo * 10)
            lo, hi = 10 ** math.floor(math.log10(lo)), 10 ** math.ceil(math.log10(hi))
        elif hi <= lo:
            hi = lo + 1.0
        self.lo, self.hi, self.log, self.a, self.b = lo, hi, log, a, b

    def __call__(self, v: float) -> float:
        if self.log:
            v = max(v, self.lo)
            f = (math.log10(v) - math.log10(self.lo)) / (math.log10(self.hi) - math.log10(self.lo))
        else:
            f = (v - self.lo) / (self.hi - self.lo)
        return self.a + f * (self.b - self.a)

    def ticks(self) -> list[float]:
        return log_ticks(self.lo, self.hi) if self.log else nice_ticks(self.lo, self.hi)


def _finite(
    xs: Sequence[float], ys: Sequence[float], x_log: bool, y_log: bool
) -> list[tuple[float, float]]:
    out = []
    for x, y in zip(xs, ys, strict=False):
        if x is None or y is None:
            continue
        x, y = float(x), float(y)
        if not (math.isfinite(x) and math.isfinite(y)):
            continue
        if (x_log and x <= 0) or (y_log and y <= 0):
            continue
        out.append((x, y))
    return out


@dataclass(frozen=True, kw_only=True)
class Axes:
    """The axes of a line chart: labels, scales and the range shown (None: the data's)."""

    x_label: str
    y_label: str
    x_log: bool = False
    y_log: bool = False
    x_min: float | None = None
    y_min: float | None = 0.0
    y_max: float | None = None
    x_tick_labels: Mapping[float, str] | None = None


def line_chart(
    name: str,
    series: Sequence[Series],
    axes: Axes,
    *,
    refs: Sequence[RefLine] = (),
    width: int = WIDTH,
    height: int = HEIGHT,
) -> str:
    """An SVG line chart of ``series`` on ``axes``, with reference lines."""
    pts = [_finite(s.xs, s.ys, axes.x_log, axes.y_log) for s in series]
    all_x = [p[0] for ps in pts for p in ps] + [r.value for r in refs if r.axis == "x"]
    all_y = [p[1] for ps in pts for p in ps] + [r.value for r in refs if r.axis == "y"]
    if not all_x or not all_y:
        return _empty(name, width, height, "no data")
    top, right, bottom, left = MARGIN
    x_lo = min(all_x) if axes.x_min is None else axes.x_min
    y_lo = min(all_y) if (axes.y_min is None or axes.y_log) else min(axes.y_min, min(all_y))
    y_hi = max(all_y) if axes.y_max is None else axes.y_max
    if not axes.y_log:
        y_hi = y_hi + (y_hi - y_lo) * 0.05
    xa = _Axis(x_lo, max(all_x), axes.x_log, left, width - right)
    ya = _Axis(y_lo, y_hi, axes.y_log, height - bottom, top)
    clip = f"clip-{escape(name)}"
    return "".join(
        [
            _open(name, width, height),
            f'<rect x="{left}" y="{top}" width="{width - left - right}" '
            f'height="{height - top - bottom}" fill="#fcfcfd" stroke="#ccc"/>',
            *_grid(xa, ya, axes, width, height),
            f'<clipPath id="{clip}"><rect x="{left}" y="{top}" width="{width - left - right}" '
            f'height="{height - top - bottom}"/></clipPath><g clip-path="url(#{clip})">',
            *_ref_lines(refs, xa, ya, width),
            *_lines(series, pts, xa, ya),
            "</g>",
            _legend(series, left + 8, top + 6),
            "</svg>",
        ]
    )


def _grid(xa: _Axis, ya: _Axis, axes: Axes, width: int, height: int) -> list[str]:
    top, right, bottom, left = MARGIN
    out = []
    for t in ya.ticks():
        y = ya(t)
        out.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{fmt(t)}</text>'
        )
    if axes.x_tick_labels:
        labels = sorted(axes.x_tick_labels.items())
        x_ticks = [(v, lab) for v, lab in labels if xa.lo <= v <= xa.hi]
    else:
        x_ticks = [(v, fmt(v)) for v in xa.ticks()]
    for t, lab in x_ticks:
        x = xa(t)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{height - bottom}" stroke="#eee"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{height - bottom + 16}" text-anchor="middle" '
            f'class="tick">{escape(lab)}</text>'
        )
    out.append(
        f'<text x="{(left + width - right) / 2:.0f}" y="{height - 8}" text-anchor="middle" '
        f'class="label">{escape(axes.x_label)}</text>'
    )
    out.append(
        f'<text transform="translate(14 {(top + height - bottom) / 2:.0f}) rotate(-90)" '
        f'text-anchor="middle" class="label">{escape(axes.y_label)}</text>'
    )
    return out


def _ref_lines(refs: Sequence[RefLine], xa: _Axis, ya: _Axis, width: int) -> list[str]:
    top, right, _, left = MARGIN
    out = []
    for i, r in enumerate(refs):
        if r.axis == "y":
            y = ya(r.value)
            out.append(
                f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
                f'stroke="{r.color}" stroke-dasharray="6 4"/>'
                f'<text x="{width - right - 4 - 110 * i}" y="{y - 4:.1f}" text-anchor="end" '
                f'class="ref" fill="{r.color}">{escape(r.label)}</text>'
            )
        else:
            x = xa(r.value)
            out.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{ya.a:.0f}" '
                f'stroke="{r.color}" stroke-dasharray="6 4"/>'
                f'<text x="{x + 4:.1f}" y="{top + 12}" class="ref" fill="{r.color}">'
                f"{escape(r.label)}</text>"
            )
    return out


def _lines(
    series: Sequence[Series], pts: Sequence[list[tuple[float, float]]], xa: _Axis, ya: _Axis
) -> list[str]:
    out = []
    for i, (s, ps) in enumerate(zip(series, pts, strict=True)):
        color = s.color or PALETTE[i % len(PALETTE)]
        coords = [(xa(x), ya(y)) for x, y in ps]
        if s.line and len(coords) > 1:
            dash = ' stroke-dasharray="5 3"' if s.dash else ""
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            out.append(
                f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"{dash}/>'
            )
        if s.points:
            for (x, y), (vx, vy) in zip(coords, ps, strict=True):
                out.append(
                    f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{color}">'
                    f"<title>{escape(s.name)}: {fmt(vx)}, {fmt(vy)}</title></circle>"
                )
    return out


def bar_chart(name: str, labels: Sequence[str], values: Sequence[float], *, unit: str) -> str:
    """Horizontal bars, one per label, with the value and the share of the first bar."""
    if not labels:
        return _empty(name, WIDTH, 80, "no data")
    row = 26
    left = 260
    width = WIDTH
    height = 20 + row * len(labels)
    top_value = max(max(values), 1e-12)
    first = values[0] if values and values[0] > 0 else top_value
    out = [_open(name, width, height)]
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        y = 10 + i * row
        w = (width - left - 120) * v / top_value
        out.append(
            f'<text x="{left - 8}" y="{y + 15}" text-anchor="end" class="tick">'
            f"{escape(label)}</text>"
            f'<rect x="{left}" y="{y + 2}" width="{max(w, 1):.1f}" height="{row - 8}" '
            f'fill="{PALETTE[0]}"><title>{escape(label)}: {v:,.0f} {escape(unit)}</title></rect>'
            f'<text x="{left + w + 6:.1f}" y="{y + 15}" class="tick">{v:,.0f} '
            f"({100 * v / first:.1f} %)</text>"
        )
    out.append("</svg>")
    return "".join(out)


def _open(name: str, width: int, height: int) -> str:
    return (
        f'<svg class="chart" data-chart="{escape(name)}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">'
    )


def _empty(name: str, width: int, height: int, text: str) -> str:
    return (
        _open(name, width, height)
        + f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" class="label">'
        + f"{escape(text)}</text></svg>"
    )


def _legend(series: Sequence[Series], x: float, y: float) -> str:
    out = []
    for i, s in enumerate(series):
        color = s.color or PALETTE[i % len(PALETTE)]
        yy = y + 14 * i
        dash = ' stroke-dasharray="5 3"' if s.dash else ""
        out.append(
            f'<line x1="{x}" x2="{x + 18}" y1="{yy + 5}" y2="{yy + 5}" stroke="{color}" '
            f'stroke-width="{2 if s.line else 0}"{dash}/>'
            + (f'<circle cx="{x + 9}" cy="{yy + 5}" r="3.5" fill="{color}"/>' if s.points else "")
            + f'<text x="{x + 24}" y="{yy + 9}" class="legend">{escape(s.name)}</text>'
        )
    return "".join(out)
