"""Writing a submission's outputs and the class's: each set of files whole or not at all.

File names: a submission's outputs are <name>.json (SubmissionResult.to_dict() plus `extra`), <name>.html and
<name>.results.json (Gradescope); <name> comes from grader.report.names (one mapping for every caller). A set is
written by writing and fsyncing every file under a temporary name first and only then renaming them into place
(the JSON last), so a full disk or a read-only folder leaves the earlier set as it was. A grader failure never
replaces a good earlier report (`write_or_keep`).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from grader.report.common import as_dict, jsonable
from grader.report.gradescope import results_json
from grader.report.html import render_index, render_report
from grader.report.names import report_name, report_names, safe_name
from grader.report.tables import grades_csv

OUTPUT_SUFFIXES = {"json": ".json", "html": ".html", "results": ".results.json"}


def _written_temp(path: Path, text: str) -> str:
    """text in a fsynced temporary file beside path (removed again if anything fails); its name. A lone surrogate
    (a file name that is not UTF-8, a string a child sent) is written as its escape (\\udcff): it cannot be
    UTF-8, and a report set must never fail on what a submission chose."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def write_files(texts: Mapping[Path, str]) -> None:
    """Write several files as a set: all written and fsynced under temporary names before any is renamed."""
    temps: dict[Path, str] = {}
    try:
        for path, text in texts.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            temps[path] = _written_temp(path, text)
        for path, tmp in temps.items():
            os.replace(tmp, path)
    except BaseException:
        for tmp in temps.values():
            Path(tmp).unlink(missing_ok=True)
        raise
    for folder in {p.parent for p in texts}:
        _fsync_folder(folder)


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse to fsync a folder; the files themselves are on disk
    finally:
        os.close(fd)


def atomic_write(path: Path, text: str) -> None:
    """Write text to path so that path holds either its old content or all of the new, never a part."""
    write_files({Path(path): text})


def dumps(value: Any) -> str:
    """Strict JSON (no NaN), indented, UTF-8 kept readable."""
    return json.dumps(jsonable(value), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def is_grader_failure(data: Mapping[str, Any]) -> bool:
    """True when the grader itself failed on this result (a dead worker, a bug in a question's checks)."""
    if data.get("grader_failed"):
        return True
    return any(str(c.get("id", "")).endswith(".grader") for q in data.get("questions") or []
               for c in q.get("checks") or [])


def complete_report(out_dir: str | os.PathLike[str], name: str) -> dict[str, Any] | None:
    """The JSON of <name>'s report set in out_dir when all three files are there and the JSON reads, else None."""
    out = Path(out_dir)
    if not all((out / f"{name}{suffix}").is_file() for suffix in OUTPUT_SUFFIXES.values()):
        return None
    try:
        data = json.loads((out / f"{name}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_outputs(
    result: Any,
    out_dir: str | os.PathLike[str],
    *,
    staff: bool = True,
    name: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Write <name>.json, <name>.html and <name>.results.json as a set; returns {"json", "html", "results"} -> path.

    `name` comes from `report_names` in a batch (without it, the submission's name in out_dir); `extra` adds
    keys to the JSON (e.g. a batch's cache_key).
    """
    out = Path(out_dir)
    data = as_dict(result)
    raw = result.to_dict() if hasattr(result, "to_dict") else dict(result)
    name = safe_name(name) if name else report_name(data.get("path") or data.get("submission") or "submission", out)
    paths = {kind: out / f"{name}{suffix}" for kind, suffix in OUTPUT_SUFFIXES.items()}
    # The figures' raw arrays (a 784x32 gradient or two) are for the HTML only: they would make the JSON large.
    summary = {k: v for k, v in raw.items() if k != "figures"}
    # Rendered before anything is written; the JSON is renamed into place last ("this one is done").
    write_files({paths["html"]: render_report({**data, **(extra or {})}, staff=staff),
                 paths["results"]: dumps(results_json(data)),
                 paths["json"]: dumps({**summary, **(extra or {})})})
    return paths


def write_or_keep(
    result: Any,
    out_dir: str | os.PathLike[str],
    *,
    name: str,
    staff: bool = True,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Path] | None:
    """write_outputs, unless this result is a grader failure and out_dir holds a good earlier report: then
    nothing is written and None is returned (the earlier report stands)."""
    if is_grader_failure(as_dict(result)):
        earlier = complete_report(out_dir, name)
        if earlier is not None and not is_grader_failure(earlier):
            return None
    return write_outputs(result, out_dir, staff=staff, name=name, extra=extra)


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
    names = dict(names) if names else report_names((d["path"] or d["submission"] for d in data), out)
    links = {}
    for d in data:
        key = d["path"] or d["submission"]
        links[key] = f"{names.get(key) or report_name(key, out)}.html"
    paths = {"index": out / "index.html", "csv": out / "grades.csv"}
    write_files({paths["index"]: render_index(data, links=links, title=title), paths["csv"]: grades_csv(data)})
    return paths
