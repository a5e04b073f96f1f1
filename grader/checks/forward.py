"""Q2: the student's forward pass (feed_forward_sample, feed_forward_dataset) against the reference."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from grader.checks.failures import SHARE, UnusableValue, describe, grader_failed, read_scalar, student_failed
from grader.results import CheckResult
from grader.student import Params, Student, StudentCodeError
from reference import network


@dataclass(frozen=True)
class Guess:
    """A predicted class read from a student's guess, and the form it came in."""

    label: int
    form: str  # "an integer", "a one-hot vector of shape (1, 10)", "scores of shape (10,) (argmax taken)"


def read_guess(value: Any, classes: int = 10) -> Guess:
    """A class from an int, a one-hot (10,) / (1, 10) vector or probabilities (argmax); else UnusableValue."""
    if isinstance(value, (bool, np.bool_)) or value is None or isinstance(value, str):
        raise UnusableValue(f"the guess is {describe(value)}, expected a one-hot vector or a class")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise UnusableValue(f"the guess is {describe(value)}, expected a one-hot vector or a class") from None
    if array.size == 1:
        number = float(array.reshape(()))
        if not number.is_integer() or not 0 <= number < classes:
            raise UnusableValue(f"the guess is the number {number:g}, expected a class 0..{classes - 1}")
        return Guess(int(number), "an integer")
    if array.size != classes:
        raise UnusableValue(f"the guess has shape {array.shape}, expected ({classes},) one-hot or a class")
    flat = array.ravel()
    if not np.all(np.isfinite(flat)):
        raise UnusableValue(f"the guess contains nan or inf: {np.array2string(flat, precision=3)}")
    is_one_hot = np.count_nonzero(flat == 1.0) == 1 and np.count_nonzero(flat) == 1
    kind = "a one-hot vector" if is_one_hot else "scores (argmax taken)"
    return Guess(int(np.argmax(flat)), f"{kind} of shape {array.shape}")


def check_result(
    check_id: str, title: str, fraction: float, points: float, message: str, *, mistake_id: str | None = None,
    **details
) -> CheckResult:
    status = "passed" if fraction >= 1.0 else "failed"
    return CheckResult(check_id, title, status, round(points * fraction, 6), points, message, details=details,
                       mistake_id=mistake_id, fix=MISTAKE_FIXES.get(mistake_id or ""))


# ---------------------------------------------------------------- Q2 settings and cases


@dataclass(frozen=True)
class ForwardSettings:
    """Tolerances for Q2."""

    loss_rtol: float = 1e-5  # float32 students land near 1e-7
    loss_atol: float = 1e-8
    dataset_loss_rtol: float = 1e-3  # on top of the printed precision
    dataset_accuracy_atol: float = 0.002  # fraction; on top of the printed precision


@dataclass(frozen=True)
class ForwardCase:
    """One probe: parameters (canonical), a sample (784,) and its label; `name` says which point it is."""

    params: Params
    x: np.ndarray
    label: int
    name: str = ""


# ---------------------------------------------------------------- feed_forward_sample


@dataclass(frozen=True)
class _SampleOutcome:
    case: ForwardCase
    expected_loss: float
    expected_class: int
    loss: float | None = None
    guess: Guess | None = None
    loss_problem: str | None = None
    guess_problem: str | None = None


def _run_case(student: Student, case: ForwardCase) -> _SampleOutcome:
    weights, biases = case.params
    expected_loss = float(network.loss(weights, biases, case.x, case.label))
    expected_class = int(network.predict(weights, biases, case.x))
    returned = student.feed_forward_sample(case.params, case.x, case.label)
    outcome = _SampleOutcome(case, expected_loss, expected_class)
    if not isinstance(returned, (tuple, list)) or len(returned) != 2:
        problem = f"feed_forward_sample returned {describe(returned)}, expected a pair (loss, one_hot_guess)"
        return _SampleOutcome(
            case, expected_loss, expected_class, loss_problem=problem, guess_problem=problem
        )
    loss = guess = loss_problem = guess_problem = None
    try:
        loss = read_scalar(returned[0])
    except UnusableValue as exc:
        loss_problem = str(exc)
    try:
        guess = read_guess(returned[1])
    except UnusableValue as exc:
        guess_problem = str(exc)
    return _SampleOutcome(
        outcome.case, expected_loss, expected_class, loss, guess, loss_problem, guess_problem
    )


