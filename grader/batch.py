"""Grading many submissions: discovery, caching, parallel execution, progress, class outputs."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUFFIXES = (".py", ".ipynb")


@dataclass(frozen=True)
class Job:
    """One submission to grade and where its outputs go (`stem` is unique within the batch)."""

    path: Path
    stem: str
    cache_key: str


SKIPPED_FOLDERS = {"__pycache__", ".ipynb_checkpoints", "__MACOSX"}


def discover(paths: Iterable[str | Path]) -> list[Path]:
    """Every .py/.ipynb named, or inside a named folder and its subfolders (one per student, say), sorted.

    Hidden files and folders, notebook checkpoints and __pycache__ are skipped; a missing path raises.
    """
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            # Inside a folder, links are skipped: a link could hand in someone else's file (or /etc/shadow).
            found.extend(sorted(f for f in p.rglob("*") if f.suffix in SUFFIXES and f.is_file()
                                and not f.is_symlink() and not _skipped(f.relative_to(p))))
        elif p.is_file():
            found.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    # Absolute, not resolved: a submission keeps its own name even when named through a link.
    return list(dict.fromkeys(f.absolute() for f in found))


def _skipped(relative: Path) -> bool:
    return any(part.startswith(".") or part in SKIPPED_FOLDERS for part in relative.parts)


def unique_stems(paths: list[Path]) -> dict[Path, str]:
    """Report names: the file stem; where stems collide, the folder's name too (`kv2154-hw1` for
    kv2154/hw1.ipynb), and a short hash of the full path if that still collides."""
    names = {p: p.stem for p in paths}
    names = {p: n if _count(names, n) == 1 else f"{p.parent.name}-{p.stem}" for p, n in names.items()}
    return {p: n if _count(names, n) == 1 else f"{n}-{hashlib.sha256(str(p).encode()).hexdigest()[:6]}"
            for p, n in names.items()}


def _count(names: dict[Path, str], name: str) -> int:
    return sum(1 for n in names.values() if n == name)


def cache_key(path: Path, rubric_sha256: str, grader_version: str, options: dict[str, Any]) -> str:
    """Changes when the submission, the rubric, the grader or the grading options change."""
    h = hashlib.sha256(path.read_bytes())
    h.update(rubric_sha256.encode())
    h.update(grader_version.encode())
    h.update(json.dumps(options, sort_keys=True).encode())
    return h.hexdigest()


def is_up_to_date(out_dir: Path, job: Job) -> bool:
    """True when out_dir holds a complete result for this exact submission, rubric and grader."""
    try:
        previous = json.loads((out_dir / f"{job.stem}.json").read_text())
    except (OSError, ValueError):
        return False
    return previous.get("cache_key") == job.cache_key and (out_dir / f"{job.stem}.html").exists()


def run_parallel(
    fn: Callable[[Job], dict[str, Any]],
    jobs: list[Job],
    workers: int,
    on_done: Callable[[Job, dict[str, Any]], None],
    on_start: Callable[[Job], None] | None = None,
) -> None:
    """fn(job) for every job in a process pool; a job that raises becomes an error result, not a stop."""
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            if on_start:
                on_start(job)
            on_done(job, _call_safely(fn, job))
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending = {}
        queue: Iterator[Job] = iter(jobs)
        for job in _take(queue, workers * 2):
            pending[pool.submit(_call_safely, fn, job)] = job
            if on_start:
                on_start(job)
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                job = pending.pop(fut)
                try:
                    result = fut.result()
                except Exception as exc:  # the worker process itself died
                    result = grader_failure(job, f"the grading worker died: {exc!r}")
                on_done(job, result)
                for nxt in _take(queue, 1):
                    pending[pool.submit(_call_safely, fn, nxt)] = nxt
                    if on_start:
                        on_start(nxt)


def _take(it: Iterator[Job], n: int) -> list[Job]:
    out = []
    for _ in range(n):
        try:
            out.append(next(it))
        except StopIteration:
            break
    return out


def _call_safely(fn: Callable[[Job], dict[str, Any]], job: Job) -> dict[str, Any]:
    try:
        return fn(job)
    except Exception as exc:
        import traceback

        return grader_failure(job, f"the grader failed on this submission: {exc!r}", traceback.format_exc())


def grader_failure(job: Job, message: str, tb: str | None = None) -> dict[str, Any]:
    """A result dict for a submission the grader itself could not grade (not the student's fault)."""
    return {
        "submission": job.stem,
        "path": str(job.path),
        "score": 0.0,
        "max_score": 0.0,
        "questions": [],
        "errors": [{"kind": "grader", "where": "grader", "message": message, "traceback": tb}],
        "grader_failed": True,
        "cache_key": None,
    }


class Progress:
    """A tqdm bar over submissions: current name, elapsed time and an estimate of what is left."""

    def __init__(self, total: int, enabled: bool = True):
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="sub", disable=not enabled or total <= 1, dynamic_ncols=True)
        self.started = time.monotonic()

    def start(self, job: Job) -> None:
        self.bar.set_postfix_str(job.stem, refresh=True)

    def done(self, job: Job, result: dict[str, Any]) -> None:
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
