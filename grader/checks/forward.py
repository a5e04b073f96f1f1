"""Q2: the student's forward pass (feed_forward_sample, feed_forward_dataset) against the reference.

Also home of the small pieces every check that calls student code shares: reading a loss or a guess
in whatever form a student returns it, and turning a failure into a result whose wording says whose
code failed (`student_failed` for theirs, `grader_failed` for ours).
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from grader.results import CheckResult
from grader.student import Params, Student, StudentCodeError
from reference import network


class UnusableValue(ValueError):
    """A student's return value cannot be read as what the handout asks for (message says why)."""


# ---------------------------------------------------------------- shared by the checks that call students

_FAILURE_WORDS = {
    "exception": "Your code raised an error",
    "timeout": "Your code ran out of time",
    "memory": "Your code ran out of memory",
    "output_limit": "Your code printed or wrote too much",
    "exit": "Your code exited the process",
    "crash": "Your code crashed the Python process",
    "not_gradable": "Your submission could not be run",
}


def student_failed(
    check_id: str, title: str, max_score: float, exc: StudentCodeError, doing: str
) -> CheckResult:
    """Status 'error': the student's code failed while the grader was `doing`; keeps its traceback."""
    err = exc.error
    if err.kind == "grader":
        return grader_failed(check_id, title, max_score, exc, doing)
    lead = _FAILURE_WORDS.get(err.kind, "Your code failed")
    message = f"{lead} while {doing} ({err.where}): {err.message}"
    details = {"where": err.where, "kind": err.kind}
    return CheckResult(
        check_id, title, "error", 0.0, max_score, message, details=details, traceback=err.traceback
    )


def grader_failed(check_id: str, title: str, max_score: float, exc: BaseException, doing: str) -> CheckResult:
    """Status 'error' for a failure on the grader's side, worded so that nobody blames the student."""
    message = (
        f"The grader itself failed while {doing} ({type(exc).__name__}: {exc}). This is not a problem "
        "with your code; course staff will regrade this check."
    )
    details = {"grader_traceback": "".join(traceback.format_exception(exc))}
    return CheckResult(check_id, title, "error", 0.0, max_score, message, details=details)


