"""Scores: a pure function of the rubric, the checks' verdicts and the staff's overrides."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from grader.results import CheckResult, QuestionResult, StaffAdjustment, SubmissionResult
from grader.rubric import Rubric

if TYPE_CHECKING:
    from grader.overrides import Override


def earned_fraction(check: CheckResult) -> float:
    """The share of its points a check earned, 0..1 (a 0-point check counts as 1 when passed)."""
    if check.max_score > 0:
        return min(max(check.score / check.max_score, 0.0), 1.0)
    return 1.0 if check.status == "passed" else 0.0


def apply_rubric(check: CheckResult, rubric: Rubric) -> CheckResult:
    """The check rescaled to the rubric's points and visibility; checks the rubric omits are worth 0."""
    rule = rubric.rule(check.id)
    points = rule.points if rule else 0.0
    visibility = rule.visibility if rule else check.visibility
    return replace(
        check, score=round(earned_fraction(check) * points, 4), max_score=points, visibility=visibility
    )


def score_question(
    qid: str, checks: list[CheckResult], rubric: Rubric, title: str | None = None
) -> QuestionResult:
    """A question's checks, scored by the rubric, with rubric checks that never ran added as skipped 0s."""
    scored = [apply_rubric(c, rubric) for c in checks]
    seen = {c.id for c in scored}
    rule = rubric.questions.get(qid)
    for cid, check_rule in rule.checks.items() if rule else ():
        if cid not in seen:
            scored.append(
                CheckResult(
                    cid,
                    cid,
                    "skipped",
                    0.0,
                    check_rule.points,
                    "not checked: an earlier step of this question could not run",
                    check_rule.visibility,
                )
            )
    return QuestionResult(qid, title or (rule.title if rule else qid), tuple(scored))


def apply_overrides(result: SubmissionResult, overrides: Iterable[Override]) -> SubmissionResult:
    """The result with each named check's score set by staff (capped at its points), the grader's own score
    kept beside it; checks no override names are unchanged."""
    by_check = {o.check: o for o in overrides}
    if not by_check:
        return result
    questions = tuple(
        replace(q, checks=tuple(_adjusted(c, by_check[c.id]) if c.id in by_check else c for c in q.checks))
        for q in result.questions
    )
    return replace(result, questions=questions)


def _adjusted(check: CheckResult, override: Override) -> CheckResult:
    graded = check.staff.graded_score if check.staff else check.score
    points = round(min(override.points, check.max_score), 4)
    return replace(check, score=points, staff=StaffAdjustment(points, override.comment, override.by, graded))


def hidden_checks(rubric: Rubric) -> dict[str, float]:
    """How many of the rubric's checks are not visible to students, and their points: {"count", "points"}."""
    hidden = [c for q in rubric.questions.values() for c in q.checks.values() if c.visibility != "visible"]
    return {"count": len(hidden), "points": sum(c.points for c in hidden)}
