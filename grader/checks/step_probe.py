"""One probe digit of Q3: the student's step from the grader's probe point at two learning rates, read back as
implied gradients and judged tensor by tensor against finite differences of the reference loss (with Q3's
settings, which the rubric fills). checks/backprop.py turns the probes into Q3's results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grader.gradients import (
    TENSOR_NAMES,
    GradientPolicy,
    compare_tensor,
    finite_difference_gradient,
    implied_gradient,
    probe_point,
    tensor,
)
from grader.pinpoint import Pinpoint, TracedArray
from grader.results import GradientVerdict
from grader.student import Params, Student, StudentCodeError, copy_params

SIDE_CHECKS = {
    "Q3.learning_rate": "train_one_sample: the step scales with learning_rate",
    "Q3.determinism": "train_one_sample: the same call gives the same step",
    "Q3.zero_pixels": "train_one_sample: W1 rows of zero pixels stay unchanged",
}
FLOAT32_ROUNDING = 2.0**-24  # largest relative change float64 -> float32 -> float64 makes


@dataclass(frozen=True)
class BackpropSettings:
    """Q3 settings (the rubric fills them): learning rates, probe digits, thresholds on e."""

    large_learning_rate: float = 1.0  # (before - after) / 1 is exact in float64
    small_learning_rate: float = 1e-3
    samples: int = 3  # probe digits always used
    max_samples: int = 5  # probe digits used at most while a tensor stays inconclusive
    seed: int = 0  # probe point of digit i: probe_point(x_i, seed + i)
    correct_threshold: float = 1e-5
    wrong_threshold: float = 1e-2
    float64_threshold: float = 1e-8
    match_threshold: float = 1e-3
    inconclusive_credit: float = 0.5  # share of a tensor's points when e stays between the thresholds
    rate_threshold: float = 1e-2  # largest e between the two rates' gradients (float32 reaches ~1e-4)

    @property
    def policy(self) -> GradientPolicy:
        return GradientPolicy(self.correct_threshold, self.wrong_threshold, self.float64_threshold,
                              self.match_threshold)



@dataclass(frozen=True)
class Probe:
    """One probe digit: the point, the two implied gradients, finite differences and the verdicts."""

    index: int
    x: np.ndarray
    label: int
    params: Params
    at_large: Params | None
    at_small: Params | None
    expected: Params
    large: dict[str, GradientVerdict]
    small: dict[str, GradientVerdict]
    notes: dict[str, list[str]] = field(default_factory=dict)  # side check id -> problems found
    pinpoint: Pinpoint | None = None  # the step at the large rate, traced (first probe digit, sandbox only)


class UnusableParams(Exception):
    """train_one_sample came back with something that is not (weights, biases)."""


def read_params(value: Any) -> Params:
    """(weights, biases) as lists of three float arrays; raises UnusableParams otherwise."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise UnusableParams(f"got {type(value).__name__}, expected (weights, biases)")
    weights, biases = value
    if not all(isinstance(v, (list, tuple)) and len(v) == 3 for v in (weights, biases)):
        raise UnusableParams("expected three weight matrices and three bias vectors")
    try:
        return ([np.asarray(w, dtype=np.float64) for w in weights],
                [np.asarray(b, dtype=np.float64) for b in biases])
    except (TypeError, ValueError) as exc:
        raise UnusableParams(f"weights or biases are not numeric arrays ({exc})") from None


def _step(student: Student, params: Params, x: np.ndarray, label: int, lr: float) -> Params | str:
    """The student's parameters after one step, or why they cannot be read (StudentCodeError propagates)."""
    try:
        return read_params(student.train_one_sample(copy_params(params), x.copy(), int(label), lr))
    except UnusableParams as exc:
        return f"after train_one_sample the parameters are unusable: {exc}"


