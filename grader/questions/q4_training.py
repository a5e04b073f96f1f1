"""Q4: train_one_epoch. Its loop (20 recorded steps, and counted over a handout-length x_train) and a short
training run of the student's own pipeline against the reference's."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from grader.checks.signatures import check_signatures
from grader.checks.training import TrainingSettings
from grader.questions.base import Context, Question
from grader.results import CheckResult, GradientVerdict
from grader.student import Student

FUNCTIONS = ("train_one_epoch",)


def run(student: Student, ctx: Context) -> list[CheckResult]:
    """The loop, the short training (with the accuracy caveat when Q3 found wrong gradients), the signature."""
    loop = ctx.loop_check(student)
    short = ctx.short_training(student)
    if short.details.get("student_accuracy"):
        ctx.training.update(epochs=short.details.get("epochs"), student=short.details["student_accuracy"],
                            reference=short.details.get("reference_accuracy"))
        ctx.figures["training"] = ctx.training
    checks = [_accuracy_caveat(c, ctx.gradients, ctx.training) for c in (loop, short)]
    return checks + [check_signatures("Q4", student, FUNCTIONS)]


def _accuracy_caveat(
    check: CheckResult, gradients: dict[str, GradientVerdict], training: dict[str, Any]
) -> CheckResult:
    """Q4.training's message, plus a warning when the network trains well although Q3 found wrong gradients."""
    wrong = [name for name, v in gradients.items() if v.verdict == "wrong"]
    student, reference = training.get("student") or [], training.get("reference") or []
    if check.id != "Q4.training" or not wrong or not student or not reference or student[-1] < reference[-1]:
        return check
    note = (f" Your network trains as well as the reference although Q3 found wrong gradients "
            f"({', '.join(wrong)}): accuracy alone does not show that backpropagation is right.")
    return replace(check, message=check.message + note)



QUESTION = Question("Q4", "Q4 Training", 4, TrainingSettings, ("Q4.loop", "Q4.training", "Q4.signature"),
                    ("train_one_epoch", "train_one_sample"), run, figures=("training",))
