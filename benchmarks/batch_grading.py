"""Section 3: a batch of N varied submissions graded with `grade FOLDER --jobs 2`: throughput and memory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from benchmarks.end_to_end import grade_outcome, run_grade, why_not
from benchmarks.memory import peak_by_role
from benchmarks.rows import Row, Section, format_seconds, shown, unavailable

NAME = "batch"
GOAL_PER_MINUTE = 60.0  # issue 15: a class of 40 at 60 or more a minute with --jobs 2
# Attacks on the grader, not homework: several hang or flood on purpose until a limit stops them.
EXCLUDED_DIRS = {"hostile", "attacks", "__pycache__"}


def gradable_fixtures(tests: Path) -> list[Path]:
    """Homework-like submissions under tests/ that define train_one_sample, interleaved folder by folder (so
    that the first 40 are a varied class: correct solutions in other idioms, real bugs, notebooks)."""
    by_folder: dict[Path, list[Path]] = {}
    for path in sorted(tests.rglob("*")):
        if path.suffix not in (".py", ".ipynb") or path.name.startswith(("test_", "conftest", "__init__")):
            continue
        if EXCLUDED_DIRS & set(path.relative_to(tests).parts):
            continue
        if "def train_one_sample" in path.read_text(errors="replace"):
            by_folder.setdefault(path.parent, []).append(path)
    columns = list(by_folder.values())
    return [column[i] for i in range(max(map(len, columns), default=0)) for column in columns if i < len(column)]


def make_batch(sources: list[Path], n: int, folder: Path) -> list[Path]:
    """n copies of sources, round robin, each with a different name and (for .py) different bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    copies = []
    for i in range(n):
        source = sources[i % len(sources)]
        target = folder / f"s{i:03d}_{source.stem}{source.suffix}"
        if source.suffix == ".py":  # bytes: a fixture's encoding is part of what it tests
            target.write_bytes(source.read_bytes() + f"\n# benchmark copy {i}\n".encode())
        else:
            shutil.copyfile(source, target)
        copies.append(target)
    return copies


def run(sources: list[Path], n: int, jobs: int, npz: Path, data_label: str, workdir: Path,
        one_grade_s: float | None = None) -> Section:
    """Grade n copies of sources in one `grade` call; one_grade_s (section 2) gives a sequential estimate."""
    batch = make_batch(sources, n, workdir / "submissions")
    out = workdir / "reports"
    what = f"batch of {n} submissions, --jobs {jobs}"
    measured = run_grade([workdir / "submissions"], npz, out, workdir, jobs=jobs)
    outcomes = [grade_outcome(out / f"{path.stem}.json") for path in batch]
    failed = [o["reason"] for o in outcomes if not o["ok"]]
    used = sources[:n]
    notes = [(f"{n} copies of {len(sources)} sources: " if n > len(sources) else
              f"the first {n} of {len(sources)} sources, one copy each: ") + ", ".join(shown(s) for s in used),
             f"data: {data_label}"]
    reason = None
    if measured.timed_out:
        reason = why_not(measured)
    elif len(failed) == len(batch):
        exit_reason = why_not(measured)
        reason = f"no submission was graded, e.g. {failed[0]}" + (f" ({exit_reason})" if exit_reason else "")
    if reason is not None:
        return unavailable(NAME, what, reason, tuple(notes))
    per_minute = 60.0 * n / measured.seconds
    roles = peak_by_role(list(measured.peaks))
    estimate = None if one_grade_s is None else n * one_grade_s
    rows = [Row(
        NAME, what, f"{per_minute:.1f} submissions/min ({format_seconds(measured.seconds)})",
        "-" if estimate is None else f"{60.0 * n / estimate:.1f}/min ({n} x one grade, sequential, estimated)",
        None if estimate is None else estimate / measured.seconds, f">= {GOAL_PER_MINUTE:.0f}/min",
        per_minute >= GOAL_PER_MINUTE,
        {"seconds": measured.seconds, "submissions": n, "per_minute": per_minute, "jobs": jobs,
         "grader_failed": len(failed), "sequential_estimate_s": estimate},
    )]
    labels = {"grader": "peak RSS, grade process (parent)", "worker": "peak RSS per grading worker",
              "student": "peak RSS per sandbox child (student code)", "helper": "peak RSS per helper"}
    for role, figures in roles.items():
        rows.append(Row(NAME, labels.get(role, role),
                        f"{figures['max_mib']:.0f} MiB max, {figures['median_mib']:.0f} MiB median "
                        f"({figures['processes']:.0f} processes)", values=dict(figures, role=role)))
    rows.append(Row(NAME, "peak RSS, largest single process (kernel ru_maxrss)",
                    f"{measured.maxrss_mib:.0f} MiB", values={"maxrss_mib": measured.maxrss_mib}))
    rows.append(Row(NAME, "peak RSS, whole tree at once (sampled sum)", f"{measured.peak_total_mib:.0f} MiB",
                    values={"peak_total_mib": measured.peak_total_mib}))
    notes.append("memory: psutil samples every 50 ms of the grade command's process tree, by role (parent; "
                 "grader-side python workers; sandbox children running sandbox/runner.py; unshare/sh helpers), "
                 "plus the kernel's ru_maxrss of the tree (RUSAGE_CHILDREN of a fresh ~10 MiB launcher: the "
                 "largest single process, exact)")
    if failed:
        notes.append(f"{len(failed)} of {n} results say the grader failed, e.g. {json.dumps(failed[0])}")
    return Section(NAME, tuple(rows), tuple(notes))