def _case_name(index: int, case: ForwardCase) -> str:
    where = f", {case.name}" if case.name else ""
    return f"sample {index} (label {case.label}{where})"


def _loss_is_close(got: float, expected: float, settings: ForwardSettings) -> bool:
    return bool(np.isfinite(got)) and abs(got - expected) <= settings.loss_atol + settings.loss_rtol * abs(
        expected
    )


SWAPPED_CROSS_ENTROPY = "cross_entropy_arguments_swapped"
MISTAKE_FIXES = {SWAPPED_CROSS_ENTROPY: "Call cross_entropy_loss(y, yHat) with the one-hot label first and the "
                 "softmax output second: swapped, it computes -sum(yHat * log(y)), which is infinite."}


RELU_HIDDEN_LAYERS = "relu_hidden_layers"
MISTAKE_FIXES[RELU_HIDDEN_LAYERS] = ("The hidden layers must be sigmoid, as the handout asks: a = sigmoid(z), not "
                                     "np.maximum(0, z) (ReLU); only the output layer is softmax.")


def relu_probability(case: ForwardCase) -> float:
    """The label's softmax probability with ReLU hidden layers instead of sigmoid (a common departure)."""
    a = np.asarray(case.x, dtype=np.float64)
    weights, biases = case.params
    for w, b in zip(weights[:-1], biases[:-1], strict=True):
        a = np.maximum(0.0, a @ w + b)
    return float(network.softmax(a @ weights[-1] + biases[-1])[case.label])


def _is_relu(outcomes: list[_SampleOutcome], settings: ForwardSettings) -> bool:
    """Every finite wrong loss is what ReLU hidden layers give, where ReLU's probability of the label is not so
    small that an epsilon in the student's log decides it (-log(p + 1e-12)); at least one such loss."""
    compared = 0
    for o in outcomes:
        if o.loss is None or not np.isfinite(o.loss) or _loss_is_close(o.loss, o.expected_loss, settings):
            continue
        p = relu_probability(o.case)
        if p < 1e-6:
            continue
        if not _loss_is_close(o.loss, -np.log(p), settings):
            return False
        compared += 1
    return compared > 0


LOSS_SCALED = "loss_scaled_by_constant"
MISTAKE_FIXES[LOSS_SCALED] = ("The handout's loss is the cross-entropy summed over the 10 outputs, "
                              "-np.sum(y * np.log(yHat)), with no constant factor (not np.mean).")


def loss_factor(outcomes: list[_SampleOutcome], settings: ForwardSettings) -> float | None:
    """The one factor c (not 1, positive) with loss = c * the reference's loss on every sample, at least two of
    them wrong (a mean over the 10 outputs gives c = 0.1), or None."""
    pairs = [(o.loss, o.expected_loss) for o in outcomes if o.loss is not None and o.expected_loss > 0]
    if len(pairs) != len(outcomes) or not all(np.isfinite(got) for got, _ in pairs):
        return None
    if sum(not _loss_is_close(got, want, settings) for got, want in pairs) < 2:
        return None
    c = pairs[0][0] / pairs[0][1]
    if not c > 0 or abs(c - 1) <= settings.loss_rtol:
        return None
    return c if all(abs(got - c * want) <= settings.loss_rtol * c * want for got, want in pairs) else None


MAX_LOG_GUARD = 1e-4  # a larger epsilon inside the log is more than a guard against log(0)


