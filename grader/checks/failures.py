"""What every check that calls student code shares: reading a number from whatever a student returns, and
turning a failure into a result whose wording says whose code failed (`student_failed` for theirs,
`grader_failed` for ours)."""

from __future__ import annotations

import traceback
from typing import Any

import numpy as np

from grader.results import CheckResult
from grader.student import StudentCodeError

SHARE = 1.0  # a check scores the share of its points it earned (0..1); the points are the rubric's (scoring.py)


class UnusableValue(ValueError):
    """A student's return value cannot be read as what the handout asks for (message says why)."""


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