def _traced_step(student: Student, params: Params, x: np.ndarray, label: int,
                 lr: float) -> tuple[Params | str, Pinpoint | None]:
    """_step, traced where the student runs in a sandbox: (parameters after the step, the traced arrays
    matched against the reference's intermediates, None where nothing could be traced)."""
    traced_step = getattr(student, "traced_train_one_sample", None)
    if traced_step is None:
        return _step(student, params, x, label, lr), None
    try:
        after, records = traced_step(copy_params(params), x.copy(), int(label), lr)
        after = read_params(after)
    except UnusableParams as exc:
        return f"after train_one_sample the parameters are unusable: {exc}", None
    except StudentCodeError as exc:
        if exc.error.kind != "timeout":
            raise
        return _step(student, params, x, label, lr), None  # tracing must never cost a slow step its points
    layout = getattr(student, "layout", None)
    square_transposed = bool(layout is not None and layout.layers[1].transposed)
    traced = [TracedArray.from_record(r) for r in records]
    return after, Pinpoint(traced, params, x, label, square_transposed) if traced else None


def _verdicts(grads: Params | None, expected: Params, policy: GradientPolicy) -> dict[str, GradientVerdict]:
    return {n: compare_tensor(n, None if grads is None else tensor(grads, n), tensor(expected, n), policy)
            for n in TENSOR_NAMES}


def _same(a: Params, b: Params) -> bool:
    return all(np.array_equal(p, q) for p, q in zip(a[0] + a[1], b[0] + b[1], strict=True))


def _zero_pixel_problem(params: Params, after: Params, x: np.ndarray, lr: float) -> str | None:
    """Why W1 rows of zero pixels changed in the step at lr, or None (float32 rounding tolerated)."""
    before, moved = params[0][0], after[0][0]
    if moved.shape != before.shape:
        return None
    rows = x == 0
    change = np.abs(moved[rows] - before[rows])
    if not change.any():
        return None
    if np.all(change <= FLOAT32_ROUNDING * np.abs(before[rows])):
        return None  # the float32 round trip, not a step
    i, j = np.unravel_index(int(np.argmax(change)), change.shape)
    pixel = int(np.flatnonzero(rows)[i])
    moved_rows = int((change > 0).any(axis=1).sum())
    return (f"at learning rate {lr:g}, W1[{pixel}, {j}] moved by {change[i, j]:.3g} though pixel {pixel} "
            "is 0 "
            f"(dL/dW1[{pixel}, :] = x[{pixel}] * delta1 = 0); {moved_rows} such rows moved")


def probe_digit(student: Student, index: int, x: np.ndarray, label: int, settings: BackpropSettings) -> Probe:
    """Step the student from the probe point of one digit at both rates and judge each tensor."""
    params = probe_point(x, settings.seed + index)
    expected = finite_difference_gradient(params, x, label)
    notes: dict[str, list[str]] = {k: [] for k in SIDE_CHECKS}
    grads, pinpoint = {}, None
    for lr in (settings.large_learning_rate, settings.small_learning_rate):
        if index == 0 and lr == settings.large_learning_rate:
            after, pinpoint = _traced_step(student, params, x, label, lr)
        else:
            after = _step(student, params, x, label, lr)
        if isinstance(after, str):
            return Probe(index, x, label, params, None, None, expected,
                          *(2 * [{n: GradientVerdict(n, False, "missing", None, diagnosis=after)
                                  for n in TENSOR_NAMES}]))
        grads[lr] = implied_gradient(params, after, lr)
        problem = _zero_pixel_problem(params, after, x, lr)
        if problem:
            notes["Q3.zero_pixels"].append(f"digit {index + 1} (a {label}): {problem}")
        if index == 0 and lr == settings.large_learning_rate:
            again = _step(student, params, x, label, lr)
            if isinstance(again, str) or not _same(after, again):
                notes["Q3.determinism"].append(
                    f"two calls with the same parameters, digit (a {label}) and learning rate {lr:g} "
                    "gave different results: the step must depend only on its inputs (no randomness, "
                    "no state kept between calls)")
    at_large, at_small = grads[settings.large_learning_rate], grads[settings.small_learning_rate]
    policy = settings.policy
    return Probe(index, x, label, params, at_large, at_small, expected,
                  _verdicts(at_large, expected, policy), _verdicts(at_small, expected, policy), notes, pinpoint)
