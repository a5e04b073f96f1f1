"""Helper checks: the handout's helpers pass; overflowing, swapped or activation-taking ones are named."""

from __future__ import annotations

import numpy as np

from grader.checks.helpers import HelperSettings, check_helper, check_helpers
from grader.results import RunError
from grader.student import InProcessStudent, StudentCodeError
from reference import solution


def handout_helpers(**replaced) -> dict:
    helpers = {
        name: getattr(solution, name)
        for name in ("sigmoid", "dsigmoid", "softmax", "cross_entropy_loss", "integer_to_one_hot")
    }
    return {**helpers, **replaced}


def naive_softmax(x):
    return np.exp(x) / np.exp(x).sum()


def handout_sigmoid_with_clip(x):
    x = np.clip(x, -500, 500)
    return np.where(x >= 0, 1 / (1 + np.exp(-x)), np.exp(x) / (1 + np.exp(x)))


def by_id(results):
    return {r.id: r for r in results}


def test_the_handouts_helpers_pass_with_their_whole_share():
    results = check_helpers(InProcessStudent(helpers=handout_helpers()), HelperSettings())
    assert [r.status for r in results] == ["passed"] * 5, [r.message for r in results]
    assert sum(r.score for r in results) == 5  # shares: the rubric gives the points (0 by default)


def test_helpers_are_informational_by_default(rubric):
    from grader.scoring import score_question

    with np.errstate(all="ignore"):
        results = check_helpers(InProcessStudent(helpers=handout_helpers(softmax=naive_softmax)))
    scored = score_question("helpers", results, rubric)
    assert all(c.max_score == 0 and c.score == 0 for c in scored.checks)


def test_the_scanned_handouts_clipped_sigmoid_passes():
    student = InProcessStudent(helpers=handout_helpers(sigmoid=handout_sigmoid_with_clip))
    assert check_helper(student, "sigmoid").status == "passed"


def test_softmax_that_overflows_on_1000_is_rejected_with_the_max_trick():
    with np.errstate(all="ignore"):
        result = check_helper(InProcessStudent(helpers=handout_helpers(softmax=naive_softmax)), "softmax")
    assert result.status == "failed"
    assert "softmax([1000, 0, ..., 0]) contains nan" in result.message
    assert "Subtract the maximum" in result.message


def test_dsigmoid_that_expects_the_activation_is_named():
    student = InProcessStudent(helpers=handout_helpers(dsigmoid=lambda a: a * (1 - a)))
    result = check_helper(student, "dsigmoid")
    assert result.status == "failed"
    assert "expects the activation" in result.message and "pre-activation" in result.message


def test_cross_entropy_with_swapped_arguments_is_named():
    student = InProcessStudent(
        helpers=handout_helpers(cross_entropy_loss=lambda yhat, y: -np.sum(y * np.log(yhat)))
    )
    with np.errstate(all="ignore"):
        result = check_helper(student, "cross_entropy_loss")
    assert result.status == "failed"
    assert "(yHat, y)" in result.message and "one-hot label first" in result.message


def test_cross_entropy_returning_a_1_element_array_is_accepted():
    student = InProcessStudent(
        helpers=handout_helpers(cross_entropy_loss=lambda y, yhat: np.array([-np.sum(y * np.log(yhat))]))
    )
    assert check_helper(student, "cross_entropy_loss").status == "passed"


def test_sigmoid_of_wrong_values_reports_where_and_by_how_much():
    student = InProcessStudent(
        helpers=handout_helpers(sigmoid=lambda x: 1 / (1 + np.exp(-2 * np.clip(x, -300, 300))))
    )
    result = check_helper(student, "sigmoid")
    assert result.status == "failed"
    assert "got" in result.message and "expected" in result.message and "largest error" in result.message


def test_one_hot_of_the_wrong_length_is_rejected_with_shapes():
    student = InProcessStudent(helpers=handout_helpers(integer_to_one_hot=lambda x, m: np.eye(m + 1)[x]))
    result = check_helper(student, "integer_to_one_hot")
    assert result.status == "failed" and "shape (11,), expected (10,)" in result.message


def test_a_missing_helper_fails_and_a_raising_one_is_an_error_with_the_students_traceback():
    assert check_helper(InProcessStudent(helpers={}), "softmax").status == "failed"

    def raising(x):
        raise StudentCodeError(
            RunError(
                "exception", "call softmax", "NameError: name 'np' is not defined", "Traceback ... line 3"
            )
        )

    result = check_helper(InProcessStudent(helpers=handout_helpers(softmax=raising)), "softmax")
    assert result.status == "error"
    assert (
        result.message.startswith("Your code raised an error") and result.traceback == "Traceback ... line 3"
    )
