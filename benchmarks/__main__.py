"""`python -m benchmarks [--quick] [--json PATH] [--mnist PATH]`: measure, print a table, then JSON."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks import batch_grading, end_to_end, gradient_check, training
from benchmarks.rows import ROOT, Section, format_table, machine, unavailable
from reference.mnist import ENV_VAR, Mnist, MnistError, flattened, keras_cache_path, load_mnist, sample_path

SUBMISSION = ROOT / "submissions" / "kv2154.py"
SECTIONS = ("gradients", "end_to_end", "batch", "training")


@dataclass(frozen=True)
class Sizes:
    """How much each section does: the full run, or --quick."""

    gradient_digits: int
    gradient_repeats: int
    train_steps: int
    train_rounds: int
    train_limit: int | None  # training digits for the epochs (None: all)
    script_limit: tuple[int, int] | None  # (train, test) digits for section 2's npz (None: all)
    grade_repeats: int
    batch: int


FULL = Sizes(3, 50, 500, 15, None, None, 3, 40)
QUICK = Sizes(1, 10, 200, 5, 3000, (3000, 600), 1, 6)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (minutes -> about a minute)")
    parser.add_argument("--json", type=Path, default=None, help="write the JSON here instead of stdout")
    parser.add_argument("--mnist", type=Path, default=None,
                        help=f"keras-layout mnist.npz (default: ${ENV_VAR}, keras' cache, the bundled sample)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="sections to run")
    parser.add_argument("--batch", type=int, default=None, help="submissions in the batch section")
    parser.add_argument("--jobs", type=int, default=2, help="--jobs of the batch section")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print where")
    return parser.parse_args(argv)


def mnist_path(explicit: Path | None) -> Path:
    """The npz load_mnist would read (explicit, $MNIST_PATH, keras' cache, then the bundled sample)."""
    if explicit is not None:
        return explicit.resolve()  # the student's script runs in another folder
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).resolve()
    return keras_cache_path() if keras_cache_path().is_file() else sample_path()


def describe(data: Mnist, path: Path, limit: tuple[int, int] | None = None) -> str:
    """'60,000 train / 10,000 test digits from PATH' (+ the subset used, + a warning for the sample)."""
    text = f"{len(data.y_train):,} train / {len(data.y_test):,} test digits from {path}"
    if path.resolve() == sample_path().resolve():
        text += " (the bundled sample, not the full MNIST: pass --mnist or set MNIST_PATH)"
    if limit is not None:
        text += f"; --quick: only the first {limit[0]:,} train / {limit[1]:,} test of them"
    return text


def section_gradients(data: Mnist, path: Path, sizes: Sizes, work: Path) -> Section:
    return gradient_check.run(data.x_train, data.y_train, sizes.gradient_digits, sizes.gradient_repeats,
                              source=describe(data, path))


def section_training(data: Mnist, path: Path, sizes: Sizes, work: Path) -> Section:
    flat = flattened(data)
    cut = slice(None, sizes.train_limit)
    label = describe(data, path, None if sizes.train_limit is None else (sizes.train_limit, len(data.y_test)))
    return training.run(flat.x_train[cut], flat.y_train[cut], flat.x_test, flat.y_test,
                        sizes.train_steps, sizes.train_rounds, source=label)


def script_npz(data: Mnist, path: Path, sizes: Sizes, work: Path) -> Path:
    """The npz sections 2 and 3 give the student's script and `grade`: the input file, or a --quick subset."""
    if sizes.script_limit is None:
        return path
    subset = work / "mnist_subset.npz"
    if not subset.exists():
        end_to_end.write_subset(data, subset, *sizes.script_limit)
    return subset


def section_end_to_end(data: Mnist, path: Path, sizes: Sizes, work: Path) -> Section:
    npz = script_npz(data, path, sizes, work)
    section = end_to_end.run(SUBMISSION, npz, describe(data, path, sizes.script_limit), work / "end_to_end",
                             sizes.grade_repeats)
    if sizes.script_limit is None:
        return section
    cut = ("the data is cut for the script, not the grader's own work (fixed-size probes and a short Q4 "
           "run): this speed-up understates the full-data one")
    return replace(section, notes=(*section.notes, cut))


