"""A small SVG builder for the reports' pictures: every text escaped, embedded PNGs, one data URI per picture.

A picture is an SVG document shown through ``<img src="data:image/svg+xml;base64,...">``: a browser runs no
script and loads nothing external from an image, and every text (titles, labels, names that came with the
results) goes through ``escape`` here as well, so no text can become markup.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence

from grader.report.png import data_uri

FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
INK = "#1f2328"
GRID = "#e3e3e3"


def escape(text: object) -> str:
    """Text safe inside an SVG element or a quoted attribute."""
    return html.escape(str(text), quote=True)


def tick_label(value: float) -> str:
    """A short axis label: 3 significant digits, no '-0'."""
    text = f"{value:.3g}"
    return "0" if text in ("-0", "0", "-0.0") else text


def nice_ticks(low: float, high: float, count: int = 5, *, integer: bool = False) -> list[float]:
    """About `count` round values (1, 2 or 5 times a power of ten apart) within [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low] if math.isfinite(low) else []
    raw = (high - low) / max(1, count - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw * 0.999)
    if integer:
        step = max(1.0, round(step))
    first = math.ceil(low / step - 1e-9)
    ticks = [k * step for k in range(first, math.floor(high / step + 1e-9) + 1)]
    return [0.0 if abs(t) < step * 1e-9 else t for t in ticks]


class Svg:
    """An SVG document built element by element (coordinates in CSS pixels at its natural size)."""

    def __init__(self, width: float, height: float, title: str) -> None:
        self.width, self.height = math.ceil(width), math.ceil(height)
        self.parts: list[str] = [f"<title>{escape(title)}</title>",
                                 f'<rect width="{self.width}" height="{self.height}" fill="#fff"/>']
        self.defs: dict[str, str] = {}  # id -> definition

    def text(self, x: float, y: float, content: object, *, size: float = 12, anchor: str = "start",
             weight: str = "normal", rotate: bool = False, fill: str = INK) -> None:
        """A line of text with its baseline at y; rotate=True turns it to read upwards (a y-axis label)."""
        turn = f' transform="rotate(-90 {x:.1f} {y:.1f})"' if rotate else ""
        bold = ' font-weight="bold"' if weight != "normal" else ""
        self.parts.append(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size:g}" text-anchor="{anchor}"'
                          f' fill="{fill}"{bold}{turn}>{escape(content)}</text>')

    def line(self, x1: float, y1: float, x2: float, y2: float, *, stroke: str = INK, width: float = 1,
             dash: str = "") -> None:
        """A straight line."""
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}"'
                          f' stroke-width="{width:g}"{dashes}/>')

    def rect(self, x: float, y: float, w: float, h: float, *, fill: str, stroke: str = "none",
             extra: str = "") -> None:
        """A rectangle (a histogram bar, a frame, a legend swatch)."""
        self.parts.append(f'<rect x="{x:.2f}" y="{y:.2f}" width="{max(w, 0):.2f}" height="{max(h, 0):.2f}"'
                          f' fill="{fill}" stroke="{stroke}"{extra}/>')

    def polyline(self, points: Iterable[tuple[float, float]], *, stroke: str, width: float = 1.5,
                 dash: str = "", clip: str = "") -> None:
        """A connected line through points (no fill)."""
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        clipping = f' clip-path="url(#{clip})"' if clip else ""
        self.parts.append(f'<polyline points="{coords}" fill="none" stroke="{stroke}" stroke-width="{width:g}"'
                          f'{dashes}{clipping}/>')

    def marker(self, x: float, y: float, shape: str, colour: str, size: float = 4.5) -> None:
        """A data point: a circle ("o") or a square ("s")."""
        if shape == "s":
            self.rect(x - size, y - size, 2 * size, 2 * size, fill=colour)
        else:
            self.parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{size:g}" fill="{colour}"/>')

    def image(self, x: float, y: float, w: float, h: float, png: bytes) -> None:
        """An embedded PNG stretched to w x h, drawn pixel by pixel (no smoothing between array entries)."""
        self.parts.append(f'<image x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}"'
                          f' preserveAspectRatio="none" image-rendering="pixelated" style="image-rendering:pixelated"'
                          f' href="{data_uri("image/png", png)}"/>')

    def vertical_gradient(self, ident: str, colours: Sequence[str]) -> None:
        """A gradient `ident` from colours[0] at the bottom to colours[-1] at the top, evenly spaced (defined once)."""
        n = len(colours) - 1
        stops = "".join(f'<stop offset="{k / n:.4f}" stop-color="{c}"/>' for k, c in enumerate(colours))
        self.defs[ident] = f'<linearGradient id="{ident}" x1="0" y1="1" x2="0" y2="0">{stops}</linearGradient>'

    def clip_rect(self, ident: str, x: float, y: float, w: float, h: float) -> None:
        """A clipping rectangle `ident` (lines stay inside their plot area)."""
        self.defs[ident] = (f'<clipPath id="{ident}"><rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}"'
                            f' height="{h:.1f}"/></clipPath>')

    def document(self) -> str:
        """The SVG text."""
        defs = f"<defs>{''.join(self.defs.values())}</defs>" if self.defs else ""
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" height="{self.height}"'
                f' viewBox="0 0 {self.width} {self.height}" font-family="{FONT}">'
                + defs + "".join(self.parts) + "</svg>")

    def data_uri(self) -> str:
        """The document as an image/svg+xml data URI."""
        return data_uri("image/svg+xml", self.document().encode("utf-8"))
