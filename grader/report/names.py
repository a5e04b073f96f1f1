"""The one mapping from a submission's path to its report name, used by the batch, the writer, the index,
the CSV, Gradescope's results and the up-to-date check.

A name is safe in any file system and shell (ASCII letters, digits, '_' and '-', no leading '-', no '.', so
`x.results.py` cannot write over `x`'s Gradescope file) and unique without regard to case. A path keeps the
name its report already has in the output folder (each report's JSON records its path), so names are stable
across runs; a new path takes the first free name of: its stem, `<folder>-<stem>`, `<stem>-<hash of the path>`.
Within one run a candidate that two new paths share goes to neither (unless exactly one of them has that very
stem: `innocent_b.py` keeps `innocent_b` beside `innocent~b.py`), so names do not depend on their order.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

RESERVED = {"index", "grades"}  # index.html and grades.csv are the class's
MAX_LENGTH = 100


def safe_name(text: str) -> str:
    """A file-name-safe, shell-safe name for text ('jane doe' -> 'jane_doe', 'José' -> 'Jose')."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", ascii_text).lstrip("-_").rstrip("_")
    return name[:MAX_LENGTH].rstrip("-_") or "submission"


def path_hash(path: str | os.PathLike[str], digits: int = 8) -> str:
    """Hex digits identifying a submission's absolute path."""
    return hashlib.sha256(str(Path(path).absolute()).encode()).hexdigest()[:digits]


def recorded_names(out_dir: str | os.PathLike[str] | None) -> dict[str, str]:
    """{report name: submission path} for every report JSON in out_dir that records its path."""
    if out_dir is None or not Path(out_dir).is_dir():
        return {}
    recorded = {}
    for report in sorted(Path(out_dir).glob("*.json")):
        if report.name.endswith(".results.json"):
            continue
        try:
            path = json.loads(report.read_text(encoding="utf-8")).get("path")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(path, str) and path:
            recorded[report.stem] = path
    return recorded


def _candidates(path: str) -> list[Callable[[], str]]:
    p = Path(path)
    stem = safe_name(p.stem)
    folder = safe_name(p.parent.name) if p.parent.name else ""
    tiers = [lambda: stem]
    if folder and folder != "submission":
        tiers.append(lambda: f"{folder}-{stem}"[:MAX_LENGTH])
    tiers += [lambda d=d: f"{stem[:MAX_LENGTH - d - 1]}-{path_hash(path, d)}" for d in (8, 16, 64)]
    return tiers


def report_names(paths: Iterable[str | os.PathLike[str]],
                 out_dir: str | os.PathLike[str] | None = None,
                 recorded: Mapping[str, str] | None = None) -> dict[str, str]:
    """Report names keyed by str(path): distinct (case-insensitively), safe, and stable across runs into out_dir.

    `recorded` ({name: path}, default: read from out_dir) says which names existing reports already hold.
    """
    paths = list(dict.fromkeys(str(p) for p in paths))
    recorded = dict(recorded_names(out_dir) if recorded is None else recorded)
    names: dict[str, str] = {}
    for name, owner in sorted(recorded.items(), key=lambda kv: (len(kv[0]), kv[0])):
        if owner in paths and owner not in names and safe_name(name) == name:
            names[owner] = name
    taken = {name.casefold() for name in recorded} | {n.casefold() for n in names.values()} | RESERVED
    new = [p for p in paths if p not in names]
    tiers = {p: _candidates(p) for p in new}
    for tier in range(max((len(t) for t in tiers.values()), default=0)):
        wanted = {p: tiers[p][min(tier, len(tiers[p]) - 1)]() for p in new}
        counts: dict[str, int] = {}
        for name in wanted.values():
            counts[name.casefold()] = counts.get(name.casefold(), 0) + 1
        exact: dict[str, int] = {}  # a stem that is already safe has the first claim on its own name
        for p in new:
            if tier == 0 and wanted[p] == Path(p).stem:
                exact[wanted[p].casefold()] = exact.get(wanted[p].casefold(), 0) + 1
        for p in new:
            key = wanted[p].casefold()
            sole = counts[key] == 1 or (exact.get(key) == 1 and wanted[p] == Path(p).stem and tier == 0)
            if sole and key not in taken:
                names[p] = wanted[p]
                taken.add(key)
        new = [p for p in new if p not in names]
    for p in new:  # two paths with the same sha256: never in practice, but never the same name either
        i = 2
        while f"{path_hash(p, 64)}-{i}".casefold() in taken:
            i += 1
        names[p] = f"{path_hash(p, 64)}-{i}"
        taken.add(names[p].casefold())
    return {p: names[p] for p in paths}


def report_name(path: str | os.PathLike[str], out_dir: str | os.PathLike[str] | None = None) -> str:
    """The report name of one submission written into out_dir (its existing name there, or a free one)."""
    return report_names([path], out_dir)[str(path)]