def describe(value: Any) -> str:
    """Short description of a returned value for messages: type and shape, not its contents."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} ({value.dtype})"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of length {len(value)}"
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}"


def read_scalar(value: Any, what: str = "the loss") -> float:
    """A number from a float, int, 0-d / (1,) / (1, 1) array or 1-element list; else UnusableValue."""
    if isinstance(value, (bool, np.bool_)) or value is None or isinstance(value, str):
        raise UnusableValue(f"{what} is {describe(value)}, expected a number")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise UnusableValue(f"{what} is {describe(value)}, expected a number") from None
    if array.size != 1:
        raise UnusableValue(f"{what} has shape {array.shape}, expected a single number")
    return float(array.reshape(()))


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


def _result(
    check_id: str, title: str, fraction: float, points: float, message: str, *, mistake_id: str | None = None,
    **details
) -> CheckResult:
    status = "passed" if fraction >= 1.0 else "failed"
    return CheckResult(check_id, title, status, round(points * fraction, 6), points, message, details=details,
                       mistake_id=mistake_id, fix=MISTAKE_FIXES.get(mistake_id or ""))


# ---------------------------------------------------------------- Q2 settings and cases


@dataclass(frozen=True)
class ForwardSettings:
    """Points and tolerances for Q2 (defaults add up to 20 points)."""

    loss_points: float = 6.0
    prediction_points: float = 4.0
    dataset_loss_points: float = 5.0
    dataset_accuracy_points: float = 5.0
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


def relu_loss(case: ForwardCase) -> float:
    """The loss the network gives with ReLU hidden layers instead of sigmoid (a common departure)."""
    a = np.asarray(case.x, dtype=np.float64)
    weights, biases = case.params
    for w, b in zip(weights[:-1], biases[:-1], strict=True):
        a = np.maximum(0.0, a @ w + b)
    return float(network.cross_entropy(a @ weights[-1] + biases[-1], case.label))


def _is_relu(outcomes: list[_SampleOutcome], settings: ForwardSettings) -> bool:
    """Every finite wrong loss is what ReLU hidden layers give (and at least one loss is wrong)."""
    wrong = [o for o in outcomes if o.loss is not None and np.isfinite(o.loss)
             and not _loss_is_close(o.loss, o.expected_loss, settings)]
    return bool(wrong) and all(_loss_is_close(o.loss, relu_loss(o.case), settings) for o in wrong)


def _non_finite_loss_mistake(got: float, expected: float) -> str | None:
    """The mistake id behind an infinite loss where the stable loss is moderate: swapped arguments."""
    return SWAPPED_CROSS_ENTROPY if np.isposinf(got) and expected < 700 else None


def _non_finite_loss_hint(got: float, expected: float) -> str:
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
            hints.append(_non_finite_loss_hint(o.loss, o.expected_loss))
            mistakes.append(_non_finite_loss_mistake(o.loss, o.expected_loss))
        else:
            problems.append(
                f"{_case_name(i, o.case)}: got loss {o.loss:.6g}, expected {o.expected_loss:.6g} "
                f"(relative error {rel:.2g})"
            )
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
    mistake = next((m for m in mistakes if m), None)
    return _result("Q2.loss", title, fraction, settings.loss_points, message, mistake_id=mistake, cases=rows)


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
    return _result(
        "Q2.prediction", title, passed / len(rows), settings.prediction_points, message, cases=rows
    )


def check_feed_forward_sample(
    student: Student, cases: Sequence[ForwardCase], settings: ForwardSettings = ForwardSettings()
) -> list[CheckResult]:
    """Q2.loss and Q2.prediction: feed_forward_sample on each case against reference loss and argmax."""
    ids = [
        ("Q2.loss", "feed_forward_sample: loss", settings.loss_points),
        ("Q2.prediction", "feed_forward_sample: predicted class", settings.prediction_points),
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


# ---------------------------------------------------------------- feed_forward_dataset: parse what it prints

_NUMBER = r"([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf(?:inity)?|nan)"


MAX_LOSS_ROUNDING = 0.005  # the loss printed to 2 decimals
MAX_ACCURACY_ROUNDING = 0.005  # accuracy printed as a whole percent


@dataclass(frozen=True)
class Printed:
    """A number read from printed text and its precision (half a unit of the last printed digit)."""

    value: float
    precision: float
    text: str


def _printed(text: str, scale: float = 1.0) -> Printed:
    value = float(text) * scale
    mantissa = text.lower().split("e")[0]
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    exponent = int(text.lower().split("e")[1]) if "e" in text.lower() else 0
    return Printed(value, 0.5 * 10.0 ** (exponent - decimals) * scale, text)


def _lines_with(text: str, words: Sequence[str]) -> list[str]:
    return [line for line in text.splitlines() if any(w in line.lower() for w in words)]


def parse_average_loss(text: str) -> Printed | None:
    """The last number after 'loss' on a line that mentions an average/mean loss (else any 'loss' line)."""
    lines = _lines_with(text, ["loss"])
    preferred = [line for line in lines if re.search(r"aver|avg|mean", line, re.I)] or lines
    for line in reversed(preferred):
        match = re.search(r"loss\D*?" + _NUMBER, line, re.I)
        if match:
            return _printed(match.group(1))
    return None


def parse_accuracy(text: str, total: int | None = None) -> Printed | None:
    """Accuracy as a fraction 0..1 from 'N / M' (M = total preferred), 'x %', or a number after 'acc'."""
    lines = _lines_with(text, ["acc", "correct", "%"])
    for line in reversed(lines):
        ratios = [
            m
            for m in re.finditer(r"(\d+(?:\.\d*)?)\s*(?:/|out of)\s*(\d+)(?![\d.])", line)
            if float(m.group(2)) > 0 and float(m.group(1)) <= float(m.group(2))
        ]
        exact = [m for m in ratios if total is not None and int(m.group(2)) == total]
        percent = re.search(r"(\d+(?:\.\d*)?)\s*%", line)
        bare = re.search(r"acc\w*\D*?" + _NUMBER, line, re.I)
        if exact or (ratios and not percent and not bare):
            match = (exact or ratios)[-1]
            count, of = float(match.group(1)), float(match.group(2))
            return Printed(count / of, 0.5 / of, match.group(0))
        if percent:
            return _printed(percent.group(1), 0.01)
        if bare:
            number = _printed(bare.group(1))
            return number if number.value <= 1.0 else _printed(bare.group(1), 0.01)
    return None


def _first_lines(text: str, count: int = 3) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return "nothing"
    shown = " | ".join(line[:100] for line in lines[:count])
    return repr(shown) + (f" (and {len(lines) - count} more lines)" if len(lines) > count else "")


def _dataset_loss_result(stdout: str, expected: float, settings: ForwardSettings) -> CheckResult:
    check_id, title, points = (
        "Q2.dataset.loss",
        "feed_forward_dataset: average loss",
        settings.dataset_loss_points,
    )
    printed = parse_average_loss(stdout)
    if printed is None:
        message = (
            f"Could not find an average loss in what feed_forward_dataset printed: {_first_lines(stdout)}; "
            f"expected a line like 'Average loss: {expected:.4f}'."
        )
        return _result(check_id, title, 0.0, points, message, expected=expected, printed=stdout[:2000])
    # Printed rounding is forgiven up to 2 decimals: "2" or "0e1" must not cover any loss.
    tolerance = min(printed.precision, MAX_LOSS_ROUNDING) + settings.dataset_loss_rtol * abs(expected)
    details = {"got": printed.value, "expected": expected, "tolerance": tolerance, "printed": printed.text}
    if not np.isfinite(printed.value):
        hint = _non_finite_loss_hint(printed.value, expected)
        message = f"Printed average loss {printed.text}, expected {expected:.6g}; {hint}."
        mistake = _non_finite_loss_mistake(printed.value, expected)
        return _result(check_id, title, 0.0, points, message, mistake_id=mistake, **details)
    if abs(printed.value - expected) <= tolerance:
        message = f"Printed average loss {printed.text} matches the reference {expected:.6g}."
        return _result(check_id, title, 1.0, points, message, **details)
    message = (
        f"Printed average loss {printed.text}, expected {expected:.6g} "
        f"(off by {abs(printed.value - expected):.3g}, tolerance {tolerance:.2g})."
    )
    return _result(check_id, title, 0.0, points, message, **details)


def _dataset_accuracy_result(stdout: str, expected: float, n: int, settings: ForwardSettings) -> CheckResult:
    check_id, title = "Q2.dataset.accuracy", "feed_forward_dataset: accuracy"
    points = settings.dataset_accuracy_points
    printed = parse_accuracy(stdout, n)
    if printed is None:
        message = (
            f"Could not find an accuracy in what feed_forward_dataset printed: {_first_lines(stdout)}; "
            f"expected a line like 'Accuracy: {round(expected * n)} / {n} ({100 * expected:.2f} %)'."
        )
        return _result(check_id, title, 0.0, points, message, expected=expected, printed=stdout[:2000])
    tolerance = min(printed.precision, MAX_ACCURACY_ROUNDING) + settings.dataset_accuracy_atol
    details = {"got": printed.value, "expected": expected, "tolerance": tolerance, "printed": printed.text}
    if abs(printed.value - expected) <= tolerance:
        message = (
            f"Printed accuracy {printed.text} matches the reference {100 * expected:.2f}% on {n} samples."
        )
        return _result(check_id, title, 1.0, points, message, **details)
    message = (
        f"Printed accuracy {printed.text} = {100 * printed.value:.2f}%, expected {100 * expected:.2f}% "
        f"({round(expected * n)} / {n} correct) at the same weights."
    )
    return _result(check_id, title, 0.0, points, message, **details)


def check_feed_forward_dataset(
    student: Student,
    params: Params,
    images: np.ndarray,
    labels: np.ndarray,
    settings: ForwardSettings = ForwardSettings(),
) -> list[CheckResult]:
    """Q2.dataset.loss and Q2.dataset.accuracy: parse the printed figures, compare with network.evaluate."""
    ids = [
        ("Q2.dataset.loss", "feed_forward_dataset: average loss", settings.dataset_loss_points),
        ("Q2.dataset.accuracy", "feed_forward_dataset: accuracy", settings.dataset_accuracy_points),
    ]
    if not student.has("feed_forward_dataset"):
        message = "feed_forward_dataset is not defined at top level, expected def feed_forward_dataset(x, y)."
        return [CheckResult(i, t, "failed", 0.0, p, message) for i, t, p in ids]
    try:
        stdout = student.feed_forward_dataset(params, images, labels)
    except StudentCodeError as exc:
        return [student_failed(i, t, p, exc, "calling feed_forward_dataset") for i, t, p in ids]
    try:
        expected_loss, expected_accuracy = network.evaluate(*params, images, labels)
        stdout = stdout if isinstance(stdout, str) else ""
        return [
            _dataset_loss_result(stdout, expected_loss, settings),
            _dataset_accuracy_result(stdout, expected_accuracy, len(labels), settings),
        ]
    except Exception as exc:  # noqa: BLE001 - a bug here is the grader's, never the student's
        return [grader_failed(i, t, p, exc, "checking feed_forward_dataset") for i, t, p in ids]
