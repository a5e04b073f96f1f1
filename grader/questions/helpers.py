"""The handout's helper functions (sigmoid, dsigmoid, softmax, cross_entropy_loss, integer_to_one_hot)."""

from __future__ import annotations

from grader.checks.helpers import HelperSettings, check_helpers
from grader.questions.base import Context, Question
from grader.results import CheckResult
from grader.student import Student

NAMES = ("sigmoid", "dsigmoid", "softmax", "cross_entropy_loss", "integer_to_one_hot")


def run(student: Student, ctx: Context) -> list[CheckResult]:
    """Each helper against the reference, at ordinary and extreme inputs."""
    return check_helpers(student, ctx.settings["helpers"])


QUESTION = Question("helpers", "Helper functions (informational)", 0, HelperSettings,
                    tuple(f"helpers.{name}" for name in NAMES), NAMES, run)
