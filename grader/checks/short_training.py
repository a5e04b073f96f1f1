"""Q4.training: the student's own pipeline trained a few epochs from the reference's initialisation, its test
accuracy per epoch against the reference's on the same data. A sanity check: per-sample SGD on raw pixels is
chaotic, so the tolerance is wide and Q3 finds subtle mistakes."""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import Future
from typing import Any

import numpy as np

from grader.checks.failures import SHARE, grader_failed, student_failed
from grader.checks.training import TrainingSettings
from grader.results import CheckResult
from grader.student import Params, Student, StudentCodeError, WatchedStep
from reference import network


def _usable_params(params: Any) -> str | None:
    """Why `params` cannot be evaluated (None if they can): three finite (n_in, n_out) / (n_out,) arrays."""
    if params is None:
        return "train_one_epoch left no weights/biases to read"
    if not isinstance(params, (tuple, list)) or len(params) != 2:
        return "train_one_epoch left weights/biases the grader cannot read"
    weights, biases = params
    sizes = network.LAYER_SIZES
    for layer, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        if layer >= len(weights) or np.shape(weights[layer]) != (n_in, n_out):
            return f"W{layer + 1} is missing or has the wrong shape after training"
        if layer >= len(biases) or np.size(biases[layer]) != n_out:
            return f"b{layer + 1} is missing or has the wrong size after training"
        if not (np.all(np.isfinite(weights[layer])) and np.all(np.isfinite(biases[layer]))):
            return f"W{layer + 1} or b{layer + 1} contains nan or inf after training"
    return None


def _training_fraction(gap: float, settings: TrainingSettings) -> float:
    if gap <= settings.accuracy_tolerance:
        return 1.0
    return max(
        0.0,
        1.0 - (gap - settings.accuracy_tolerance) / (settings.zero_credit_gap - settings.accuracy_tolerance),
    )


def _credit_rule(gap: float, fraction: float, settings: TrainingSettings) -> str:
    """How a gap below the reference became partial credit, in one sentence with the numbers."""
    full, zero = 100 * settings.accuracy_tolerance, 100 * settings.zero_credit_gap
    rule = (f"Credit is full up to {full:.0f} points below the reference and falls linearly to none at "
            f"{zero:.0f} points below")
    if fraction <= 0:
        return f"{rule}: {100 * gap:.1f} points below earns nothing."
    return (f"{rule}: {100 * gap:.1f} points below earns 1 - ({100 * gap:.1f} - {full:.0f}) / "
            f"({zero:.0f} - {full:.0f}) = {100 * fraction:.0f}% of the points.")


def _percent(values: list[float]) -> str:
    return " -> ".join(f"{100 * v:.1f}%" for v in values)


_HISTORIES: dict[str, Future] = {}
_HISTORIES_LOCK = threading.Lock()


def reference_history(init_params: Params, x, y, xt, yt, epochs: int, learning_rate: float):
    """The reference's test figures per epoch; the same for every student, so computed once per process.

    Thread-safe and computed once even when asked for from two threads (the grader starts it in the
    background while the student's code runs, and Q4 waits for it).
    """
    digest = hashlib.sha256()
    for a in [*init_params[0], *init_params[1], x, y, xt, yt]:
        digest.update(np.ascontiguousarray(a).tobytes())
    key = f"{digest.hexdigest()}/{epochs}/{learning_rate!r}"
    with _HISTORIES_LOCK:
        future = _HISTORIES.get(key)
        owner = future is None
        if owner:
            future = _HISTORIES[key] = Future()
    if owner:
        try:
            future.set_result(network.train(*init_params, x, y, xt, yt, epochs, learning_rate)[1])
        except BaseException as exc:
            future.set_exception(exc)
    return future.result()