def section_batch(data: Mnist, path: Path, sizes: Sizes, work: Path, n: int, jobs: int,
                  one_grade_s: float | None) -> Section:
    sources = [SUBMISSION, ROOT / "reference" / "solution.py", *batch_grading.gradable_fixtures(ROOT / "tests")]
    npz = script_npz(data, path, sizes, work)
    return batch_grading.run(sources, n, jobs, npz, describe(data, path, sizes.script_limit), work / "batch",
                             one_grade_s)


def one_grade_seconds(sections: list[Section]) -> float | None:
    """Section 2's median grade time, when it was measured."""
    for s in sections:
        if s.name == end_to_end.NAME and s.available:
            return s.rows[0].values.get("grade_s")
    return None


def guarded(name: str, fn, *args) -> Section:
    """Run one section; a crash of the benchmark itself becomes a 'not available' row, not a lost run."""
    try:
        return fn(*args)
    except AssertionError:
        raise  # an equality assertion failed: the figures would be meaningless
    except Exception as exc:
        return unavailable(name, name, f"{type(exc).__name__}: {exc}")


def run_sections(args: argparse.Namespace, data: Mnist, path: Path, work: Path, sizes: Sizes) -> list[Section]:
    sections: list[Section] = []
    if "gradients" in args.only:
        sections.append(guarded(gradient_check.NAME, section_gradients, data, path, sizes, work))
    if "end_to_end" in args.only:
        sections.append(guarded(end_to_end.NAME, section_end_to_end, data, path, sizes, work))
    if "batch" in args.only:
        n = args.batch or sizes.batch
        sections.append(guarded(batch_grading.NAME, section_batch, data, path, sizes, work, n, args.jobs,
                                one_grade_seconds(sections)))
    if "training" in args.only:
        sections.append(guarded(training.NAME, section_training, data, path, sizes, work))
    return sections


def report(sections: list[Section], before: dict[str, Any], elapsed: float, quick: bool) -> dict[str, Any]:
    """The JSON object: machine and load before/after, and every section's rows and notes."""
    return {"quick": quick, "machine": before, "loadavg_after": machine()["loadavg"],
            "elapsed_s": round(elapsed, 2), "sections": [s.to_dict() for s in sections]}


def main(argv: list[str] | None = None, sizes: Sizes | None = None) -> int:
    """Run the sections, print the table and the JSON; `sizes` overrides --quick (the tests use tiny ones)."""
    args = parse_args(argv)
    sizes = sizes or (QUICK if args.quick else FULL)
    path = mnist_path(args.mnist)
    try:
        data = load_mnist(path)
    except MnistError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    before, start = machine(), time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="benchmarks-"))
    previous_cache = os.environ.get(end_to_end.CACHE_VAR)
    os.environ[end_to_end.CACHE_VAR] = str(work / "grader-cache")  # empty at start: the first `grade` prepares the data
    try:
        sections = run_sections(args, data, path, work, sizes)
    finally:
        if previous_cache is None:
            os.environ.pop(end_to_end.CACHE_VAR, None)
        else:
            os.environ[end_to_end.CACHE_VAR] = previous_cache
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    result = report(sections, before, time.perf_counter() - start, args.quick)
    load = " ".join(map(str, before["loadavg"]))
    print(f"{'quick run' if args.quick else 'full run'} on {before['cpus']} cpus, python {before['python']}, "
          f"BLAS threads {before['blas_threads']}; load average (1/5/15 min) {load} at start, "
          f"{' '.join(map(str, result['loadavg_after']))} at end; {result['elapsed_s']:.0f} s in all")
    if args.keep:
        print(f"temporary files kept in {work}")
    print()
    print(format_table(sections))
    text = json.dumps(result, indent=2)
    if args.json is not None:
        args.json.write_text(text + "\n")
        print(f"\nJSON written to {args.json}")
    else:
        print()
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