def log_guard(outcomes: list[_SampleOutcome], settings: ForwardSettings) -> float | None:
    """The one small epsilon (0 < eps <= MAX_LOG_GUARD) with loss = -log(p + eps) on every sample whose loss is off
    (np.log(yHat + eps), a guard against log(0)), or None."""
    found = []
    for o in outcomes:
        if o.loss is None or not np.isfinite(o.loss) or not np.isfinite(o.expected_loss):
            return None
        if not _loss_is_close(o.loss, o.expected_loss, settings):
            found.append(float(np.exp(-o.loss) - np.exp(-o.expected_loss)))
    if not found or not 0 < min(found) <= max(found) <= min(MAX_LOG_GUARD, 1.01 * min(found)):
        return None
    return float(np.median(found))


def loss_factor_words(c: float) -> str:
    """'a tenth of it (a mean over the 10 outputs, not the sum)', or 'c times it'."""
    if abs(c * 10 - 1) <= 1e-6:
        return "a tenth of it (a mean over the 10 outputs, not the sum)"
    return f"{c:.4g} times it"


def non_finite_loss_mistake(got: float, expected: float) -> str | None:
    """The mistake id behind an infinite loss where the stable loss is moderate: swapped arguments."""
    return SWAPPED_CROSS_ENTROPY if np.isposinf(got) and expected < 700 else None


def non_finite_loss_hint(got: float, expected: float) -> str:
    """Why a loss is inf or nan where the stable loss is finite, in terms of the handout's helpers."""
    if np.isposinf(got) and expected < 700:
        return (
            "an infinite loss where the probabilities are far from 0 is what -sum(yHat * log(y)) gives: "
            "cross_entropy_loss(y, yHat) takes the one-hot label first, then the softmax output"
        )
    if np.isposinf(got):
        return "the softmax probability of the label underflows to 0 here and log(0) = -inf"
    return "nan usually comes from exp overflowing (inf / inf) in softmax or 0 * log(0)"


def _listed(problems: list[str], shown: int = 3) -> str:
    more = f" (and {len(problems) - shown} more)" if len(problems) > shown else ""
    return "; ".join(problems[:shown]) + more + "."


def _loss_result(outcomes: list[_SampleOutcome], settings: ForwardSettings) -> CheckResult:
    title = "feed_forward_sample: loss"
    rows, problems, hints, mistakes = [], [], [], []
    for i, o in enumerate(outcomes):
        ok = o.loss is not None and _loss_is_close(o.loss, o.expected_loss, settings)
        rel = (
            None
            if o.loss is None or not np.isfinite(o.loss)
            else abs(o.loss - o.expected_loss) / max(abs(o.expected_loss), 1e-300)
        )
        rows.append(
            {
                "case": _case_name(i, o.case),
                "got": o.loss,
                "expected": o.expected_loss,
                "rel_error": rel,
                "ok": ok,
            }
        )
        if ok:
            continue
        if o.loss_problem:
            problems.append(f"{_case_name(i, o.case)}: {o.loss_problem}")
        elif not np.isfinite(o.loss):
            problems.append(f"{_case_name(i, o.case)}: got loss {o.loss}, expected {o.expected_loss:.6g}")
            hints.append(non_finite_loss_hint(o.loss, o.expected_loss))
            mistakes.append(non_finite_loss_mistake(o.loss, o.expected_loss))
        else:
            problems.append(
                f"{_case_name(i, o.case)}: got loss {o.loss:.6g}, expected {o.expected_loss:.6g} "
                f"(relative error {rel:.2g})"
            )
    guard = log_guard(outcomes, settings) if problems else None
    if guard is not None:  # tolerated: the losses are the handout's but for an epsilon against log(0)
        worst = max(rows, key=lambda r: r["rel_error"] or 0.0)
        message = (f"The loss matches the reference on all {len(rows)} samples but for the {guard:.2g} your "
                   f"cross_entropy_loss adds inside the log (a guard against log(0), tolerated; worst relative "
                   f"difference {worst['rel_error']:.2g}, {worst['case']}).")
        return check_result("Q2.loss", title, 1.0, SHARE, message, cases=rows, log_guard=guard)
    passed = sum(r["ok"] for r in rows)
    fraction = passed / len(rows)
    if not problems:
        worst = max(rows, key=lambda r: r["rel_error"] or 0.0)
        message = (
            f"The loss matches the reference on all {len(rows)} samples "
            f"(worst relative error {worst['rel_error']:.2g}, {worst['case']})."
        )
    else:
        message = f"The loss is wrong on {len(rows) - passed} of {len(rows)} samples: " + _listed(problems)
        # One explanation per kind of non-finite loss, not one per sample.
        message += "".join(f" {h[0].upper()}{h[1:]}." for h in dict.fromkeys(hints))
    if problems and _is_relu(outcomes, settings):
        mistakes.insert(0, RELU_HIDDEN_LAYERS)
        message += (" These are the losses of ReLU hidden layers: the handout's hidden layers are sigmoid, "
                    "a = sigmoid(z).")
    factor = loss_factor(outcomes, settings) if problems else None
    if factor is not None:
        mistakes.insert(0, LOSS_SCALED)
        message += (f" On every sample your loss is the handout's cross-entropy times {factor:.4g}, "
                    f"{loss_factor_words(factor)}: the handout's loss is -sum(y * log(yHat)).")
    mistake = next((m for m in mistakes if m), None)
    return check_result("Q2.loss", title, fraction, SHARE, message, mistake_id=mistake, cases=rows)


