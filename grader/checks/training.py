"""Q4: the student's train_one_epoch: its loop (per-sample steps recorded, not run) and a short training.

The loop check calls train_one_epoch with a learning rate that is not the handout's default, so a loop that
drops the argument shows. The short training runs the student's own pipeline from the reference's
initialisation and compares test accuracy per epoch with the reference's run on the same data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from grader.adapt.marks import marked_index
from grader.checks.failures import SHARE, grader_failed, student_failed
from grader.checks.own_loop import OwnLoopRun, began_with_first_sample, replaced_weights, trajectory_errors
from grader.results import CheckResult
from grader.student import EpochRun, Params, Student, StudentCodeError
from reference import network


@dataclass(frozen=True)
class TrainingSettings:
    """Data sizes and tolerances for Q4."""

    loop_learning_rate: float = 0.0042  # not the default 0.003: a loop that drops the argument shows
    default_learning_rate: float = network.LEARNING_RATE
    loop_samples: int = 20
    epoch_length: int = 60_000  # the handout's x_train: the loop is counted over this many samples
    train_samples: int = 3000
    test_samples: int = 1000
    epochs: int = 3
    learning_rate: float = network.LEARNING_RATE
    # Per-sample SGD on raw pixels is chaotic: a 1e-13 relative nudge to the initial weights moves the
    # final accuracy on 3,000 samples anywhere in 52-61% (measured, 12 runs). Only a gap far outside that
    # spread says the pipeline is broken; Q3's gradient check is what finds subtle mistakes.
    accuracy_tolerance: float = 0.12  # full credit within this gap below the reference (fraction 0..1)
    zero_credit_gap: float = 0.40  # no credit at this gap or more; linear in between
    beats_reference_margin: float = 0.15  # above the reference by this much: say accuracy alone proves nothing


# ---------------------------------------------------------------- matching recorded calls to samples


@dataclass(frozen=True)
class Fingerprint:
    """What identifies a sample without shipping it: size, sum, sum of squares, first non-zero index."""

    size: int
    total: float
    squares: float
    first_nonzero: int

    @classmethod
    def of(cls, value: Any) -> Fingerprint | None:
        """From an array or the sandbox's fingerprint dict {"shape", "sum", "sumsq", "first_nonzero"}."""
        if isinstance(value, Mapping):
            try:
                size = int(np.prod(value["shape"]))
                first = value.get("first_nonzero")
                return cls(
                    size, float(value["sum"]), float(value["sumsq"]), -1 if first is None else int(first)
                )
            except (KeyError, TypeError, ValueError):
                return None
        try:
            flat = np.asarray(value, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            return None
        nonzero = np.flatnonzero(flat)
        first = int(nonzero[0]) if nonzero.size else -1
        return cls(flat.size, float(flat.sum()), float(np.dot(flat, flat)), first)

    def matches(self, other: Fingerprint, scale: float = 1.0, rtol: float = 1e-9) -> bool:
        """Same sample, possibly multiplied by `scale` (e.g. 1/255)."""
        return (
            self.size == other.size
            and self.first_nonzero == other.first_nonzero
            and np.isclose(self.total, other.total * scale, rtol=rtol, atol=1e-9)
            and np.isclose(self.squares, other.squares * scale**2, rtol=rtol, atol=1e-9)
        )


def recorded_label(value: Any) -> int | None:
    """A label from an int, a 0-d array, a one-hot vector or a one-hot fingerprint; None if unreadable."""
    if isinstance(value, Mapping):
        fingerprint = Fingerprint.of(value)
        one_hot = fingerprint is not None and fingerprint.total == 1.0 and fingerprint.squares == 1.0
        return fingerprint.first_nonzero if one_hot else None
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if array.size == 1 and float(array.reshape(())).is_integer():
        return int(array.reshape(()))
    if array.size > 1 and np.count_nonzero(array) == 1 and array.max() == 1.0:
        return int(np.argmax(array.ravel()))
    return None


def _field(step: Mapping[str, Any], *names: str) -> Any:
    return next((step[n] for n in names if n in step), None)


def identify_sample(x: Any, samples: list[Fingerprint], hint: int) -> tuple[int | None, str]:
    """Index of the sample a recorded x is ('' note), trying `hint` first; or (None, why) / (i, 'scaled')."""
    fingerprint = Fingerprint.of(x)
    if fingerprint is None:
        return None, "unreadable"
    order = ([hint] if 0 <= hint < len(samples) else []) + list(range(len(samples)))
    for j in order:
        if fingerprint.matches(samples[j]):
            return j, ""
    for j in order:
        if fingerprint.matches(samples[j], scale=1 / 255):
            return j, "scaled"
    return None, "unknown"


# ---------------------------------------------------------------- the loop


@dataclass(frozen=True)
class _Step:
    sample: int | None
    note: str
    label: int | None
    lr: float | None


def _read_steps(recorded: list[dict[str, Any]], samples: list[Fingerprint]) -> list[_Step]:
    steps = []
    for i, step in enumerate(recorded):
        sample, note = identify_sample(_field(step, "x", "sample"), samples, i)
        lr = _field(step, "lr", "learning_rate")
        try:
            lr = None if lr is None else float(lr)
        except (TypeError, ValueError):
            lr = None
        steps.append(_Step(sample, note, recorded_label(_field(step, "label", "y")), lr))
    return steps


def _visit_problems(steps: list[_Step], n: int) -> list[str]:
    """What is wrong with the sequence of visited samples (empty if it is 0, 1, ..., n-1)."""
    visited = [s.sample for s in steps]
    scaled = [i for i, s in enumerate(steps) if s.note == "scaled"]
    if visited == list(range(n)) and not scaled:
        return []
    problems = []
    if scaled:
        problems.append(
            f"train_one_epoch passes x / 255 to train_one_sample (step {scaled[0]}); "
            "the handout feeds raw pixels"
        )
    unknown = [i for i, s in enumerate(steps) if s.sample is None]
    if unknown:
        problems.append(
            f"step {unknown[0]} passed an x that is none of the {n} samples given to train_one_epoch "
            f"({len(unknown)} such steps; does it read a global x_train instead of its argument?)"
        )
    known = [v for v in visited if v is not None]
    missing = sorted(set(range(n)) - set(known))
    repeated = sorted({v for v in known if known.count(v) > 1})
    if len(steps) != n and not missing and not repeated:
        problems.append(
            f"train_one_epoch made {len(steps)} calls to train_one_sample, expected {n} (one per sample)"
        )
    if missing:
        which = " (the last)" if missing == [n - 1] else " (the first)" if missing == [0] else ""
        problems.append(
            f"train_one_epoch skips sample{'s' if len(missing) > 1 else ''} {_index_list(missing)}{which}"
        )
    if repeated:
        problems.append(
            f"train_one_epoch visits sample{'s' if len(repeated) > 1 else ''} {_index_list(repeated)} "
            "more than once"
        )
    if not missing and not repeated and not unknown and len(steps) == n and visited != list(range(n)):
        if visited == list(range(n - 1, -1, -1)):
            problems.append("train_one_epoch visits the samples in reverse order")
        else:
            first = next(i for i, v in enumerate(visited) if v != i)
            problems.append(
                f"train_one_epoch visits the samples out of order (step {first} used "
                f"sample {visited[first]}); "
                "the handout trains over x_train in order, without shuffling"
            )
    return problems


def _index_list(indices: list[int], shown: int = 5) -> str:
    text = ", ".join(map(str, indices[:shown]))
    return text + (f" ... ({len(indices)} in all)" if len(indices) > shown else "")


def _label_problems(steps: list[_Step], labels: np.ndarray) -> list[str]:
    wrong = [i for i, s in enumerate(steps) if s.sample is not None and s.label != int(labels[s.sample])]
    if not wrong:
        return []
    i = wrong[0]
    return [
        f"step {i} passed label {steps[i].label} with sample {steps[i].sample}, whose label is "
        f"{int(labels[steps[i].sample])} ({len(wrong)} such steps)"
    ]


def _lr_problems(steps: list[_Step], settings: TrainingSettings) -> list[str]:
    expected = settings.loop_learning_rate
    rates = [s.lr for s in steps]
    if all(r is not None and np.isclose(r, expected, rtol=1e-12) for r in rates):
        return []
    if all(r is not None and np.isclose(r, settings.default_learning_rate, rtol=1e-12) for r in rates):
        return [
            f"train_one_epoch does not pass learning_rate on: called with learning_rate={expected}, every "
            f"step used {settings.default_learning_rate}, train_one_sample's default"
        ]
    used = sorted({r for r in rates if r is not None})
    return [
        f"the steps used learning rate{'s' if len(used) > 1 else ''} "
        f"{', '.join(f'{r:g}' for r in used[:3]) or 'none'}"
        f", expected {expected} as passed to train_one_epoch"
    ]


def _coverage_problems(own: OwnLoopRun | None, n: int) -> list[str]:
    """What a handout-length epoch shows that 20 samples cannot: a cap (`x_train[:1000]`), a shorter range.
    The first step's key says if it was sample 0; every later step's marks name its sample (adapt/marks.py)."""
    if own is None or own.problem is not None or not own.keys:
        return []  # a loop that cannot run over 60,000 samples cheaply is judged on the 20 alone
    visited = [0 if began_with_first_sample(own) else None] + [marked_index(k) for k in own.keys[1:]]
    if visited == list(range(n)) or None in visited:
        return []  # all in order; unreadable or scaled samples are named by the 20-sample check
    if visited == list(range(len(visited))):
        return [f"train_one_epoch trained on the first {len(visited):,} of {n:,} samples only "
                "(the handout trains on all of x_train)"]
    seen = set(visited)
    if len(visited) != n or len(seen) != n:
        return [f"Over a full x_train of {n:,} samples, train_one_epoch made {len(visited):,} steps on "
                f"{len(seen):,} different samples (expected each sample once)"]
    return []


def _params_close(a: Params, b: Params, rtol: float = 1e-6) -> bool:
    pairs = list(zip(a[0] + a[1], b[0] + b[1], strict=False))
    return len(pairs) == 6 and all(
        np.shape(x) == np.shape(y) and np.allclose(x, y, rtol=rtol, atol=1e-12) for x, y in pairs
    )


def _inline_loop_result(run_params: Params | None, params: Params, images, labels, settings) -> CheckResult:
    """train_one_epoch made no train_one_sample calls: judge it by its parameters after the epoch."""
    check_id, title, points = "Q4.loop", "train_one_epoch: loop over the samples", SHARE
    lead = "train_one_epoch never called train_one_sample, so its loop could not be checked on its own"
    if run_params is None:
        return CheckResult(check_id, title, "failed", 0.0, points, f"{lead}, and left no weights to compare.")
    expected = network.train_epoch(*params, images, labels, settings.loop_learning_rate)
    if _params_close(run_params, expected):
        message = f"{lead}; its weights after one epoch match the reference's on {len(labels)} samples."
        return CheckResult(check_id, title, "passed", points, points, message)
    message = f"{lead}; its weights after one epoch differ from the reference's on {len(labels)} samples."
    return CheckResult(check_id, title, "failed", 0.0, points, message)


def check_training_loop(
    student: Student,
    params: Params,
    images: np.ndarray,
    labels: np.ndarray,
    settings: TrainingSettings = TrainingSettings(),
    own: OwnLoopRun | None = None,
    recorded: EpochRun | StudentCodeError | None = None,
) -> CheckResult:
    """Q4.loop: train_one_epoch calls train_one_sample once per sample, in order, with its learning rate; over
    a handout-length x_train (`own`, the same loop over 60,000 samples), it visits every one. `recorded`: the
    recorded run over the first `loop_samples` images, when it was made already (grader/questions/base.py)."""
    check_id, title, points = "Q4.loop", "train_one_epoch: loop over the samples", SHARE
    if not student.has("train_one_epoch"):
        message = (
            "train_one_epoch is not defined at top level, expected def train_one_epoch(learning_rate=0.003)."
        )
        return CheckResult(check_id, title, "failed", 0.0, points, message)
    images, labels = images[: settings.loop_samples], labels[: settings.loop_samples]
    try:
        run = recorded if recorded is not None else student.train_one_epoch(
            params, images, labels, settings.loop_learning_rate, True)
        if isinstance(run, StudentCodeError):
            raise run
    except StudentCodeError as exc:
        return student_failed(
            check_id, title, points, exc, f"calling train_one_epoch on {len(labels)} samples"
        )
    try:
        if not run.recorded:
            return _inline_loop_result(run.params, params, images, labels, settings)
        steps = _read_steps(run.recorded, [Fingerprint.of(x) for x in images])
        visits, label_issues, lr_issues = (
            _visit_problems(steps, len(labels)),
            _label_problems(steps, labels),
            _lr_problems(steps, settings),
        )
    except Exception as exc:  # noqa: BLE001 - the grader's own failure, reported as such
        return grader_failed(check_id, title, points, exc, "reading train_one_epoch's calls")
    n = settings.epoch_length
    if visits and own is not None and own.problem is None and own.keys and len(own.keys) != n:
        visits.append(f"over a full x_train of {n:,} samples it made {len(own.keys):,} steps")  # the scale of it
    visits += _coverage_problems(own, n) if not visits else []
    # Given weights it must train, the loop trains others (it re-initialises them): no epoch builds on the last.
    replaced = own is not None and own.problem is None and replaced_weights(own)
    if replaced:
        visits.insert(0, "train_one_epoch does not train the weights it is given: after its first step they are "
                         "as far from them as a fresh initialisation, so it re-initialises (or replaces) the "
                         "network and no epoch builds on the one before")
    in_place = sum(s.sample == i for i, s in enumerate(steps[: len(labels)])) / len(labels)
    identified = any(s.sample is not None for s in steps)
    fraction = 0.0 if replaced else (
        0.6 * (in_place if not visits else min(in_place, 0.5))
        + 0.2 * (identified and not label_issues)
        + 0.2 * (not lr_issues)
    )
    details = {
        "steps": len(steps),
        "samples": len(labels),
        "visited": [s.sample for s in steps][:200],
        "learning_rate": settings.loop_learning_rate,
        "epoch_length_steps": len(own.keys) if own is not None and own.problem is None else None,
        # the loop's own steps against the reference's from the same start (grading.py uses it for Q3)
        "trajectory_rel_error": trajectory_errors(params, run.params, images, labels, settings.loop_learning_rate),
    }
    problems = visits + label_issues + lr_issues
    if not problems:
        message = (
            f"train_one_epoch called train_one_sample once per sample, in order, on all {len(labels)} "
            f"samples, with their labels and learning_rate={settings.loop_learning_rate}."
        )
        return CheckResult(check_id, title, "passed", points, points, message, details=details)
    message = "; ".join(problems) + "."
    if message.startswith(("step", "the")):
        message = message[0].upper() + message[1:]
    return CheckResult(
        check_id, title, "failed", round(points * fraction, 6), points, message, details=details
    )
