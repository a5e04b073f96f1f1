"""Charts drawn as SVG shapes: a histogram panel (bars, an optional density curve, a legend) and a line chart."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from grader.report.svg import GRID, Svg, nice_ticks, tick_label

Box = tuple[float, float, float, float]  # x, y, width, height
Curve = tuple[np.ndarray, np.ndarray, str]  # x, y, legend label


def _scale(low: float, high: float, start: float, end: float):
    """The linear map taking low..high onto start..end (a zero-width range onto its middle)."""
    if high <= low:
        return lambda v: (start + end) / 2
    return lambda v: start + (v - low) / (high - low) * (end - start)


def _x_axis(svg: Svg, ticks: Sequence[float], sx, left: float, right: float, bottom: float, label: str) -> None:
    """Ticks and labels under a plot area, and the axis label below them."""
    for value in ticks:
        x = sx(value)
        if left - 0.5 <= x <= right + 0.5:
            svg.line(x, bottom, x, bottom + 4, stroke="#555")
            svg.text(x, bottom + 16, tick_label(value), size=10, anchor="middle")
    if label:
        svg.text((left + right) / 2, bottom + 34, label, size=12, anchor="middle")


def _y_axis(svg: Svg, ticks: Sequence[float], sy, left: float, right: float, top: float, bottom: float,
            label: str) -> None:
    """Grid lines, ticks and labels left of a plot area, and the rotated axis label."""
    for value in ticks:
        y = sy(value)
        if top - 0.5 <= y <= bottom + 0.5:
            svg.line(left, y, right, y, stroke=GRID)
            svg.line(left - 4, y, left, y, stroke="#555")
            svg.text(left - 7, y + 3.5, tick_label(value), size=10, anchor="end")
    if label:
        svg.text(left - 36, (top + bottom) / 2, label, size=12, anchor="middle", rotate=True)


def _legend(svg: Svg, right: float, y: float, entries: Sequence[tuple[str, str, str, str]]) -> None:
    """A framed legend whose right edge is at `right` and top at y: (label, colour, kind, dash); kind is "bar",
    "line" or a marker shape ("o", "s") drawn on its line."""
    width = 40 + 6.6 * max(len(label) for label, *_ in entries)
    left = right - width
    svg.rect(left, y, width, 8 + 18 * len(entries), fill="#fff", stroke="#ccc", extra=' fill-opacity="0.9"')
    for k, (label, colour, kind, dash) in enumerate(entries):
        cy = y + 13 + 18 * k
        if kind == "bar":
            svg.rect(left + 8, cy - 5, 20, 10, fill=colour)
        else:
            svg.line(left + 8, cy, left + 28, cy, stroke=colour, width=2, dash=dash)
            if kind in ("o", "s"):
                svg.marker(left + 18, cy, kind, colour, size=3.5)
        svg.text(left + 34, cy + 4, label, size=11)


def histogram_panel(svg: Svg, box: Box, counts: np.ndarray, edges: np.ndarray, *, x_range: tuple[float, float],
                    curve: Curve | None, title: str, density: bool, x_label: str = "", y_label: str = "") -> None:
    """Bars of counts (n,) over edges (n + 1,) in box; a density shows no y ticks and a legend ("yours" and the
    curve's label), counts get whole-number ticks and grid lines."""
    x0, y0, w, h = box
    left, right = x0 + (54 if y_label else 14), x0 + w - 14
    top, bottom = y0 + (30 if title else 12), y0 + h - (44 if x_label else 26)
    peak = max(float(counts.max()) if counts.size else 0.0, float(np.max(curve[1])) if curve else 0.0)
    low, high = x_range
    pad = 0.02 * (high - low) if high > low else 0.5
    sx, sy = _scale(low - pad, high + pad, left, right), _scale(0.0, 1.05 * peak or 1.0, bottom, top)
    if not density:
        _y_axis(svg, nice_ticks(0.0, 1.05 * peak or 1.0, 5, integer=True), sy, left, right, top, bottom, y_label)
    colour = "#95a5a6" if density else "#2c3e50"
    outline = "none" if density else "#fff"
    for count, a, b in zip(counts, edges[:-1], edges[1:], strict=True):
        if count > 0:
            svg.rect(sx(a), sy(count), sx(b) - sx(a), bottom - sy(count), fill=colour, stroke=outline)
    if curve is not None:
        xs, ys, _ = curve
        svg.polyline(zip(map(sx, xs), map(sy, ys), strict=True), stroke="#2c3e50", width=1.8)
    svg.rect(left, top, right - left, bottom - top, fill="none", stroke="#888")
    _x_axis(svg, nice_ticks(low, high, 5), sx, left, right, bottom, x_label)
    if title:
        svg.text((left + right) / 2, y0 + 19, title, size=13, anchor="middle")
    if density:
        entries = [("yours", colour, "bar", "")] + ([(curve[2], "#2c3e50", "line", "")] if curve else [])
        _legend(svg, right - 6, top + 6, entries)


def line_chart(lines: Sequence[tuple[str, str, str, str, np.ndarray, np.ndarray]], x_ticks: np.ndarray, *,
               x_label: str, y_label: str, y_range: tuple[float, float], title: str) -> str:
    """A 600 x 340 line chart of (label, colour, marker "o"/"s", dash, x, y) lines, clipped to y_range, with a
    legend at the lower right; an SVG data URI."""
    svg = Svg(600, 340, title)
    left, right, top, bottom = 62.0, 588.0, 12.0, 290.0
    xs = np.asarray(x_ticks, dtype=np.float64)
    xs = xs[np.isfinite(xs)]
    low, high = (float(xs.min()), float(xs.max())) if xs.size else (0.0, 1.0)
    pad = 0.05 * (high - low) if high > low else 1.0
    sx, sy = _scale(low - pad, high + pad, left, right), _scale(*y_range, bottom, top)
    _y_axis(svg, nice_ticks(*y_range, 6), sy, left, right, top, bottom, y_label)
    for value in np.unique(xs):
        svg.line(sx(value), top, sx(value), bottom, stroke=GRID)
    _x_axis(svg, list(np.unique(xs)), sx, left, right, bottom, x_label)
    svg.clip_rect("plot", left, top, right - left, bottom - top)
    for _, colour, shape, dash, x, y in lines:
        finite = np.isfinite(x) & np.isfinite(y)
        points = [(sx(a), sy(b)) for a, b in zip(x, y, strict=True)]
        for segment in _runs(points, finite):
            svg.polyline(segment, stroke=colour, width=2, dash=dash, clip="plot")
        for (px, py), ok in zip(points, finite, strict=True):
            if ok and top - 0.5 <= py <= bottom + 0.5:
                svg.marker(px, py, shape, colour)
    svg.rect(left, top, right - left, bottom - top, fill="none", stroke="#888")
    _legend(svg, right - 8, bottom - 14 - 18 * len(lines), [(label, c, m, d) for label, c, m, d, _, _ in lines])
    return svg.data_uri()


def _runs(points: list[tuple[float, float]], keep: np.ndarray) -> list[list[tuple[float, float]]]:
    """The points split into runs of consecutive kept ones (a missing value breaks the line)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for point, ok in zip(points, keep, strict=True):
        if ok:
            runs[-1].append(point)
        elif runs[-1]:
            runs.append([])
    return [r for r in runs if len(r) > 1]
