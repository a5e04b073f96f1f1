"""Informational checks of the handout's helpers: sigmoid, dsigmoid, softmax, cross_entropy_loss, one-hot.

Each helper is called on ordinary and extreme inputs (sigmoid(-1000), softmax of [1000, 0, ...]) and compared
with the reference; 0 points by default (the helpers come with the handout), the rubric can give points.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from grader.checks.failures import SHARE, UnusableValue, describe, grader_failed, read_scalar, student_failed
from grader.results import CheckResult
from grader.student import Student, StudentCodeError
from reference import network


@dataclass(frozen=True)
class HelperSettings:
    """Tolerances for the helper checks."""

    rtol: float = 1e-6
    atol: float = 1e-12


@dataclass(frozen=True)
class Probe:
    """One call of a helper: its arguments, the expected value, and how to name it in a message."""

    args: tuple[Any, ...]
    expected: Any
    label: str


class Mismatch(Exception):
    """A helper's answer differs from the reference; the message says how."""


def _array(value: Any, what: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise Mismatch(f"{what} returned {describe(value)}, expected an array of numbers") from None
    return array


def _compare_arrays(got: Any, expected: np.ndarray, label: str, settings: HelperSettings) -> str | None:
    """Shape (a leading/trailing axis of 1 tolerated), finiteness, then values; returns a note or raises."""
    array = _array(got, label)
    if array.shape != expected.shape:
        if array.size != expected.size:
            raise Mismatch(f"{label} has shape {array.shape}, expected {expected.shape}")
        array = array.reshape(expected.shape)
    bad = ~np.isfinite(array)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise Mismatch(
            f"{label} contains {array.ravel()[i]} at index {i}, expected {expected.ravel()[i]:.6g}"
        )
    error = np.abs(array - expected)
    limit = settings.atol + settings.rtol * np.abs(expected)
    if np.any(error > limit):
        i = int(np.argmax(error - limit))
        raise Mismatch(
            f"{label}: got {array.ravel()[i]:.6g} at index {i}, expected {expected.ravel()[i]:.6g} "
            f"(largest error {error.max():.2g})"
        )
    return None


def _sigmoid_probes() -> list[Probe]:
    ordinary = np.linspace(-8.0, 8.0, 17)
    extreme = np.array([-1000.0, -745.0, -50.0, 0.0, 50.0, 745.0, 1000.0])
    matrix = np.linspace(-3.0, 3.0, 12).reshape(3, 4)
    return [
        Probe((ordinary,), network.sigmoid(ordinary), "sigmoid(linspace(-8, 8, 17))"),
        Probe((extreme,), network.sigmoid(extreme), "sigmoid([-1000, -745, -50, 0, 50, 745, 1000])"),
        Probe((matrix,), network.sigmoid(matrix), "sigmoid of a (3, 4) array"),
    ]


def _dsigmoid_probes() -> list[Probe]:
    ordinary = np.linspace(-6.0, 6.0, 13)
    extreme = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    return [
        Probe((ordinary,), network.sigmoid_prime(ordinary), "dsigmoid(linspace(-6, 6, 13))"),
        Probe((extreme,), network.sigmoid_prime(extreme), "dsigmoid([-1000, -50, 0, 50, 1000])"),
    ]


def _softmax_probes() -> list[Probe]:
    ordinary = np.random.default_rng(7).normal(0.0, 3.0, 10)
    spike = np.array([1000.0] + [0.0] * 9)
    flat = np.full(10, 1000.0)
    low = np.array([-1000.0] * 9 + [0.0])
    return [
        Probe((ordinary,), network.softmax(ordinary), "softmax of 10 numbers ~ N(0, 9)"),
        Probe((spike,), network.softmax(spike), "softmax([1000, 0, ..., 0])"),
        Probe((flat,), network.softmax(flat), "softmax([1000] * 10)"),
        Probe((low,), network.softmax(low), "softmax([-1000] * 9 + [0])"),
    ]


def _cross_entropy_probes() -> list[Probe]:
    probabilities = network.softmax(np.random.default_rng(8).normal(0.0, 2.0, 10))
    tiny = np.full(10, (1.0 - 1e-300) / 9)
    tiny[4] = 1e-300
    return [
        Probe(
            (network.one_hot(3), probabilities),
            -np.log(probabilities[3]),
            "cross_entropy_loss(one_hot(3), softmax output)",
        ),
        Probe(
            (network.one_hot(4), tiny),
            -np.log(1e-300),
            "cross_entropy_loss(one_hot(4), yHat with yHat[4] = 1e-300)",
        ),
    ]


def _one_hot_probes() -> list[Probe]:
    return [
        Probe((label, 10), network.one_hot(label), f"integer_to_one_hot({label}, 10)") for label in (0, 3, 9)
    ]


def _dsigmoid_takes_activation(student: Student) -> bool:
    """True if dsigmoid(a) = a * (1 - a): the helper expects the activation, not the pre-activation."""
    a = np.linspace(0.05, 0.95, 7)
    try:
        got = np.asarray(student.call_helper("dsigmoid", a), dtype=np.float64).reshape(a.shape)
    except (StudentCodeError, TypeError, ValueError):
        return False
    return bool(np.allclose(got, a * (1.0 - a), rtol=1e-6, atol=1e-12))


def _cross_entropy_swapped(student: Student) -> bool:
    """True if cross_entropy_loss(yHat, y) gives the right value: the student's order is (yHat, y)."""
    probabilities = network.softmax(np.linspace(-1.0, 1.0, 10))
    try:
        got = read_scalar(student.call_helper("cross_entropy_loss", probabilities, network.one_hot(2)))
    except (StudentCodeError, UnusableValue):
        return False
    return bool(np.isclose(got, -np.log(probabilities[2]), rtol=1e-6))


def _check_scalar(got: Any, expected: float, label: str, settings: HelperSettings) -> None:
    try:
        value = read_scalar(got, f"{label}'s result")
    except UnusableValue as exc:
        raise Mismatch(str(exc)) from None
    if not np.isfinite(value):
        raise Mismatch(f"{label} is {value}, expected {expected:.6g}")
    if abs(value - expected) > settings.atol + settings.rtol * abs(expected):
        raise Mismatch(f"{label}: got {value:.6g}, expected {expected:.6g}")


@dataclass(frozen=True)
class _Helper:
    name: str
    check_id: str
    probes: Callable[[], list[Probe]]
    scalar: bool = False


_HELPERS = (
    _Helper("sigmoid", "helpers.sigmoid", _sigmoid_probes),
    _Helper("dsigmoid", "helpers.dsigmoid", _dsigmoid_probes),
    _Helper("softmax", "helpers.softmax", _softmax_probes),
    _Helper(
        "cross_entropy_loss",
        "helpers.cross_entropy_loss",
        _cross_entropy_probes,
        scalar=True,
    ),
    _Helper("integer_to_one_hot", "helpers.integer_to_one_hot", _one_hot_probes),
)


def _hint(student: Student, helper: str) -> str:
    """A sentence naming a known mistake, when the student's helper shows it."""
    if helper == "dsigmoid" and _dsigmoid_takes_activation(student):
        return (
            " Your dsigmoid(x) returns x * (1 - x): it expects the activation sigmoid(z). The handout's "
            "dsigmoid takes the pre-activation z and returns sigmoid(z) * (1 - sigmoid(z)); make sure your "
            "backpropagation passes it what it expects (Q3 checks the gradient itself)."
        )
    if helper == "cross_entropy_loss" and _cross_entropy_swapped(student):
        return (
            " Your cross_entropy_loss gives the right value when called as (yHat, y): the handout's order "
            "is cross_entropy_loss(y, yHat), the one-hot label first."
        )
    if helper == "softmax":
        return (
            " Subtract the maximum before exp (softmax(x) = softmax(x - max(x))) so that exp cannot overflow."
        )
    if helper == "sigmoid":
        return (
            " Use a numerically stable form, e.g. np.where(x >= 0, 1 / (1 + exp(-x)), exp(x) / (1 + exp(x)))."
        )
    return ""


def check_helper(student: Student, helper: str, settings: HelperSettings = HelperSettings()) -> CheckResult:
    """One helper (e.g. 'sigmoid') against the reference on ordinary and extreme inputs."""
    spec = next(h for h in _HELPERS if h.name == helper)
    points, title = SHARE, f"helper {helper}"
    if not student.has(helper):
        message = f"{helper} is not defined at top level (the handout defines it)."
        return CheckResult(spec.check_id, title, "failed", 0.0, points, message)
    probes = spec.probes()
    try:
        for probe in probes:
            got = student.call_helper(helper, *probe.args)
            if spec.scalar:
                _check_scalar(got, float(probe.expected), probe.label, settings)
            else:
                _compare_arrays(got, np.asarray(probe.expected, dtype=np.float64), probe.label, settings)
    except Mismatch as exc:
        message = f"{exc}.{_hint(student, helper)}"
        return CheckResult(
            spec.check_id, title, "failed", 0.0, points, message, details={"probe": probe.label}
        )
    except StudentCodeError as exc:
        return student_failed(spec.check_id, title, points, exc, f"calling {probe.label}")
    except Exception as exc:  # noqa: BLE001 - the grader's own failure, reported as such
        return grader_failed(spec.check_id, title, points, exc, f"checking {helper}")
    message = f"{helper} matches the reference on {len(probes)} inputs, extreme ones included."
    return CheckResult(
        spec.check_id, title, "passed", points, points, message, details={"probes": [p.label for p in probes]}
    )


def check_helpers(student: Student, settings: HelperSettings = HelperSettings()) -> list[CheckResult]:
    """All five helpers, in the handout's order."""
    return [check_helper(student, h.name, settings) for h in _HELPERS]
