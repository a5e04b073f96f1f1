"""Submissions in the many styles real students use (tests/fixtures/wild/, EXPECTED.md there): graded fairly."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.grading import grade_submission

ROOT = Path(__file__).resolve().parents[1]
WILD = ROOT / "tests" / "fixtures" / "wild"


def checks_of(result) -> dict:
    return {c.id: c for q in result.questions for c in q.checks}


@pytest.mark.parametrize("name", [
    "nielsen_backprop_helper.py",  # column vectors, a backprop() helper, rebinding globals
    "colab_expit_tqdm.ipynb",  # !pip, %matplotlib, scipy's expit, tqdm
    "softmax_no_shift.py",
    "accuracy_as_fraction.py",
    "vectorised_eval_int_class.py",
    "object_array_layers.py",  # np.array([W1, W2, W3], dtype=object)
    "oop_global_net.py",  # a Network object; weights = net.W
    "default_arg_weights.py",  # def train_one_sample(..., weights=weights)
    "float32_time_magic.ipynb",  # train_one_epoch defined in a %%time cell
    "layer_tuples.py",  # a list of (W, b) tuples, trained at top level after the initialisation
    "one_hot_labels.py",  # y_train = np.eye(10)[y]: labels passed one-hot, as its y_train holds them
])
def test_correct_solutions_in_other_styles_get_full_marks(name, rubric, data):
    result = grade_submission(WILD / name, rubric, data)
    lost = [f"{c.id}: {c.message}" for c in checks_of(result).values() if c.score < c.max_score]
    assert lost == [] and result.score == 100
    # and the student's own loop was counted over a handout-length x_train (grader/checks/own_loop.py)
    assert checks_of(result)["Q4.loop"].details.get("epoch_length_steps") == 60_000


def test_a_step_that_reads_a_global_learning_rate_is_probed_through_it(rubric, data):
    result = grade_submission(WILD / "global_lr_no_param.py", rubric, data)
    assert all(v.ok for v in result.gradients.values())
    assert any("sets your global lr" in a for a in result.adaptations)
    assert checks_of(result)["Q4.loop"].score < checks_of(result)["Q4.loop"].max_score  # no lr passed on


@pytest.mark.parametrize("name, wrong", [
    ("bias_sum_wrong_axis.py", ["b1", "b2", "b3"]),
    ("w2_grad_preactivation.py", ["W2"]),
    ("w3_wrong_sign.py", ["W3"]),
    ("lr_applied_twice.py", ["W1", "W2", "W3", "b1", "b2", "b3"]),
])
def test_buggy_gradients_fail_exactly_the_tensors_they_break(name, wrong, rubric, data):
    result = grade_submission(WILD / name, rubric, data)
    assert sorted(n for n, v in result.gradients.items() if not v.ok) == sorted(wrong)


@pytest.mark.parametrize("name", ["skip_last_sample.py", "shuffle_each_epoch.py"])
def test_a_loop_that_skips_or_shuffles_samples_loses_loop_points_only(name, rubric, data):
    result = grade_submission(WILD / name, rubric, data)
    loop = checks_of(result)["Q4.loop"]
    assert 0 < loop.score < loop.max_score
    assert all(v.ok for v in result.gradients.values())
