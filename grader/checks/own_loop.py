"""The steps of the student's own loop: what their train_one_epoch does with their train_one_sample.

The Q3 probes call train_one_sample directly, with the grader's weights and learning rates; code that
recognises those calls could pass them without backpropagating. Here the grader only sets the student's arrays
and calls their own train_one_epoch, unwrapped, over a handout-length x_train (60,000 samples): nothing of the
grader sits between their loop and their step. The loop's first step (the only one whose step really runs, see
`SandboxStudent.count_epoch_steps`) is compared with the reference's step from the same weights, and the loop's
first 20 steps (Q4.loop's run) with the reference's 20 steps. Per-sample SGD on raw pixels is chaotic, but over
one step and over 20 steps a correct float64 or float32 step stays close to the reference (GUIDE: 2e-13 and
6e-5 relative after 20 steps), so both are exact checks. A Q3 tensor that is right at the probes but wrong in
the student's own loop gets no credit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from grader.diagnosis import step_with_decay
from grader.gradients import least_squares_ratio, probe_point, relative_error
from grader.results import CheckResult
from grader.sandbox.runner import sample_key  # the key the child records for the loop's first step
from grader.student import Params, Student, StudentCodeError
from reference import network

TENSORS = ("W1", "b1", "W2", "b2", "W3", "b3")
FLOAT32_RESOLUTION = 100.0  # a change is judged only where it exceeds this many float32 spacings of the weight
THRESHOLD = 1e-2  # e above this is a different step (the mildest real bug, sigma'(a), is 0.07 to 0.13)
REPLACED = 0.5  # a step moves a weight matrix by a small fraction of its size; a re-initialisation by about all of it


@dataclass(frozen=True)
class OwnLoopRun:
    """One call of the student's train_one_epoch over a handout-length x_train from `start`: the samples its
    steps visited (the first step's runner.sample_key, then each step's marks, adapt/marks.py) and the
    parameters after its first step."""

    start: Params
    x: np.ndarray  # (784,) the first sample
    label: int
    learning_rate: float
    keys: list[Any] = field(default_factory=list)
    after: Params | None = None
    problem: str | None = None  # why it could not be run or read (then no conclusion is drawn from it)


def began_with_first_sample(run: OwnLoopRun) -> bool:
    """True when the loop's first step was on the first sample, as the child keys it (runner.sample_key)."""
    return bool(run.keys) and run.keys[0] == sample_key(run.x)


def run_own_loop(student: Student, images: np.ndarray, labels: np.ndarray, n: int, learning_rate: float,
                 seed: int) -> OwnLoopRun:
    """The student's train_one_epoch over n samples built from images (m, 784), from a healthy point for the
    first sample (z1 of order 1, so that every layer's gradient shows)."""
    start = probe_point(images[0], seed)
    run = OwnLoopRun(start, np.asarray(images[0], dtype=np.float64), int(labels[0]), learning_rate)
    count = getattr(student, "count_epoch_steps", None)
    if count is None or not student.has("train_one_epoch") or not student.has("train_one_sample"):
        return replace(run, problem="train_one_epoch or train_one_sample cannot be called")
    try:
        keys, after = count(start, images, labels, n, learning_rate, timeout_s=60.0)
    except StudentCodeError as exc:
        return replace(run, problem=exc.error.message)
    return replace(run, keys=list(keys), after=after)


def _tensor(params: Params, name: str) -> np.ndarray:
    layer = int(name[1]) - 1
    return np.asarray((params[0] if name[0] == "W" else params[1])[layer], dtype=np.float64)


def _visible(before: np.ndarray, change: np.ndarray) -> np.ndarray:
    """Entries whose change a float32 student can represent well: (…) bool."""
    spacing = np.spacing(np.abs(before).astype(np.float32)).astype(np.float64)
    return np.abs(change) > FLOAT32_RESOLUTION * spacing


