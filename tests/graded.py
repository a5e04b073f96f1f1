"""Graded results the test modules share: each file graded once per test process, with the shipped rubric and
the MNIST sample shipped in the package (what a newcomer's `grade` uses)."""

from __future__ import annotations

import functools
from pathlib import Path

from grader.grading import GradingData, grade_submission, prepare_data
from grader.results import SubmissionResult
from grader.rubric import Rubric, load_rubric
from reference.mnist import load_mnist, sample_path


@functools.cache
def inputs() -> tuple[Rubric, GradingData]:
    """The shipped rubric and the data cut from the shipped sample."""
    rubric = load_rubric()
    return rubric, prepare_data(rubric, load_mnist(sample_path()))


@functools.cache
def _graded(path: Path) -> SubmissionResult:
    rubric, data = inputs()
    return grade_submission(path, rubric, data)


def graded(path: str | Path) -> SubmissionResult:
    """`path` graded for real (once per process; later calls return the same result)."""
    return _graded(Path(path).resolve())
