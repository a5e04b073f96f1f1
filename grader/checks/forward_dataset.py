"""Q2's dataset checks: the average loss and the accuracy that feed_forward_dataset prints, read from its
output whatever the wording, against the reference at the same weights on the same images."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from grader.adapt.returns import RETURNED_FIGURES
from grader.checks.failures import SHARE, grader_failed, student_failed
from grader.checks.forward import ForwardSettings, check_result, non_finite_loss_hint, non_finite_loss_mistake
from grader.results import CheckResult
from grader.student import Params, Student, StudentCodeError
from reference import network

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


def _read(stdout: str, parse) -> tuple[Printed | None, str]:
    """(the figure parse finds in what was printed, 'Printed'), else in the line saying what feed_forward_dataset
    returned (adapt/student.py adds it when it returns its figures), 'Returned'."""
    printed, _, returned = stdout.partition(RETURNED_FIGURES)
    found = parse(printed)
    if found is not None or not returned:
        return found, "Printed"
    return parse(RETURNED_FIGURES + returned), "Returned"


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
        SHARE,
    )
    printed, word = _read(stdout, parse_average_loss)
    if printed is None:
        message = (
            f"Could not find an average loss in what feed_forward_dataset printed: {_first_lines(stdout)}; "
            f"expected a line like 'Average loss: {expected:.4f}'."
        )
        return check_result(check_id, title, 0.0, points, message, expected=expected, printed=stdout[:2000])
    # Printed rounding is forgiven up to 2 decimals: "2" or "0e1" must not cover any loss.
    tolerance = min(printed.precision, MAX_LOSS_ROUNDING) + settings.dataset_loss_rtol * abs(expected)
    details = {"got": printed.value, "expected": expected, "tolerance": tolerance, "printed": printed.text}
    if not np.isfinite(printed.value):
        hint = non_finite_loss_hint(printed.value, expected)
        message = f"{word} average loss {printed.text}, expected {expected:.6g}; {hint}."
        mistake = non_finite_loss_mistake(printed.value, expected)
        return check_result(check_id, title, 0.0, points, message, mistake_id=mistake, **details)
    if abs(printed.value - expected) <= tolerance:
        message = f"{word} average loss {printed.text} matches the reference {expected:.6g}."
        return check_result(check_id, title, 1.0, points, message, **details)
    message = (
        f"{word} average loss {printed.text}, expected {expected:.6g} "
        f"(off by {abs(printed.value - expected):.3g}, tolerance {tolerance:.2g})."
    )
    return check_result(check_id, title, 0.0, points, message, **details)


def _dataset_accuracy_result(stdout: str, expected: float, n: int, settings: ForwardSettings) -> CheckResult:
    check_id, title = "Q2.dataset.accuracy", "feed_forward_dataset: accuracy"
    points = SHARE
    printed, word = _read(stdout, lambda text: parse_accuracy(text, n))
    if printed is None:
        message = (
            f"Could not find an accuracy in what feed_forward_dataset printed: {_first_lines(stdout)}; "
            f"expected a line like 'Accuracy: {round(expected * n)} / {n} ({100 * expected:.2f} %)'."
        )
        return check_result(check_id, title, 0.0, points, message, expected=expected, printed=stdout[:2000])
    tolerance = min(printed.precision, MAX_ACCURACY_ROUNDING) + settings.dataset_accuracy_atol
    details = {"got": printed.value, "expected": expected, "tolerance": tolerance, "printed": printed.text}
    if abs(printed.value - expected) <= tolerance:
        message = (
            f"{word} accuracy {printed.text} matches the reference {100 * expected:.2f}% on {n} samples."
        )
        return check_result(check_id, title, 1.0, points, message, **details)
    message = (
        f"{word} accuracy {printed.text} = {100 * printed.value:.2f}%, expected {100 * expected:.2f}% "
        f"({round(expected * n)} / {n} correct) at the same weights."
    )
    return check_result(check_id, title, 0.0, points, message, **details)


def check_feed_forward_dataset(
    student: Student,
    params: Params,
    images: np.ndarray,
    labels: np.ndarray,
    settings: ForwardSettings | None = None,
) -> list[CheckResult]:
    """Q2.dataset.loss and Q2.dataset.accuracy: parse the printed figures, compare with network.evaluate."""
    settings = settings or ForwardSettings()
    ids = [
        ("Q2.dataset.loss", "feed_forward_dataset: average loss", SHARE),
        ("Q2.dataset.accuracy", "feed_forward_dataset: accuracy", SHARE),
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