def step_errors(start: Params, got: Params, want: Params) -> dict[str, float]:
    """Per tensor, e between the student's change and the reference's change from `start`, on the entries the
    reference changes visibly; tensors with fewer than 3 such entries are left out (a saturated layer)."""
    errors = {}
    for name in TENSORS:
        before, g, w = _tensor(start, name), _tensor(got, name), _tensor(want, name)
        if g.shape != before.shape:
            errors[name] = float("inf")
            continue
        mask = _visible(before, before - w)
        if mask.sum() >= 3:
            errors[name] = relative_error((before - g)[mask], (before - w)[mask])
    return errors


def only_rescaled(start: Params, got: Params, want: Params) -> float | None:
    """The one factor c (not 1) such that the student's change is c times the reference's in every tensor (a
    loop that does not pass the learning rate on), or None."""
    change = np.concatenate([(_tensor(start, n) - _tensor(got, n)).ravel() for n in TENSORS])
    expected = np.concatenate([(_tensor(start, n) - _tensor(want, n)).ravel() for n in TENSORS])
    c = least_squares_ratio(change, expected)
    if c is None or abs(c - 1.0) < 1e-6 or c <= 0:
        return None
    return c if relative_error(change, c * expected) <= 1e-6 else None


def replaced_weights(run: OwnLoopRun) -> bool:
    """True when the loop's first step left every weight matrix at least half its size away from where it
    started: the loop trained other weights (it re-initialised or replaced the network), whatever its step."""
    if run.after is None or not run.keys or run.keys[0] is None:
        return False
    moved = []
    for name in ("W1", "W2", "W3"):
        start, after = _tensor(run.start, name), _tensor(run.after, name)
        if after.shape != start.shape:
            return False
        moved.append(np.linalg.norm(after - start) / max(np.linalg.norm(start), 1e-300))
    return min(moved) > REPLACED


def first_step_errors(run: OwnLoopRun, decay: dict[str, float] | None = None) -> dict[str, float]:
    """e per tensor between the loop's first step and the reference's step on the same sample (with the L2
    weight decay Q3 found in the student's step, name -> lambda); {} when the run told nothing about the step
    (not run, no step taken, or a loop that only rescales the rate)."""
    if run.after is None or not run.keys or run.keys[0] is None:
        return {}
    want = step_with_decay(run.start, run.x, run.label, run.learning_rate, decay)
    if only_rescaled(run.start, run.after, want) is not None:
        return {}
    return step_errors(run.start, run.after, want)


def trajectory_errors(start: Params, got: Params | None, images: np.ndarray, labels: np.ndarray,
                      learning_rate: float, decay: dict[str, float] | None = None) -> dict[str, float]:
    """e per tensor between the student's parameters after their loop's steps over images (n, 784) and the
    reference's after the same n steps (with the student's L2 weight decay, name -> lambda, where Q3 found
    one), on the entries the reference moves visibly."""
    if got is None:
        return {}
    if decay:
        want = start
        for x, label in zip(images, labels, strict=True):
            want = step_with_decay(want, np.asarray(x, dtype=np.float64).ravel(), int(label), learning_rate, decay)
    else:
        want = network.train_epoch(*start, images, labels, learning_rate)
    return step_errors(start, got, want)


def withhold_credit(checks: Sequence[CheckResult], wrong: dict[str, float], where: str) -> list[CheckResult]:
    """Q3 tensor checks that passed at the probes but whose tensor is wrong in the student's own loop: no
    credit, and the message says why."""
    out = []
    for check in checks:
        name = check.id.split(".")[-1]
        if name in wrong and check.status == "passed":
            note = (f"Not credited: {name} is right when the grader calls train_one_sample directly, but {where} "
                    f"differs from the reference's (e = {wrong[name]:.2g}), so the probes do not show how your "
                    "code trains.")
            check = replace(check, status="failed", score=0.0, message=f"{note} {check.message}",
                            details={**check.details, "own_loop_rel_error": wrong[name], "credit_withheld": note})
        out.append(check)
    return out


def wrong_tensors(errors: dict[str, float], threshold: float = THRESHOLD) -> dict[str, float]:
    """The tensors whose e is above the threshold."""
    return {name: e for name, e in errors.items() if not e <= threshold}