def _prediction_result(outcomes: list[_SampleOutcome], settings: ForwardSettings) -> CheckResult:
    title = "feed_forward_sample: predicted class"
    rows, problems = [], []
    forms = sorted({o.guess.form for o in outcomes if o.guess is not None})
    for i, o in enumerate(outcomes):
        got = None if o.guess is None else o.guess.label
        ok = got == o.expected_class
        rows.append({"case": _case_name(i, o.case), "got": got, "expected": o.expected_class, "ok": ok})
        if o.guess_problem:
            problems.append(f"{_case_name(i, o.case)}: {o.guess_problem}")
        elif not ok:
            problems.append(f"{_case_name(i, o.case)}: got class {got}, expected class {o.expected_class}")
    answered_label = [o.guess is not None and o.guess.label == o.case.label for o in outcomes]
    reference_label = [o.expected_class == o.case.label for o in outcomes]
    passed = sum(r["ok"] for r in rows)
    form_note = f" Your guess came as {' and '.join(forms)}." if forms else ""
    if not problems:
        message = f"The predicted class matches the reference on all {len(rows)} samples.{form_note}"
    else:
        message = f"The predicted class is wrong on {len(rows) - passed} of {len(rows)} samples: "
        message += _listed(problems) + form_note
        if all(answered_label) and not all(reference_label):
            message += " Your guess is always the true label: return the network's argmax, not y."
    return check_result(
        "Q2.prediction", title, passed / len(rows), SHARE, message, cases=rows
    )


def check_feed_forward_sample(
    student: Student, cases: Sequence[ForwardCase], settings: ForwardSettings = ForwardSettings()
) -> list[CheckResult]:
    """Q2.loss and Q2.prediction: feed_forward_sample on each case against reference loss and argmax."""
    ids = [
        ("Q2.loss", "feed_forward_sample: loss", SHARE),
        ("Q2.prediction", "feed_forward_sample: predicted class", SHARE),
    ]
    if not student.has("feed_forward_sample"):
        message = (
            "feed_forward_sample is not defined at top level, expected def feed_forward_sample(sample, y)."
        )
        return [CheckResult(i, t, "failed", 0.0, p, message) for i, t, p in ids]
    try:
        outcomes = [_run_case(student, case) for case in cases]
    except StudentCodeError as exc:
        return [student_failed(i, t, p, exc, "calling feed_forward_sample") for i, t, p in ids]
    except Exception as exc:  # noqa: BLE001 - anything else is the grader's fault, reported as such
        return [grader_failed(i, t, p, exc, "checking feed_forward_sample") for i, t, p in ids]
    return [_loss_result(outcomes, settings), _prediction_result(outcomes, settings)]
