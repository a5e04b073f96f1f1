"""The Gradescope side of the autograder bundle: pick the student's file, grade it, write results.json.

`run_autograder` calls `python -m grader.gradescope_run --bundle /autograder/source --submission
/autograder/submission --results /autograder/results`. Whatever happens, a valid results.json is written:
no file handed in, an unreadable notebook and the grader's own failure all become score 0 with a message.

Which file is graded when several are handed in (first difference wins):
1. a file that loads (a broken notebook loses to a readable .py),
2. a file defining `train_one_sample` (helpers or a data-loading script do not),
3. more of the handout's functions defined,
4. a notebook over a .py (the handout is a notebook; a .py next to it is usually its export),
5. the shallower path, then the name.
The choice and the files not graded are named in the output students see.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.batch import SUFFIXES

# Small matrices only: a multithreaded BLAS costs more than it gains (as in grader.cli).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

HANDOUT_FUNCTIONS = ("train_one_sample", "train_one_epoch", "feed_forward_sample", "feed_forward_dataset")
SKIPPED_DIRS = {"__pycache__", ".ipynb_checkpoints", "__MACOSX", ".git"}
MAX_CANDIDATES = 200
MANIFEST = "bundle.json"


@dataclass(frozen=True)
class Candidate:
    """One handed-in file and what a quick look (no execution) says about it."""

    path: Path
    loads: bool
    defines: tuple[str, ...]  # the handout functions it defines with `def`, in HANDOUT_FUNCTIONS order
    depth: int

    def rank(self) -> tuple[Any, ...]:
        """Sort key: smaller is more likely the file to grade (see the module docstring)."""
        return (not self.loads, "train_one_sample" not in self.defines, -len(self.defines),
                self.path.suffix.lower() != ".ipynb", self.depth, str(self.path))


@dataclass(frozen=True)
class Choice:
    """The file to grade (None when nothing was handed in) and the sentence saying why."""

    path: Path | None
    note: str


def find_candidates(submission_dir: Path) -> list[Path]:
    """Every .py/.ipynb under submission_dir (recursively, skipping hidden files and caches), sorted."""
    found = []
    for p in sorted(submission_dir.rglob("*")):
        rel = p.relative_to(submission_dir).parts
        if any(part.startswith(".") or part in SKIPPED_DIRS for part in rel):
            continue
        if p.suffix.lower() in SUFFIXES and p.is_file():
            found.append(p)
        if len(found) >= MAX_CANDIDATES:
            break
    return found


def inspect(path: Path, root: Path) -> Candidate:
    """Load the file as cells (never running it) and list the handout functions it defines."""
    from grader.submission import NotGradable, load_submission

    sub = load_submission(path)
    depth = len(path.relative_to(root).parts)
    if isinstance(sub, NotGradable):
        return Candidate(path, False, (), depth)
    source = "\n".join(c.source for c in sub.cells)
    defines = tuple(f for f in HANDOUT_FUNCTIONS if re.search(rf"^\s*def\s+{f}\s*\(", source, re.MULTILINE))
    return Candidate(path, True, defines, depth)


def choose_submission(submission_dir: Path) -> Choice:
    """The most likely homework file in submission_dir, with a note naming the others."""
    paths = find_candidates(submission_dir)
    if not paths:
        handed = sorted(p.relative_to(submission_dir).as_posix()
                        for p in submission_dir.rglob("*") if p.is_file())
        listing = ", ".join(handed[:20]) or "nothing"
        return Choice(None, "No .py or .ipynb file was found in your submission (you handed in: "
                            f"{listing}). Submit the notebook or the .py file with your solution.")
    ranked = sorted((inspect(p, submission_dir) for p in paths), key=Candidate.rank)
    best = ranked[0]
    name = best.path.relative_to(submission_dir).as_posix()
    if len(ranked) == 1:
        return Choice(best.path, f"Graded {name}.")
    others = ", ".join(c.path.relative_to(submission_dir).as_posix() for c in ranked[1:])
    why = _why(best, ranked[1])
    return Choice(best.path, f"You handed in {len(ranked)} code files; graded {name} ({why}). "
                             f"Not graded: {others}. To have another one graded, submit only that file.")


def _why(best: Candidate, runner_up: Candidate) -> str:
    """The first rule that told the chosen file from the next one."""
    if best.loads != runner_up.loads:
        return "the other files could not be read"
    if ("train_one_sample" in best.defines) != ("train_one_sample" in runner_up.defines):
        return "it defines train_one_sample"
    if len(best.defines) != len(runner_up.defines):
        return f"it defines the most of the handout's functions ({', '.join(best.defines)})"
    if best.path.suffix.lower() != runner_up.path.suffix.lower():
        return "a notebook is preferred over a .py"
    return "it comes first by folder depth and name"


def bundle_settings(bundle: Path | None) -> dict[str, str | None]:
    """The rubric and MNIST files named by the bundle's manifest, as absolute paths (None: not bundled)."""
    if bundle is None or not (bundle / MANIFEST).is_file():
        return {"rubric": None, "mnist": None}
    manifest = json.loads((bundle / MANIFEST).read_text(encoding="utf-8"))
    return {k: str(bundle / manifest[k]) if manifest.get(k) else None for k in ("rubric", "mnist")}


