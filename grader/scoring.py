"""Scores: a pure function of the rubric and the checks' verdicts."""

from __future__ import annotations

from dataclasses import replace

from grader.results import CheckResult, QuestionResult
from grader.rubric import Rubric


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
