"""Grading many submissions: discovery, caching, parallel execution, progress, class outputs."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUFFIXES = (".py", ".ipynb")


@dataclass(frozen=True)
class Job:
    """One submission to grade and where its outputs go (`name`: its report name, see grader.report.names)."""

    path: Path
    name: str
    cache_key: str


@dataclass(frozen=True)
class Found:
    """What a search for submissions found: the submissions, and the files beside them that are not ones."""

    submissions: list[Path]
    skipped: list[Path]


class NotASubmission(ValueError):
    """A file named on the command line that grade cannot read as a submission."""


SKIPPED_FOLDERS = {"__pycache__", ".ipynb_checkpoints", "__MACOSX"}


def find_submissions(paths: Iterable[str | Path]) -> Found:
    """Every .py/.ipynb named, or inside a named folder and its subfolders (one per student, say), sorted.

    Hidden files and folders, notebook checkpoints and __pycache__ are left out without a word; other files
    in a folder are `skipped`. A missing path raises FileNotFoundError, a named file of another kind
    NotASubmission.
    """
    found: list[Path] = []
    skipped: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            # Inside a folder, links are skipped: a link could hand in someone else's file (or /etc/shadow).
            files = sorted(f for f in p.rglob("*") if f.is_file() and not f.is_symlink()
                           and not _skipped(f.relative_to(p)))
            found.extend(f for f in files if f.suffix in SUFFIXES)
            skipped.extend(f for f in files if f.suffix not in SUFFIXES)
        elif p.is_file():
            if p.suffix not in SUFFIXES:
                raise NotASubmission(f"{p}: not a submission (grade reads .py and .ipynb files)")
            found.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    # Absolute, not resolved: a submission keeps its own name even when named through a link.
    return Found(list(dict.fromkeys(f.absolute() for f in found)), list(dict.fromkeys(skipped)))


def discover(paths: Iterable[str | Path]) -> list[Path]:
    """The submissions find_submissions finds."""
    return find_submissions(paths).submissions


def _skipped(relative: Path) -> bool:
    return any(part.startswith(".") or part in SKIPPED_FOLDERS for part in relative.parts)


def cache_key(path: Path, rubric_sha256: str, grader_version: str, options: dict[str, Any]) -> str:
    """Changes when the submission, the rubric, the grader or the grading options change."""
    h = hashlib.sha256(path.read_bytes())
    h.update(rubric_sha256.encode())
    h.update(grader_version.encode())
    h.update(json.dumps(options, sort_keys=True).encode())
    return h.hexdigest()


def is_up_to_date(out_dir: Path, job: Job) -> bool:
    """True when out_dir holds a complete report set for this exact submission, rubric and grader."""
    from grader.report.writer import complete_report

    previous = complete_report(out_dir, job.name)
    return previous is not None and previous.get("cache_key") == job.cache_key


def call_safely(fn: Callable[[Job], dict[str, Any]], job: Job) -> dict[str, Any]:
    """fn(job), or a grader-failure result if it raises (Ctrl-C and SIGTERM still go through)."""
    try:
        return fn(job)
    except Exception as exc:  # noqa: BLE001 - a grader bug costs this submission only
        import traceback

        return grader_failure(job, f"the grader failed on this submission: {exc!r}", traceback.format_exc())


def grader_failure(job: Job, message: str, tb: str | None = None, where: str = "grader") -> dict[str, Any]:
    """A result dict for a submission the grader itself could not grade (not the student's fault)."""
    return {
        "submission": job.name,
        "path": str(job.path),
        "score": 0.0,
        "max_score": 0.0,
        "questions": [],
        "errors": [{"kind": "grader", "where": where, "message": message, "traceback": tb}],
        "grader_failed": True,
        "cache_key": None,
    }


class Progress:
    """A tqdm bar over submissions: current name, elapsed time and an estimate of what is left."""

    def __init__(self, total: int, enabled: bool = True):
        from tqdm import tqdm

        tqdm.monitor_interval = 0  # no monitor thread: grading workers are forked from this process
        self.bar = tqdm(total=total, unit="sub", disable=not enabled or total <= 1, dynamic_ncols=True)
        self.started = time.monotonic()

    def start(self, job: Job) -> None:
        self.bar.set_postfix_str(job.name, refresh=True)

    def done(self, job: Job, result: dict[str, Any]) -> None:
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
