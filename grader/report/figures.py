"""Pictures for the reports as SVG data URIs: arrays as embedded PNGs (png.py), charts as SVG shapes (svg.py).

Every function takes plain numbers (lists or arrays) and returns a ``data:image/svg+xml;base64,...`` string,
or None when its data is absent or malformed: a missing picture never stops a report. No plotting library is
imported: a report set costs milliseconds of drawing.

Keys expected in ``SubmissionResult.figures`` (all values plain JSON numbers and lists; canonical layout,
``W`` is (n_in, n_out) as in ``z = a @ W + b``):

- ``figures["gradients"][tensor] = {"student": array, "expected": array}`` for tensor in W1, b1, ... b3:
  the student's implied gradient and the finite-difference gradient at the grader's probe point, same shape
  (W1 (784, 32), W2 (32, 32), W3 (32, 10), b1 (32,), b2 (32,), b3 (10,)). W1 becomes 32 tiles of 28x28
  (one per hidden unit) for the student, the finite differences and their difference; the other tensors
  become side-by-side heat maps; every panel has its own colour scale. ``figures["gradients"]["probe"] =
  {"label": int, "pixels": [784 values]}`` is the probe digit they were computed at, shown beside W1.
- ``figures["training"] = {"epochs": [0, 1, 2, 3], "student": [acc, ...], "reference": [acc, ...]}``: test
  accuracy (0..1, or percent if any value exceeds 1) per epoch; ``student`` may be shorter (a run cut short).
- ``figures["init"][name] = {"values": [...], "sigma": float, "mean": 0.0}``: a sample (any length, any shape)
  of a weight matrix right after the student's initialisation and the expected normal's standard deviation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from grader.report.charts import histogram_panel, line_chart
from grader.report.colourmap import DIVERGING, diverging_palette, grey_palette, level_indices
from grader.report.png import palette_png, upscaled
from grader.report.svg import Svg, nice_ticks, tick_label

SMALL_TENSORS = ("b1", "W2", "b2", "W3", "b3")
TILE = 28
TILE_SCALE = 1.25  # display pixels per gradient entry in the W1 mosaics
DIGIT_SIZE = 84  # display size of the 28x28 probe digit
COLOUR_BAR = 10  # colour bar width; its tick labels take BAR_LABELS more
BAR_LABELS = 52


def _array(value: Any) -> np.ndarray | None:
    """A finite-or-not float64 array from nested lists, or None when it is not numeric."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return arr if arr.size else None


def _symmetric_limit(*arrays: np.ndarray) -> float:
    """A colour limit for arrays: the 99.5th percentile of |values| (one outlier must not wash out)."""
    values = np.concatenate([np.abs(a[np.isfinite(a)]).ravel() for a in arrays])
    if values.size == 0:
        return 1.0
    limit = float(np.percentile(values, 99.5))
    return limit if limit > 0 else float(values.max()) or 1.0


def panel_limits(student: np.ndarray, expected: np.ndarray) -> tuple[float, float, float]:
    """Colour limits for the panels yours, finite differences, difference: each of the first two its own; the
    difference at least the finite differences' (rounding noise of 1e-13 stays white, a real gap shows)."""
    ours, theirs = _symmetric_limit(student), _symmetric_limit(expected)
    return ours, theirs, max(_symmetric_limit(student - expected), theirs)


def tile_mosaic(columns: np.ndarray, rows: int = 4, cols: int = 8) -> np.ndarray:
    """(784, 32) -> a (rows*29-1, cols*29-1) mosaic: column j as a 28x28 tile, NaN gutters between tiles."""
    n = columns.shape[1]
    out = np.full((rows * (TILE + 1) - 1, cols * (TILE + 1) - 1), np.nan)
    for j in range(min(n, rows * cols)):
        r, c = divmod(j, cols)
        out[r * (TILE + 1) : r * (TILE + 1) + TILE, c * (TILE + 1) : c * (TILE + 1) + TILE] = columns[
            :, j
        ].reshape(TILE, TILE)
    return out


