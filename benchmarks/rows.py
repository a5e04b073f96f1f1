"""One benchmark figure as a row, the machine it was measured on, and the printed table."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Row:
    """One measured figure against its baseline; `met` is None when there is no goal or no measurement."""

    section: str
    what: str
    measured: str
    baseline: str = "-"
    speedup: float | None = None
    goal: str = "-"
    met: bool | None = None
    values: dict[str, Any] = field(default_factory=dict)  # the raw numbers behind the strings, for JSON

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Section:
    """The rows of one benchmark section, plus notes (what was measured, and how) or why it did not run."""

    name: str
    rows: tuple[Row, ...]
    notes: tuple[str, ...] = ()
    available: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "available": self.available, "notes": list(self.notes),
                "rows": [r.to_dict() for r in self.rows]}


def unavailable(name: str, what: str, reason: str, notes: tuple[str, ...] = ()) -> Section:
    """A section that could not be measured: one row saying why."""
    row = Row(name, what, f"not available: {reason}")
    return Section(name, (row,), notes, available=False)


def goal_met(speedup: float | None, goal: float) -> bool | None:
    """speed-up >= goal, or None when there is no speed-up to judge."""
    return None if speedup is None else bool(speedup >= goal)


def machine() -> dict[str, Any]:
    """Where and under what load the figures were taken (load averages over 1, 5 and 15 minutes)."""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
    }


def format_speedup(speedup: float | None) -> str:
    """'123x', '1.4x' or '-'."""
    if speedup is None:
        return "-"
    return f"{speedup:.0f}x" if speedup >= 10 else f"{speedup:.2f}x"


def format_met(met: bool | None) -> str:
    return "-" if met is None else ("yes" if met else "no")


def format_table(sections: list[Section]) -> str:
    """A markdown table of every row, followed by each section's notes."""
    header = ("what", "measured", "baseline", "speed-up", "goal", "met")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for section in sections:
        for r in section.rows:
            cells = (r.what, r.measured, r.baseline, format_speedup(r.speedup), r.goal, format_met(r.met))
            lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    notes = [f"- {s.name}: {note}" for s in sections for note in s.notes]
    return "\n".join(lines + ([""] + notes if notes else []))


def format_seconds(seconds: float) -> str:
    """A duration with a unit that keeps 3 significant figures: '412 us', '3.21 ms', '5.40 s'."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.3g} us"
    if seconds < 1.0:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


def shown(path: Path) -> str:
    """A path as the README would write it: relative to the repository when inside it."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)
