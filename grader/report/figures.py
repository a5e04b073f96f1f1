"""Pictures for the reports: matplotlib (Agg, no pyplot state) rendered to embedded PNG data URIs.

Every function takes plain numbers (lists or arrays) and returns a ``data:image/png;base64,...`` string,
or None when its data is absent or malformed: a missing picture never stops a report.

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

import base64
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

SMALL_TENSORS = ("b1", "W2", "b2", "W3", "b3")
TILE = 28
DPI = 100


def to_data_uri(fig: Figure) -> str:
    """PNG bytes of a figure as a data URI (no timestamp or version metadata, so output is reproducible)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


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


def gradient_tiles(student: Any, expected: Any, probe: Mapping[str, Any] | None = None) -> str | None:
    """W1 gradients (784, 32): student, finite differences, difference, each as 32 tiles of 28x28 with its own
    colour scale (a gradient 4x too large must not leave the others blank); the probe digit first, if given."""
    g, f = _array(student), _array(expected)
    if g is None or f is None or g.shape != f.shape or g.ndim != 2 or g.shape[0] != TILE * TILE:
        return None
    pixels = _array(probe.get("pixels")) if isinstance(probe, Mapping) else None
    digit = pixels.reshape(TILE, TILE) if pixels is not None and pixels.size == TILE * TILE else None
    panels = [("your gradient", g), ("finite differences", f), ("difference (yours - f.d.)", g - f)]
    widths = ([0.55] if digit is not None else []) + [2.0] * 3
    fig = Figure(figsize=(13 if digit is not None else 12, 2.8), layout="constrained")
    axes = list(fig.subplots(1, len(widths), gridspec_kw={"width_ratios": widths}))
    if digit is not None:
        ax = axes.pop(0)
        ax.imshow(digit, cmap="gray_r", interpolation="nearest")
        ax.set_title(f"probe digit\n(a {probe.get('label', '?')})", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax, (title, arr), limit in zip(axes, panels, panel_limits(g, f), strict=True):
        image = ax.imshow(tile_mosaic(arr), cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
        norm = float(np.linalg.norm(arr[np.isfinite(arr)]))
        ax.set_title(f"{title}\n‖·‖ = {norm:.3g}", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        bar = fig.colorbar(image, ax=ax, shrink=0.8, pad=0.01)
        bar.ax.tick_params(labelsize=7)
    return to_data_uri(fig)


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
    heights = [max(0.5, min(3.0, 0.08 * g.shape[0])) for _, g, _ in rows]
    fig = Figure(figsize=(12, sum(heights) + 0.55 * len(rows) + 0.2))
    grid = fig.subplots(
        len(rows), 3, squeeze=False,
        gridspec_kw={"height_ratios": heights, "left": 0.02, "right": 0.95, "top": 0.96, "bottom": 0.02,
                     "hspace": 0.55, "wspace": 0.12},
    )
    for (name, g, f), axes in zip(rows, grid, strict=True):
        panels = [("yours", g), ("finite differences", f), ("difference", g - f)]
        for ax, (title, arr), limit in zip(axes, panels, panel_limits(g, f), strict=True):
            image = ax.imshow(
                arr, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto", interpolation="none"
            )
            shape = f" {tuple(arr.shape)}" if name.startswith("W") else ""
            ax.set_title(f"{name}{shape}: {title}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            bar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.01)
            bar.ax.tick_params(labelsize=6)
    return to_data_uri(fig)


def training_curve(training: Mapping[str, Any]) -> str | None:
    """Test accuracy per epoch: the student's run against the reference's on the same data."""
    epochs = _array(training.get("epochs"))
    series = {k: _array(training.get(k)) for k in ("student", "reference")}
    if epochs is None or all(v is None for v in series.values()):
        return None
    as_percent = any(v is not None and np.nanmax(np.abs(v)) > 1.0 for v in series.values())
    fig = Figure(figsize=(6, 3.4), layout="constrained")
    ax = fig.subplots()
    styles = {"student": ("you", "#c0392b", "o-"), "reference": ("reference", "#2c3e50", "s--")}
    for key, values in series.items():
        if values is None:
            continue
        n = min(len(values), len(epochs))
        label, colour, style = styles[key]
        ax.plot(epochs[:n], values[:n] * (1 if as_percent else 100), style, color=colour, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_xticks(epochs)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return to_data_uri(fig)


def _normal_pdf(x: np.ndarray, mean: float, sigma: float) -> np.ndarray:
    """Density of N(mean, sigma^2) at x."""
    return np.exp(-0.5 * ((x - mean) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))


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
    fig = Figure(figsize=(4 * len(panels), 3.2), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, values, sigma, mean) in zip(axes, panels, strict=True):
        bins = int(min(50, max(10, math.sqrt(values.size))))
        ax.hist(values, bins=bins, density=True, color="#95a5a6", label="yours")
        if isinstance(sigma, (int, float)) and sigma > 0:
            span = max(4 * sigma, float(np.abs(values - mean).max()))
            x = np.linspace(mean - span, mean + span, 300)
            ax.plot(x, _normal_pdf(x, mean, sigma), color="#2c3e50", label=f"expected N(0, {sigma:.3g}²)")
        expected = f" (expected {sigma:.3g})" if isinstance(sigma, (int, float)) else ""
        ax.set_title(f"{name}: your std {values.std():.3g}{expected}", fontsize=10)
        ax.set_yticks([])
        ax.tick_params(labelsize=8)
        ax.legend(fontsize=8)
    return to_data_uri(fig)


def score_histogram(totals: Sequence[float], max_score: float) -> str | None:
    """The class's total scores as a histogram over 0..max_score."""
    values = _array(list(totals))
    if values is None:
        return None
    top = max_score if max_score and max_score > 0 else max(1.0, float(np.nanmax(values)))
    fig = Figure(figsize=(6, 3), layout="constrained")
    ax = fig.subplots()
    ax.hist(values, bins=min(20, max(5, int(top))), range=(0, top), color="#2c3e50", edgecolor="white")
    ax.set_xlabel(f"total score (out of {top:g})")
    ax.set_ylabel("submissions")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(axis="y", alpha=0.3)
    return to_data_uri(fig)


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
    """A picture, or None when its data has an unexpected shape or type (the report goes on without it)."""
    try:
        return fn(*args)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError):
        return None