def heat_panel(svg: Svg, x: float, y: float, size: tuple[float, float], values: np.ndarray, limit: float,
               title: Sequence[str]) -> None:
    """An array (h, w) as a w x h-pixel-box heat map at (x, y) on -limit..limit, its title lines above it and its
    colour bar (with ticks) to its right."""
    w, h = size
    values = fitted(values, math.ceil(h), math.ceil(w))
    rows, cols = values.shape
    png = palette_png(upscaled(level_indices(values, -limit, limit), math.ceil(h / rows), math.ceil(w / cols)),
                      diverging_palette())
    svg.image(x, y, w, h, png)
    svg.rect(x, y, w, h, fill="none", stroke="#888")
    for k, line in enumerate(title):
        svg.text(x + w / 2, y - 6 - 15 * (len(title) - 1 - k), line, size=12.5, anchor="middle")
    colour_bar(svg, x + w + 6, y, h, limit)


def fitted(values: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """(h, w) -> at most (rows, cols): every axis longer than its box sampled evenly (nearest entry), so a picture
    never holds more pixels than it shows, whatever shape comes in."""
    for axis, limit in ((0, rows), (1, cols)):
        if values.shape[axis] > limit:
            values = np.take(values, np.linspace(0, values.shape[axis] - 1, limit).round().astype(int), axis=axis)
    return values


def colour_bar(svg: Svg, x: float, y: float, h: float, limit: float) -> None:
    """The diverging scale -limit (bottom) .. limit (top) as a bar of height h with round ticks."""
    svg.vertical_gradient("diverging", DIVERGING)
    svg.rect(x, y, COLOUR_BAR, h, fill="url(#diverging)", stroke="#999")
    ticks = nice_ticks(-limit, limit, 5 if h > 60 else 3)
    for value in ticks if len(ticks) >= 3 else (-limit, 0.0, limit):  # a short bar still shows its ends
        ty = y + (limit - value) / (2 * limit) * h
        svg.line(x + COLOUR_BAR, ty, x + COLOUR_BAR + 3, ty, stroke="#555")
        svg.text(x + COLOUR_BAR + 5, ty + 3.5, tick_label(value), size=9)


def gradient_tiles(student: Any, expected: Any, probe: Mapping[str, Any] | None = None) -> str | None:
    """W1 gradients (784, 32): student, finite differences, difference, each as 32 tiles of 28x28 with its own
    colour scale (a gradient 4x too large must not leave the others blank); the probe digit first, if given."""
    g, f = _array(student), _array(expected)
    if g is None or f is None or g.shape != f.shape or g.ndim != 2 or g.shape[0] != TILE * TILE:
        return None
    pixels = _array(probe.get("pixels")) if isinstance(probe, Mapping) else None
    digit = pixels.reshape(TILE, TILE) if pixels is not None and pixels.size == TILE * TILE else None
    panels = [("your gradient", g), ("finite differences", f), ("difference (yours - f.d.)", g - f)]
    mosaics = [tile_mosaic(arr) for _, arr in panels]
    w, h = mosaics[0].shape[1] * TILE_SCALE, mosaics[0].shape[0] * TILE_SCALE
    left = 8 + (DIGIT_SIZE + 28 if digit is not None else 0)
    pitch = w + 6 + COLOUR_BAR + BAR_LABELS + 14
    svg = Svg(left + 3 * pitch, 44 + h + 10, "Gradient of the loss with respect to W1, as 32 tiles of 28x28")
    if digit is not None:
        finite = digit[np.isfinite(digit)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        svg.image(8, 44, DIGIT_SIZE, DIGIT_SIZE, palette_png(upscaled(level_indices(digit, low, high), 3),
                                                             grey_palette()))
        svg.rect(8, 44, DIGIT_SIZE, DIGIT_SIZE, fill="none", stroke="#888")
        svg.text(8 + DIGIT_SIZE / 2, 23, "probe digit", size=12.5, anchor="middle")
        svg.text(8 + DIGIT_SIZE / 2, 38, f"(a {probe.get('label', '?')})", size=12.5, anchor="middle")
    for k, ((title, arr), mosaic, limit) in enumerate(zip(panels, mosaics, panel_limits(g, f), strict=True)):
        norm = float(np.linalg.norm(arr[np.isfinite(arr)]))
        heat_panel(svg, left + k * pitch, 44, (w, h), mosaic, limit, (title, f"‖·‖ = {norm:.3g}"))
    return svg.data_uri()


def gradient_heatmaps(tensors: Mapping[str, Mapping[str, Any]]) -> str | None:
    """Small tensors (b1, W2, b2, W3, b3): a row each with student, finite differences and difference, each
    panel with its own colour scale."""
    rows = []
    for name in SMALL_TENSORS:
        pair = tensors.get(name)
        if not isinstance(pair, Mapping):
            continue
        g, f = _array(pair.get("student")), _array(pair.get("expected"))
        if g is None or f is None or g.shape != f.shape or g.ndim not in (1, 2):
            continue
        if g.ndim == 1:
            g, f = g[None, :], f[None, :]
        rows.append((name, g, f))
    if not rows:
        return None
    heights = [max(36.0, min(240.0, 6.5 * g.shape[0])) for _, g, _ in rows]
    width = 290
    pitch = width + 6 + COLOUR_BAR + BAR_LABELS + 14
    svg = Svg(8 + 3 * pitch, sum(heights) + 34 * len(rows) + 4, "Gradients of the smaller tensors")
    y = 4.0
    for (name, g, f), height in zip(rows, heights, strict=True):
        y += 24
        panels = [("yours", g), ("finite differences", f), ("difference", g - f)]
        shape = f" {tuple(g.shape)}" if name.startswith("W") else ""
        for k, ((title, arr), limit) in enumerate(zip(panels, panel_limits(g, f), strict=True)):
            heat_panel(svg, 8 + k * pitch, y, (width, height), arr, limit, (f"{name}{shape}: {title}",))
        y += height + 10
    return svg.data_uri()


def training_curve(training: Mapping[str, Any]) -> str | None:
    """Test accuracy per epoch: the student's run against the reference's on the same data."""
    epochs = _array(training.get("epochs"))
    series = {k: _array(training.get(k)) for k in ("student", "reference")}
    if epochs is None or epochs.ndim != 1 or all(v is None for v in series.values()):
        return None
    as_percent = any(v is not None and bool((np.abs(v[np.isfinite(v)]) > 1.0).any()) for v in series.values())
    styles = {"student": ("you", "#c0392b", "o", ""), "reference": ("reference", "#2c3e50", "s", "6 4")}
    lines = []
    for key, values in series.items():
        if values is None:
            continue
        n = min(len(values), len(epochs))
        label, colour, shape, dash = styles[key]
        lines.append((label, colour, shape, dash, epochs[:n], values.ravel()[:n] * (1 if as_percent else 100)))
    return line_chart(lines, epochs, x_label="epoch", y_label="test accuracy (%)", y_range=(0.0, 100.0),
                      title="Test accuracy per epoch: yours and the reference's")


def _normal_pdf(x: np.ndarray, mean: float, sigma: float) -> np.ndarray:
    """Density of N(mean, sigma^2) at x."""
    return np.exp(-0.5 * ((x - mean) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def init_histograms(init: Mapping[str, Mapping[str, Any]]) -> str | None:
    """One histogram per weight matrix against the expected normal density N(mean, sigma^2)."""
    panels = []
    for name, entry in init.items():
        if not isinstance(entry, Mapping):
            continue
        values = _array(entry.get("values"))
        if values is None:
            continue
        values = values[np.isfinite(values)].ravel()
        sigma = entry.get("sigma")
        if values.size:
            panels.append((str(name), values, sigma, float(entry.get("mean", 0.0) or 0.0)))
    if not panels:
        return None
    width, height = 400, 300
    svg = Svg(width * len(panels), height, "Your initial weights against the expected normal densities")
    for k, (name, values, sigma, mean) in enumerate(panels):
        bins = int(min(50, max(10, math.sqrt(values.size))))
        curve = None
        low, high = float(values.min()), float(values.max())
        if _is_number(sigma) and sigma > 0:
            span = max(4 * sigma, float(np.abs(values - mean).max()))
            x = np.linspace(mean - span, mean + span, 300)
            curve = (x, _normal_pdf(x, mean, sigma), f"expected N(0, {sigma:.3g}²)")
            low, high = min(low, mean - span), max(high, mean + span)
        counts, edges = np.histogram(values, bins=bins, density=True)
        expected = f" (expected {sigma:.3g})" if _is_number(sigma) else ""
        histogram_panel(svg, (k * width, 0, width, height), counts, edges, x_range=(low, high), curve=curve,
                        title=f"{name}: your std {values.std():.3g}{expected}", density=True)
    return svg.data_uri()


def score_histogram(totals: Sequence[float], max_score: float) -> str | None:
    """The class's total scores as a histogram over 0..max_score."""
    values = _array(list(totals))
    if values is None:
        return None
    values = values[np.isfinite(values)].ravel()
    if not values.size:
        return None
    top = max_score if max_score and max_score > 0 else max(1.0, float(values.max()))
    counts, edges = np.histogram(values, bins=min(20, max(5, int(top))), range=(0, top))
    svg = Svg(600, 300, "Histogram of the class's total scores")
    histogram_panel(svg, (0, 0, 600, 300), counts, edges, x_range=(0.0, float(top)), curve=None, title="",
                    density=False, x_label=f"total score (out of {top:g})", y_label="submissions")
    return svg.data_uri()


def submission_figures(figures: Mapping[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """All pictures for one report, by group ("init", "gradients", "training"): [(caption, data URI)]."""
    out: dict[str, list[tuple[str, str]]] = {}

    def add(group: str, caption: str, uri: str | None) -> None:
        if uri:
            out.setdefault(group, []).append((caption, uri))

    grads = figures.get("gradients")
    if isinstance(grads, Mapping):
        w1, probe = grads.get("W1"), grads.get("probe")
        digit = f" at probe digit {probe['label']} (the digit Q3's W1 check names)" if isinstance(
            probe, Mapping) and "label" in probe else ""
        if isinstance(w1, Mapping):
            add(
                "gradients",
                f"dL/dW1{digit}, one 28x28 tile per hidden unit: yours, by finite differences, and the "
                "difference. Each panel has its own colour scale (its colour bar; white is zero; the "
                "difference's at least as wide as the finite differences'), so a gradient several times too "
                "large does not leave the others blank: compare the patterns, and the norms for size.",
                _safely(gradient_tiles, w1.get("student"), w1.get("expected"), probe),
            )
        add(
            "gradients",
            f"The smaller gradients{digit} side by side: yours, by finite differences, and the difference, "
            "each panel on its own colour scale (the difference's at least as wide as the finite differences').",
            _safely(gradient_heatmaps, grads),
        )
    training = figures.get("training")
    if isinstance(training, Mapping):
        add("training", "Test accuracy after each epoch: your training against the reference's.",
            _safely(training_curve, training))
    init = figures.get("init")
    if isinstance(init, Mapping):
        add("init", "Your initial weights against the normal density the handout asks for.",
            _safely(init_histograms, init))
    return out


def _safely(fn, *args) -> str | None:
    """A picture, or None when its data has an unexpected shape, type or size (the report goes on without it)."""
    try:
        with np.errstate(all="ignore"):  # overflowing data draws what it can, silently
            return fn(*args)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, ArithmeticError):
        return None