def check_short_training(
    student: Student,
    init_params: Params,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    settings: TrainingSettings | None = None,
    watch_step: int | None = None,
    seen: list[WatchedStep] | None = None,
) -> CheckResult:
    """Q4.training: `epochs` of the student's train_one_epoch vs the reference's, test accuracy per epoch;
    `watch_step` k: the network before and after the first epoch's k-th step is appended to `seen` (Q3 compares it
    with the reference's step, checks/watched_step.py)."""
    settings = settings or TrainingSettings()
    check_id, title, points = "Q4.training", f"training {settings.epochs} epochs", SHARE
    if not student.has("train_one_epoch"):
        message = (
            "train_one_epoch is not defined at top level, expected def train_one_epoch(learning_rate=0.003)."
        )
        return CheckResult(check_id, title, "failed", 0.0, points, message)
    x, y = train_images[: settings.train_samples], train_labels[: settings.train_samples]
    xt, yt = test_images[: settings.test_samples], test_labels[: settings.test_samples]
    try:
        history = reference_history(init_params, x, y, xt, yt, settings.epochs, settings.learning_rate)
    except Exception as exc:  # noqa: BLE001
        return grader_failed(check_id, title, points, exc, "training the reference")
    details: dict[str, Any] = {
        "epochs": [h.epoch for h in history],
        "train_samples": len(y),
        "test_samples": len(yt),
        "reference_accuracy": [h.test_accuracy for h in history],
        "reference_loss": [h.test_loss for h in history],
        "student_accuracy": [history[0].test_accuracy],
        "student_loss": [history[0].test_loss],
    }
    params = init_params
    for epoch in range(1, settings.epochs + 1):
        try:
            watch = {"watch_step": watch_step} if epoch == 1 and watch_step is not None else {}
            run = student.train_one_epoch(params, x, y, settings.learning_rate, False, **watch)
            params = run.params
            if watch and run.watched is not None and seen is not None:
                seen.append(run.watched)
        except StudentCodeError as exc:
            result = student_failed(
                check_id, title, points, exc, f"training epoch {epoch} of {settings.epochs}"
            )
            return CheckResult(**{**result.to_dict(), "details": {**details, **result.details}})
        problem = _usable_params(params)
        if problem:
            message = f"After epoch {epoch}: {problem}."
            return CheckResult(check_id, title, "failed", 0.0, points, message, details=details)
        loss, accuracy = network.evaluate(*params, xt, yt)
        details["student_accuracy"].append(accuracy)
        details["student_loss"].append(loss)
    return _training_result(details, settings)


def _training_result(details: dict[str, Any], settings: TrainingSettings) -> CheckResult:
    check_id, title, points = "Q4.training", f"training {settings.epochs} epochs", SHARE
    student, reference = details["student_accuracy"], details["reference_accuracy"]
    gap = reference[-1] - student[-1]
    fraction = _training_fraction(gap, settings)
    figures = (
        f"test accuracy by epoch: yours {_percent(student)}, reference {_percent(reference)} "
        f"({details['train_samples']} training and {details['test_samples']} test samples)"
    )
    if -gap > settings.beats_reference_margin:
        message = (
            f"Your network ends {100 * -gap:.1f} points above the reference: {figures}. That is more than "
            "the spread of correct solutions: accuracy alone does not show a correct gradient; see Q3."
        )
    elif -gap > settings.accuracy_tolerance:
        message = f"Your network ends {100 * -gap:.1f} points above the reference: {figures}."
    elif fraction == 1.0:
        within = 100 * settings.accuracy_tolerance
        message = f"Your training matches the reference within {within:.0f} points: {figures}."
    else:
        message = (
            f"Your network ends {100 * gap:.1f} points below the reference (tolerance "
            f"{100 * settings.accuracy_tolerance:.0f}): {figures}. {_credit_rule(gap, fraction, settings)}"
        )
    details = {**details, "gap": gap, "full_credit_gap": settings.accuracy_tolerance,
               "zero_credit_gap": settings.zero_credit_gap}
    status = "passed" if fraction == 1.0 else "failed"
    return CheckResult(check_id, title, status, round(points * fraction, 6), points, message, details=details)
