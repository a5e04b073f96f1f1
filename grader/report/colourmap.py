"""Colour maps for arrays as palette images: a diverging blue-white-red scale and a white-to-black one.

The diverging map is ColorBrewer's RdBu reversed (matplotlib's "RdBu_r"): negative blue, zero near-white,
positive red, linear between its 11 colours. Index NAN_INDEX of each palette is kept for missing values.
"""

from __future__ import annotations

import numpy as np

# ColorBrewer RdBu (11 classes), reversed: from the most negative to the most positive value.
DIVERGING = ("#053061", "#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7",
             "#fddbc7", "#f4a582", "#d6604d", "#b2182b", "#67001f")
LEVELS = 255  # colour levels 0..254; odd, so the middle level is exactly zero's colour
NAN_INDEX = 255
MISSING = (0xE8, 0xE8, 0xE8)  # gutters between tiles and non-finite entries: light grey, not a value colour


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def _interpolated(colours: tuple[str, ...]) -> np.ndarray:
    """(LEVELS, 3) uint8: the colours spread evenly over the levels, linear in between."""
    anchors = np.array([_rgb(c) for c in colours], dtype=np.float64)
    at = np.linspace(0.0, 1.0, len(colours))
    t = np.linspace(0.0, 1.0, LEVELS)
    return np.stack([np.interp(t, at, anchors[:, k]) for k in range(3)], axis=1).round().astype(np.uint8)


def diverging_palette() -> np.ndarray:
    """(256, 3) uint8: LEVELS diverging colours, then the colour of missing values."""
    return np.vstack([_interpolated(DIVERGING), np.array([MISSING], dtype=np.uint8)])


def grey_palette() -> np.ndarray:
    """(256, 3) uint8: LEVELS greys from white (lowest) to black (highest), then the colour of missing values."""
    return np.vstack([_interpolated(("#ffffff", "#000000")), np.array([MISSING], dtype=np.uint8)])


def level_indices(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """(h, w) floats -> (h, w) uint8 palette indices: low..high onto 0..LEVELS-1 (clipped), NaN/inf -> NAN_INDEX."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    span = high - low if high > low else 1.0
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = np.where(finite, (values - low) / span, 0.0) * (LEVELS - 1)
    levels = np.clip(np.rint(scaled), 0, LEVELS - 1).astype(np.uint8)
    return np.where(finite, levels, NAN_INDEX).astype(np.uint8)