def grade_choice(path: Path, rubric_path: str | None, mnist_path: str | None, hide: Sequence[Path]) -> Any:
    """Grade one file with the rubric and MNIST given (the bundled sample when mnist_path is None)."""
    from grader.data import cached_data
    from grader.grading import grade_submission
    from grader.rubric import load_rubric
    from reference.mnist import sample_path

    rubric = load_rubric(rubric_path)
    data = cached_data(rubric, mnist_path or str(sample_path()))  # setup.sh prepared it (--prepare)
    return grade_submission(path, rubric, data, name=path.stem, hide=[str(h) for h in hide])


def message_results(message: str, test_name: str, elapsed: float) -> dict[str, Any]:
    """A valid results.json scoring 0, with one failing test that says why."""
    return {
        "score": 0.0,
        "execution_time": int(elapsed + 0.999),
        "output": message,
        "output_format": "text",
        "stdout_visibility": "hidden",
        "tests": [{"name": test_name, "name_format": "text", "number": "0.1", "score": 0.0, "max_score": 0.0,
                   "status": "failed", "output": message, "output_format": "text", "visibility": "visible"}],
    }


def run(submission_dir: Path, results_dir: Path, *, rubric_path: str | None = None,
        mnist_path: str | None = None, bundle: Path | None = None) -> tuple[dict[str, Any], bool]:
    """Grade the submission folder into results_dir/results.json; returns (that JSON, grader_failed)."""
    from grader.report.gradescope import results_json
    from grader.report.writer import atomic_write, dumps

    started = time.monotonic()
    settings = bundle_settings(bundle)
    rubric_path = rubric_path or settings["rubric"]
    mnist_path = mnist_path or settings["mnist"]
    failed = False
    results_dir.mkdir(parents=True, exist_ok=True)  # before grading, so the sandbox hides it too
    choice = choose_submission(submission_dir) if submission_dir.is_dir() else Choice(
        None, "No submission folder was found: nothing was handed in.")
    if choice.path is None:
        results = message_results(choice.note + "\nScore: 0.", "Submission · a .py or .ipynb file",
                                  time.monotonic() - started)
    else:
        hide = [p for p in (submission_dir, results_dir, bundle, mnist_path and Path(mnist_path)) if p]
        try:
            results = results_json(grade_choice(choice.path, rubric_path, mnist_path, hide))
            results["output"] = f"{choice.note}\n\n{results['output']}"
        except Exception as exc:  # noqa: BLE001 - the grader's own failure: still a valid results.json
            import traceback

            traceback.print_exc()
            failed = True
            results = message_results(
                f"{choice.note}\n\nThe grader itself failed on this submission (not your fault): {exc!r}. "
                "Please tell the course staff; your score will be set by hand.",
                "Submission · graded", time.monotonic() - started)
    atomic_write(results_dir / "results.json", dumps(results))
    return results, failed


def prepare(rubric_path: str | None, mnist_path: str | None, bundle: Path | None) -> int:
    """Fill the prepared-data cache for this bundle's rubric and MNIST; 0 when kept there, 1 if it could not be."""
    from grader import data_cache
    from grader.data import cached_data
    from grader.rubric import load_rubric
    from reference.mnist import sample_path

    settings = bundle_settings(bundle)
    rubric = load_rubric(rubric_path or settings["rubric"])
    mnist = mnist_path or settings["mnist"] or str(sample_path())
    data = cached_data(rubric, mnist)
    _, kept, _ = data_cache.lookup(mnist, rubric.sha256, False)
    print(f"grading data prepared from {data.source}: " + (f"kept in {kept}" if kept else
          "not kept (the cache folder cannot be written): each run prepares it"))
    return 0 if kept else 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m grader.gradescope_run",
                                description="Grade a Gradescope submission folder and write results.json.")
    p.add_argument("--submission", help="the folder Gradescope put the student's files in")
    p.add_argument("--results", help="where results.json goes")
    p.add_argument("--prepare", action="store_true", help="only validate and cut MNIST into the grader's cache, "
                   "once, when the image is built (setup.sh), so that no submission's run does it")
    p.add_argument("--bundle", default=None, help="the unpacked autograder bundle (its bundle.json names the "
                   "rubric and MNIST)")
    p.add_argument("--rubric", default=None, help="rubric.yaml (default: the bundle's, else the shipped one)")
    p.add_argument("--mnist", default=None, help="MNIST npz (default: the bundle's, else the bundled sample)")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    if args.prepare:
        return prepare(args.rubric, args.mnist, Path(args.bundle) if args.bundle else None)
    if not (args.submission and args.results):
        p.error("--submission and --results are required (or --prepare)")
    results, failed = run(Path(args.submission), Path(args.results), rubric_path=args.rubric,
                          mnist_path=args.mnist, bundle=Path(args.bundle) if args.bundle else None)
    print(results["output"])
    print(f"Score: {results['score']} (written to {Path(args.results) / 'results.json'})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
