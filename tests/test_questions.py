"""grader/questions/: one module per question, and the package's list is the only place that enumerates them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import grader.questions as questions
from grader.grading import grade_submission
from grader.questions import Context, Question
from grader.results import CheckResult
from grader.rubric import RubricError, load_rubric

ROOT = Path(__file__).resolve().parents[1]


def test_the_package_lists_every_question_in_report_order_with_unique_check_ids():
    assert [q.id for q in questions.QUESTIONS] == ["helpers", "Q1", "Q2", "Q3", "Q4"]
    ids = [c for q in questions.QUESTIONS for c in q.checks]
    assert len(ids) == len(set(ids)) and all(c.split(".")[0] == q.id for q in questions.QUESTIONS for c in q.checks)


def test_the_shipped_rubric_covers_exactly_the_questions_and_their_checks():
    rubric = load_rubric()
    assert set(rubric.questions) == {q.id for q in questions.QUESTIONS}
    for q in questions.QUESTIONS:
        assert set(rubric.questions[q.id].checks) == set(q.checks), q.id


@dataclass(frozen=True)
class ActivationSettings:
    """A throw-away question's settings: which input to try."""

    z: float = 0.0


def _q5(student, ctx: Context) -> list[CheckResult]:
    """Q5 (a throw-away question): sigmoid(z) is 1 / (1 + e^-z) at the rubric's z."""
    z = ctx.settings["Q5"].z
    got = float(np.asarray(student.call_helper("sigmoid", np.array([z]))).ravel()[0])
    ok = abs(got - 0.5) < 1e-12 if z == 0 else True
    return [CheckResult("Q5.sigmoid_at_zero", "sigmoid(0) is 1/2", "passed" if ok else "failed", float(ok), 1.0,
                        f"sigmoid({z:g}) = {got:g}.")]


Q5 = Question("Q5", "Q5 Activation", 5, ActivationSettings, ("Q5.sigmoid_at_zero",), (), _q5)


def test_adding_a_question_is_one_module_and_its_rubric_section(monkeypatch, tmp_path, data):
    monkeypatch.setattr(questions, "QUESTIONS", (*questions.QUESTIONS, Q5))
    text = (ROOT / "grader" / "rubric.yaml").read_text().replace("total: 100", "total: 102")
    text += ('\n  Q5:\n    title: "Q5 Activation"\n    checks:\n      Q5.sigmoid_at_zero: 2\n'
             '    settings:\n      z: 0.0\n')
    path = tmp_path / "rubric.yaml"
    path.write_text(text)
    rubric = load_rubric(path)
    result = grade_submission(ROOT / "reference" / "solution.py", rubric, data)
    q5 = next(q for q in result.questions if q.id == "Q5")
    assert [c.id for c in q5.checks] == ["Q5.sigmoid_at_zero"] and q5.score == 2 and result.score == 102


def test_a_rubric_naming_a_question_no_module_defines_is_refused(tmp_path):
    text = (ROOT / "grader" / "rubric.yaml").read_text() + '\n  Q5:\n    title: "Q5"\n    checks:\n      Q5.x: 0\n'
    path = tmp_path / "rubric.yaml"
    path.write_text(text)
    with pytest.raises(RubricError, match="unknown question"):
        load_rubric(path)
