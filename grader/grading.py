"""Grade one submission: run it in the sandbox, run every question's checks, score them by the rubric."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from grader import __version__, questions
from grader.adapt.build import build_student
from grader.adapt.student import SECONDS_PER_SAMPLE
from grader.checks.short_training import reference_history
from grader.checks.training import TrainingSettings
from grader.data import GradingData, prepare_data
from grader.problems import problem_labels
from grader.questions import Context, guarded
from grader.results import CheckResult, GradientVerdict, QuestionResult, RunError, SubmissionResult
from grader.rubric import Rubric
from grader.sandbox import Sandbox
from grader.scoring import score_question
from grader.student import Student
from grader.submission import NotGradable, load_submission
from reference import network

__all__ = ["GradingData", "grade_submission", "prepare_data", "run_checks"]


def grade_submission(
    path: str | Path,
    rubric: Rubric,
    data: GradingData,
    *,
    name: str | None = None,
    visible_only: bool = False,
    hide: Sequence[str | Path] = (),
) -> SubmissionResult:
    """Grade one .py/.ipynb file; never raises on anything the student did."""
    started = time.monotonic()
    path = Path(path)
    submission = load_submission(path)
    header = _header(path, name or path.stem, rubric)
    if isinstance(submission, NotGradable):
        error = RunError("not_gradable", path.name, f"not gradable: {submission.reason}")
        questions = tuple(score_question(q, [], rubric) for q in _question_ids(rubric))
        return _finish(header, questions, errors=(error,), problems=problem_labels(submission, (error,)),
                       started=started, visible_only=visible_only)

    _start_reference_training(rubric, data)
    limits = rubric.limits
    # Q4 trains the student's code for a few epochs: give a long (e.g. --full) run the time it needs.
    epochs = _q4_settings(rubric, data).epochs
    needed = (epochs + 1) * len(data.train_labels) * SECONDS_PER_SAMPLE + rubric.limits.total_timeout_s
    limits = replace(limits, total_timeout_s=max(limits.total_timeout_s, needed))
    with Sandbox(submission, data.toplevel, limits, hide=hide, while_starting=_import_what_checks_need) as box:
        run = box.run_cells()
        student = build_student(box, run)
        variant = int(hashlib.sha256(path.read_bytes()).hexdigest()[:12], 16)
        checks, gradients, training, figures = run_checks(student, rubric, data, variant)
        protections = box.protections()
        errors = tuple(run.errors) + _problems_as_errors(student)
        adaptations = tuple(getattr(student, "adaptations", ()))
    questions = tuple(score_question(q, checks.get(q, []), rubric) for q in _question_ids(rubric))
    return _finish(header, questions, gradients=gradients, training=training, errors=errors,
                   problems=problem_labels(submission, errors),
                   adaptations=adaptations, protections=protections, figures=figures,
                   started=started, visible_only=visible_only)


def _import_what_checks_need() -> None:
    """scipy.special (Q1's distribution tests; 0.1 s), imported while the sandbox's child boots instead of in Q1."""
    try:
        import scipy.special  # noqa: F401
    except Exception:  # noqa: BLE001, S110 - Q1 imports it again and reports the failure there
        pass


def _q4_settings(rubric: Rubric, data: GradingData) -> Any:
    """Q4's settings, sized to the data prepared for it (all of it with --full)."""
    settings = rubric.questions["Q4"].settings if "Q4" in rubric.questions else TrainingSettings()
    return replace(settings, train_samples=len(data.train_labels), test_samples=len(data.test_labels))


def _start_reference_training(rubric: Rubric, data: GradingData) -> None:
    """Train the reference for Q4 on a second thread while the student's code runs in its child.

    The parent only waits on the child meanwhile, so on two cores this hides the reference's training.
    """
    settings = _q4_settings(rubric, data)  # sized to the prepared data: Q4 trains on all of it
    threading.Thread(
        target=reference_history,
        args=(network.init_params(), data.train_images, data.train_labels, data.test_images, data.test_labels,
              settings.epochs, settings.learning_rate),
        daemon=True,
    ).start()


def run_checks(
    student: Student, rubric: Rubric, data: GradingData, variant: int = 0, only: str | None = None
) -> tuple[dict[str, list[CheckResult]], dict[str, GradientVerdict], dict[str, Any], dict[str, Any]]:
    """Every question's checks on one student (or only the question `only`), each question on its own: a
    crash costs only that question. -> (checks per question, Q3's verdicts, Q4's training figures, figures)."""
    settings = {q.id: (rubric.questions[q.id].settings if q.id in rubric.questions else q.settings())
                for q in questions.QUESTIONS}
    settings["Q4"] = _q4_settings(rubric, data)
    ctx = Context(data, settings, variant)
    checks = {q.id: guarded(q.id, lambda q=q: q.run(student, ctx))
              for q in questions.QUESTIONS if only is None or q.id == only}
    return checks, ctx.gradients, ctx.training, ctx.figures


def _problems_as_errors(student: Student) -> tuple[RunError, ...]:
    return tuple(RunError("adaptation", "reading your code", p) for p in getattr(student, "problems", ()))


def _question_ids(rubric: Rubric) -> list[str]:
    return [q.id for q in questions.QUESTIONS if q.id in rubric.questions]


def _header(path: Path, name: str, rubric: Rubric) -> dict[str, Any]:
    return {"submission": name, "path": str(path), "rubric": rubric.name, "rubric_sha256": rubric.sha256,
            "grader_version": __version__,
            "graded_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat()}


def _finish(header: dict[str, Any], questions: tuple[QuestionResult, ...], *, started: float,
            visible_only: bool, **fields: Any) -> SubmissionResult:
    if visible_only:
        # A grader failure stays visible: hiding it would show a question with nothing in it.
        questions = tuple(replace(q, checks=tuple(c for c in q.checks
                                                  if c.visibility == "visible" or c.id.endswith(".grader")))
                          for q in questions)
    return SubmissionResult(questions=questions, duration_s=round(time.monotonic() - started, 3),
                            **header, **fields)
