"""Section 2: `grade submissions/kv2154.py` against running the student's file as written on the same data.

The baseline is what a TA without this tool does: `python submissions/kv2154.py`, with a TensorFlow
stand-in on PYTHONPATH whose `tf.keras.datasets.mnist.load_data()` reads the same npz with numpy (the
real loader's arrays, without installing TensorFlow). The script then trains 3 epochs at top level and
prints test loss and accuracy 4 times; it checks nothing.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.processes import Measured, grade_command, run_measured
from benchmarks.rows import Row, Section, format_seconds, goal_met, shown, unavailable
from benchmarks.timing import median
from reference.mnist import Mnist

NAME = "one submission end to end"
GOAL = 20.0  # issue 15: at least 20x faster than running the submission as written
DATA_VAR = "BENCHMARK_MNIST_NPZ"
CACHE_VAR = "GRADER_CACHE_DIR"  # where `grade` keeps prepared data (grader/data_cache.py); set, not imported,
# so that these benchmarks also run against a grader from before the cache

STANDIN = {
    "tensorflow/__init__.py": "from tensorflow import keras as keras\n",
    "tensorflow/keras/__init__.py": "from tensorflow.keras import datasets as datasets\n",
    "tensorflow/keras/datasets/__init__.py": "from tensorflow.keras.datasets import mnist as mnist\n",
    "tensorflow/keras/datasets/mnist.py": (
        '"""Benchmark stand-in for tf.keras.datasets.mnist: the keras npz at $BENCHMARK_MNIST_NPZ."""\n'
        "import os\n\nimport numpy as np\n\n\n"
        'def load_data(path="mnist.npz"):\n'
        '    with np.load(os.environ["BENCHMARK_MNIST_NPZ"], allow_pickle=False) as f:\n'
        '        return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])\n'
    ),
}


def write_tensorflow_standin(folder: Path) -> Path:
    """Write the stand-in package under folder and return folder (to put on PYTHONPATH)."""
    for relative, text in STANDIN.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


def write_subset(data: Mnist, path: Path, n_train: int, n_test: int) -> Path:
    """The first n_train training and n_test test digits of data as a keras-layout npz."""
    np.savez(path, x_train=data.x_train[:n_train], y_train=data.y_train[:n_train],
             x_test=data.x_test[:n_test], y_test=data.y_test[:n_test])
    return path


def student_env(standin: Path, npz: Path) -> dict[str, str]:
    """The environment of the TA's run: the stand-in first on the path, a non-interactive matplotlib."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(standin), env.get("PYTHONPATH", "")) if p)
    env[DATA_VAR] = str(npz)
    env["MPLBACKEND"] = "Agg"
    return env


def run_student_script(script: Path, npz: Path, workdir: Path) -> Measured:
    """`python script` as a TA runs it, in workdir (so anything it writes lands there)."""
    standin = write_tensorflow_standin(workdir / "standin")
    run_dir = workdir / "cwd"
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_measured([sys.executable, str(script.resolve())], workdir / "student",
                        env=student_env(standin, npz), cwd=run_dir)


def run_grade(paths: list[Path], npz: Path, out: Path, workdir: Path, jobs: int | None = None,
              env: dict[str, str] | None = None) -> Measured:
    """`grade PATHS --out OUT --mnist NPZ --quiet [--jobs N]`, the CLI as a TA types it."""
    argv = [*grade_command(), *map(str, paths), "--out", str(out), "--mnist", str(npz), "--quiet"]
    if jobs is not None:
        argv += ["--jobs", str(jobs)]
    return run_measured(argv, workdir, env=env)


def grade_outcome(result_json: Path) -> dict[str, Any]:
    """What one result file says: checks run, gradient tensors judged, score, and whether the grader failed."""
    try:
        result = json.loads(result_json.read_text())
    except (OSError, ValueError) as exc:
        return {"ok": False, "reason": f"no readable result {result_json.name}: {exc}"}
    errors = [e for e in result.get("errors", []) if e.get("kind") == "grader"]
    if result.get("grader_failed") or errors:
        message = errors[0].get("message", "") if errors else "grader_failed"
        return {"ok": False, "reason": message}
    checks = sum(len(q.get("checks", [])) for q in result.get("questions", []))
    return {"ok": True, "checks": checks, "gradient_tensors": len(result.get("gradients", {})),
            "score": result.get("score"), "max_score": result.get("max_score")}


