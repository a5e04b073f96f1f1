"""Writing a submission's outputs and the class's, atomically: temp file + os.replace, never half a file.

File names: a submission's outputs are <name>.json (SubmissionResult.to_dict() plus `extra`), <name>.html and
<name>.results.json (Gradescope). <name> is the submission file's stem made filesystem-safe; when two
submissions in one batch share a stem (a/kv2154.py and b/kv2154.py), every one of them gets
"<stem>-<first 6 hex of sha256(absolute path)>" instead, so names do not depend on the order of grading.
`report_names(paths)` computes these for a batch; `write_outputs` without a name also refuses to overwrite
another path's <stem>.json and falls back to the hashed name.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from grader.report.common import as_dict, jsonable
from grader.report.gradescope import results_json
from grader.report.html import render_index, render_report
from grader.report.tables import grades_csv

OUTPUT_SUFFIXES = {"json": ".json", "html": ".html", "results": ".results.json"}


def safe_stem(name: str) -> str:
    """A file-name-safe stem: letters, digits, '.', '_' and '-' kept, anything else becomes '_'."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", name).strip(".") or "submission"
    return stem[:120]


def path_hash(path: str | os.PathLike[str]) -> str:
    """Six hex digits identifying a submission's absolute path."""
    return hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:6]


def report_names(paths: Iterable[str | os.PathLike[str]]) -> dict[str, str]:
    """Output names for a batch, keyed by str(path): the safe stem, plus '-<hash>' when stems collide."""
    paths = [str(p) for p in paths]
    stems = {p: safe_stem(Path(p).stem) for p in paths}
    counts: dict[str, int] = {}
    for s in stems.values():
        counts[s] = counts.get(s, 0) + 1
    return {p: s if counts[s] == 1 else f"{s}-{path_hash(p)}" for p, s in stems.items()}


def atomic_write(path: Path, text: str) -> None:
    """Write text to path so that path holds either its old content or all of the new, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def dumps(value: Any) -> str:
    """Strict JSON (no NaN), indented, UTF-8 kept readable."""
    return json.dumps(jsonable(value), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def output_name(data: Mapping[str, Any], out_dir: Path) -> str:
    """The stem of the submission, or stem-<hash> when out_dir already holds that stem for another path."""
    path = data.get("path") or ""
    stem = safe_stem(Path(path).stem if path else data.get("submission") or "submission")
    try:
        previous = json.loads((out_dir / f"{stem}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return stem
    if not path or previous.get("path") in (None, "", path):
        return stem
    return f"{stem}-{path_hash(path)}"


def write_outputs(
    result: Any,
    out_dir: str | os.PathLike[str],
    *,
    staff: bool = True,
    name: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Write <name>.json, <name>.html and <name>.results.json; returns {"json", "html", "results"} -> path.

    `name` comes from `report_names` in a batch; `extra` adds keys to the JSON (e.g. a batch's cache_key).
    """
    out = Path(out_dir)
    data = as_dict(result)
    raw = result.to_dict() if hasattr(result, "to_dict") else dict(result)
    name = safe_stem(name) if name else output_name(data, out)
    paths = {kind: out / f"{name}{suffix}" for kind, suffix in OUTPUT_SUFFIXES.items()}
    # The HTML and Gradescope files first, the JSON last: a batch treats <name>.json as "this one is done".
    atomic_write(paths["html"], render_report({**data, **(extra or {})}, staff=staff))
    atomic_write(paths["results"], dumps(results_json(data)))
    # The figures' raw arrays (a 784x32 gradient or two) are for the HTML only: they would make the JSON large.
    summary = {k: v for k, v in raw.items() if k != "figures"}
    atomic_write(paths["json"], dumps({**summary, **(extra or {})}))
    return paths


def write_class_outputs(
    results: Iterable[Any],
    out_dir: str | os.PathLike[str],
    *,
    names: Mapping[str, str] | None = None,
    title: str = "Grading summary",
) -> dict[str, Path]:
    """Write index.html (linking each <name>.html) and grades.csv; `names` maps a path to its output name."""
    out = Path(out_dir)
    data = [as_dict(r) for r in results]
    names = dict(names) if names else report_names(d["path"] or d["submission"] for d in data)
    links = {}
    for d in data:
        key = d["path"] or d["submission"]
        links[key] = f"{names.get(key, safe_stem(d['submission']))}.html"
    paths = {"index": out / "index.html", "csv": out / "grades.csv"}
    atomic_write(paths["index"], render_index(data, links=links, title=title))
    atomic_write(paths["csv"], grades_csv(data))
    return paths