def why_not(measured: Measured, outcome: dict[str, Any] | None = None) -> str | None:
    """None when a grade run worked, else a one-line reason."""
    if measured.timed_out:
        return f"grade timed out after {measured.seconds:.0f} s"
    if outcome is not None and not outcome["ok"]:
        return outcome["reason"]
    if measured.returncode != 0:
        last = (measured.stderr_tail or measured.stdout_tail).strip().splitlines()
        return f"grade exited {measured.returncode}" + (f": {last[-1]}" if last else "")
    return None


def script_summary(measured: Measured) -> str:
    """The student's last printed accuracy line, or why the run did not finish."""
    if not measured.ok:
        last = measured.stderr_tail.strip().splitlines()
        return f"exit {measured.returncode}" + (f": {last[-1]}" if last else "")
    lines = [ln.strip() for ln in measured.stdout_tail.splitlines() if "Accuracy" in ln]
    return lines[-1] if lines else "finished"


def run(submission: Path, npz: Path, data_label: str, workdir: Path, grade_repeats: int = 3) -> Section:
    """Time `grade` once with an empty prepared-data cache, then grade_repeats times (median) with the data it
    kept, and the student's script once, on the same npz."""
    name = shown(submission)
    what = f"grade {name} (one submission)"
    cache = {**os.environ, CACHE_VAR: str(workdir / "grader-cache")}  # this section's own, empty at first
    times, outcome, reason = [], None, None
    for i in range(1 + max(1, grade_repeats)):
        out = workdir / f"grade{i}" / "reports"
        grade = run_grade([submission], npz, out, workdir / f"grade{i}", env=cache)
        outcome = grade_outcome(out / f"{submission.stem}.json")
        reason = why_not(grade, outcome)
        if reason is not None:
            break
        times.append(grade.seconds)
    cold_s, times = (times[0], times[1:]) if times else (None, times)
    script = run_student_script(submission, npz, workdir / "script")
    notes = [f"data: {data_label}",
             f"student's script as written: {format_seconds(script.seconds)}, peak RSS "
             f"{script.maxrss_mib:.0f} MiB, last output: {script_summary(script)}"]
    if reason is not None:
        return unavailable(NAME, what, reason, tuple(notes))
    if not script.ok:
        return unavailable(NAME, what, f"the student's script failed: {script_summary(script)}", tuple(notes))
    assert outcome is not None
    grade_s = median(times)
    speedup = script.seconds / grade_s
    notes.append(f"grade: median of {len(times)} runs (fresh --out each) with MNIST prepared by an earlier run "
                 f"(grader/data_cache.py); the first run, which validates and cuts MNIST, took "
                 f"{format_seconds(cold_s or 0.0)} ({script.seconds / (cold_s or grade_s):.1f}x); "
                 f"{outcome['checks']} checks "
                 f"and {outcome['gradient_tensors']} gradient tensors judged, score {outcome['score']} / "
                 f"{outcome['max_score']}; the script checks nothing (it prints test loss and accuracy)")
    row = Row(
        NAME, f"grade {name} ({outcome['checks']} checks)", format_seconds(grade_s),
        f"{format_seconds(script.seconds)} (python {name}, 0 checks)", speedup,
        f">= {GOAL:.0f}x, checking more", bool(goal_met(speedup, GOAL) and outcome["checks"] > 0),
        {"grade_s": grade_s, "grade_runs": times, "grade_cold_s": cold_s, "script_s": script.seconds,
         "checks": outcome["checks"],
         "gradient_tensors": outcome["gradient_tensors"], "score": outcome["score"],
         "max_score": outcome["max_score"], "grade_maxrss_mib": grade.maxrss_mib,
         "script_maxrss_mib": script.maxrss_mib, "data": data_label},
    )
    return Section(NAME, (row,), tuple(notes))
