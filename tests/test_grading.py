"""End to end: real submissions through the sandbox, every check, the shipped rubric."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest

from grader import lifetime
from grader.data import load_data, save_data
from grader.grading import grade_submission
from grader.session import GradingSession

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def solution(rubric, data):
    return grade_submission(ROOT / "reference" / "solution.py", rubric, data)


@pytest.fixture(scope="module")
def kv2154(rubric, data):
    return grade_submission(ROOT / "submissions" / "kv2154.py", rubric, data)


def checks_of(result) -> dict:
    return {c.id: c for q in result.questions for c in q.checks}


def test_reference_solution_gets_full_marks(solution):
    failing = [f"{c.id}: {c.message}" for c in checks_of(solution).values() if c.score < c.max_score]
    assert failing == []
    assert solution.score == solution.max_score == 100


def test_reference_solution_gradients_are_all_correct(solution):
    assert {name: v.verdict for name, v in solution.gradients.items()} == {
        name: "correct" for name in ("W1", "b1", "W2", "b2", "W3", "b3")
    }


def test_seed_submission_wrong_gradients_are_w1_b1_b2(kv2154):
    wrong = sorted(name for name, v in kv2154.gradients.items() if not v.ok)
    assert wrong == ["W1", "b1", "b2"]
    assert "sigma'(z2)" in kv2154.gradients["b2"].diagnosis


def test_seed_submission_uniform_w3_initialisation_is_named(kv2154):
    checks = checks_of(kv2154)
    assert checks["Q1.W3.distribution"].status == "failed"
    assert "uniform" in checks["Q1.W3.distribution"].message
    assert checks["Q1.W1.distribution"].status == checks["Q1.W2.distribution"].status == "passed"


def test_seed_submission_swapped_cross_entropy_arguments_give_infinite_loss(kv2154):
    message = checks_of(kv2154)["Q2.loss"].message
    assert checks_of(kv2154)["Q2.loss"].score == 0
    assert "inf" in message and "cross_entropy_loss(y, yHat)" in message


def test_seed_submission_loop_is_correct_and_its_bias_layout_is_reported(kv2154):
    assert checks_of(kv2154)["Q4.loop"].status == "passed"
    assert any("(1, n)" in a for a in kv2154.adaptations)


def stable(result) -> str:
    """The result as JSON, without when it was graded and how long it took."""
    d = result.to_dict()
    for key in ("graded_at", "duration_s"):
        d.pop(key)
    return json.dumps(d, sort_keys=True, default=str)


def test_grading_is_deterministic(rubric, data, kv2154):
    again = grade_submission(ROOT / "submissions" / "kv2154.py", rubric, data)
    assert stable(again) == stable(kv2154)


def test_the_data_a_parent_prepares_for_its_workers_grades_the_same(tmp_path, rubric, data, kv2154):
    save_data(data, tmp_path)
    loaded = load_data(tmp_path)
    assert not loaded.train_images.flags.writeable and isinstance(loaded.train_images, np.memmap)
    assert not any(p.suffix == ".pkl" for p in tmp_path.iterdir())
    again = grade_submission(ROOT / "submissions" / "kv2154.py", rubric, loaded)
    assert stable(again) == stable(kv2154)


def test_a_run_prepares_the_data_once_and_leaves_no_folder_behind(tmp_path, rubric, kv2154):
    session = GradingSession(rubric=rubric, out_dir=tmp_path / "out", jobs=1, progress=False)
    outcome = session.grade([ROOT / "submissions" / "kv2154.py"])
    assert outcome.results[0]["score"] == kv2154.score
    assert not list(Path(tempfile.gettempdir()).glob(f"{lifetime.box_prefix()}data-*"))


def test_not_gradable_notebook_gets_a_clear_error_and_zero(tmp_path, rubric, data):
    bad = tmp_path / "broken.ipynb"
    bad.write_text("{ this is not json")
    result = grade_submission(bad, rubric, data)
    assert result.score == 0 and result.max_score == 100
    assert [e.kind for e in result.errors] == ["not_gradable"]
    assert "not gradable" in result.errors[0].message


STUDENTS = ROOT / "tests" / "fixtures" / "students"


@pytest.mark.parametrize("path", [
    STUDENTS / "float32_correct.py",
    ROOT / "tests" / "fixtures" / "bends" / "transposed.py",
])
def test_other_correct_solutions_get_full_marks(path, rubric, data):
    result = grade_submission(path, rubric, data)
    failing = [f"{c.id}: {c.message}" for c in checks_of(result).values() if c.score < c.max_score]
    assert failing == [] and result.score == 100


def test_reference_solution_as_a_notebook_gets_full_marks(tmp_path, rubric, data):
    import nbformat

    source = (ROOT / "reference" / "solution.py").read_text()
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("%matplotlib inline"),
        *(nbformat.v4.new_code_cell(chunk) for chunk in source.split("\n\n\n")),
    ])
    path = tmp_path / "solution.ipynb"
    nbformat.write(notebook, path)
    result = grade_submission(path, rubric, data)
    assert result.score == 100, [c.message for c in checks_of(result).values() if c.score < c.max_score]


def test_sigma_of_the_activation_is_caught_although_the_network_trains_well(rubric, data):
    result = grade_submission(STUDENTS / "sigma_of_activation.py", rubric, data)
    assert sorted(n for n, v in result.gradients.items() if not v.ok) == ["W1", "W2", "b1", "b2"]
    assert "dsigmoid(a2)" in result.gradients["W2"].diagnosis and "dsigmoid(a1)" in result.gradients["W1"].diagnosis
    training = checks_of(result)["Q4.training"]
    assert training.score == training.max_score
    assert "accuracy alone does not show" in training.message
    assert result.training["student"][-1] >= result.training["reference"][-1]


def test_layers_kept_in_their_own_globals_are_set_and_read_with_weights(rubric, data):
    """W1..W3 are the arrays listed in `weights`; the step updates W1 in place and rebinds W2, W3."""
    result = grade_submission(ROOT / "tests" / "fixtures" / "bends" / "aliased_globals.py", rubric, data)
    assert {n: v.verdict for n, v in result.gradients.items()} == {
        n: "correct" for n in ("W1", "b1", "W2", "b2", "W3", "b3")}
    assert any("W1 is weights[0]" in a and "in place" in a for a in result.adaptations)
    assert checks_of(result)["Q4.training"].status == "passed"


def test_signature_checks_pass_the_handouts_api_and_name_each_deviation(rubric, data, solution, kv2154):
    for result in (solution, kv2154):
        assert [checks_of(result)[f"Q{n}.signature"].status for n in (2, 3, 4)] == ["passed"] * 3
    bent = grade_submission(ROOT / "tests" / "fixtures" / "bends" / "dict_layers.py", rubric, data)
    q3 = checks_of(bent)["Q3.signature"]
    assert q3.status == "failed" and q3.max_score == 0
    assert "train_one_sample(sample, label, weights, biases, learning_rate=0.003)" in q3.message
    assert "parameters weights, biases are not in the handout's train_one_sample(sample, y" in q3.message


def test_a_rubric_can_make_the_handouts_signature_worth_points(tmp_path, data):
    from grader.rubric import load_rubric

    text = (ROOT / "grader" / "rubric.yaml").read_text()
    text = text.replace("total: 100", "total: 102").replace("Q3.signature: 0", "Q3.signature: 2")
    path = tmp_path / "rubric.yaml"
    path.write_text(text)
    strict = load_rubric(path)
    bent = grade_submission(ROOT / "tests" / "fixtures" / "bends" / "dict_layers.py", strict, data)
    assert bent.max_score == 102 and checks_of(bent)["Q3.signature"].score == 0
    handout = grade_submission(ROOT / "reference" / "solution.py", strict, data)
    assert handout.score == 102


@pytest.mark.parametrize("name", ["fd_when_probed.py", "fd_detect_probe_point.py"])
def test_a_step_that_is_right_only_when_probed_gets_no_backprop_credit(name, rubric, data):
    """Attacks: finite differences at the probe's learning rates or weights, a wrong backprop otherwise."""
    result = grade_submission(ROOT / "tests" / "fixtures" / "attacks" / name, rubric, data)
    checks = checks_of(result)
    assert checks["Q3.real_step"].status == "failed"
    assert [checks[f"Q3.{t}"].score for t in ("W1", "b1", "W2", "b2", "W3", "b3")] == [0] * 6
    assert "right at the grader's probe points but an ordinary step is not" in checks["Q3.W2"].message


def test_a_notebook_cell_that_initialises_and_then_trains_is_recorded_in_between(rubric, data):
    """The reference solution as one notebook cell: the initialisation is recorded before the training."""
    result = grade_submission(ROOT / "tests" / "fixtures" / "attacks" / "nb_one_cell_init_and_train.ipynb",
                              rubric, data)
    assert checks_of(result)["Q1.biases"].status == "passed" and result.score == 100


def test_a_step_right_only_when_the_grader_calls_it_gets_no_credit_for_what_its_own_loop_gets_wrong(rubric, data):
    """Finite differences when called directly, a backprop missing sigma'(z1) inside its own train_one_epoch."""
    result = grade_submission(ROOT / "tests" / "fixtures" / "attacks" / "fd_unless_own_loop.py", rubric, data)
    checks = checks_of(result)
    assert [n for n in ("W1", "b1", "W2", "b2", "W3", "b3") if checks[f"Q3.{n}"].score == 0] == ["W1", "b1"]
    assert "your own train_one_epoch" in checks["Q3.W1"].message and "Not credited" in checks["Q3.W1"].message
    assert result.score == 86


def test_ok_and_verdict_never_disagree_and_agree_with_the_tensor_checks(rubric, data, kv2154):
    cheat = grade_submission(ROOT / "tests" / "fixtures" / "attacks" / "fd_unless_own_loop.py", rubric, data)
    scaled = grade_submission(ROOT / "tests" / "fixtures" / "bends" / "scaled_inputs.py", rubric, data)
    for result in (kv2154, cheat, scaled):
        checks = checks_of(result)
        for name, verdict in result.gradients.items():
            assert verdict.ok == (verdict.verdict in ("correct", "float32")), (result.submission, name)
            assert verdict.ok == (checks[f"Q3.{name}"].status == "passed"), (result.submission, name)


def test_zero_weights_filled_later_are_the_initialisation_but_zero_weights_trained_are_not(tmp_path, rubric, data):
    source = (ROOT / "tests/fixtures/wild3/zeros_then_fill_loop.py").read_text()
    fill = ("for i in range(3):\n    weights[i] = rng.normal(0, np.sqrt(1 / max(sizes[i], sizes[i + 1])), "
            "(sizes[i], sizes[i + 1]))\n")
    assert fill in source
    by_function = source.replace(fill, "def draw():\n    for i in range(3):\n        weights[i][...] = rng.normal("
                                 "0, np.sqrt(1 / max(sizes[i], sizes[i + 1])), (sizes[i], sizes[i + 1]))\n\n\ndraw()\n")
    never_drawn = source.replace(fill, "") + "\ntrain_one_epoch()\n"  # zero weights (a bug), then training
    (tmp_path / "by_function.py").write_text(by_function)
    (tmp_path / "never_drawn.py").write_text(never_drawn)
    drawn = checks_of(grade_submission(tmp_path / "by_function.py", rubric, data))
    assert all(drawn[f"Q1.{w}.distribution"].status == "passed" for w in ("W1", "W2", "W3"))
    zero = checks_of(grade_submission(tmp_path / "never_drawn.py", rubric, data))
    assert "zeros" in zero["Q1.W1.distribution"].message and zero["Q1.W1.distribution"].score == 0


def test_a_loss_scaled_consistently_is_charged_once_in_q2_and_an_inconsistent_gradient_is_not(tmp_path, rubric,
                                                                                                data):
    # np.mean over the 10 outputs in the loss and its backprop (delta3 = (p - y) / 10): the backprop is right for
    # the student's own loss; the same backprop under the handout's summed loss is a gradient a tenth too small
    source = (ROOT / "tests/fixtures/wild4/mean_loss_scaled.py").read_text()
    mean = "return -np.mean(y * np.log(yHat))"
    assert mean in source
    (tmp_path / "summed_loss.py").write_text(source.replace(mean, "return -np.sum(y * np.log(yHat))"))
    consistent = grade_submission(ROOT / "tests/fixtures/wild4/mean_loss_scaled.py", rubric, data)
    checks = checks_of(consistent)
    assert "times 0.1" in checks["Q2.loss"].message and checks["Q2.loss"].mistake_id == "loss_scaled_by_constant"
    assert all(checks[f"Q3.{n}"].status == "passed" and "your own loss" in checks[f"Q3.{n}"].message
               for n in ("W1", "b1", "W2", "b2", "W3", "b3"))
    assert checks["Q3.real_step"].status == "passed" and "0.1 times the rate" in checks["Q3.real_step"].message
    assert all(v.ok and v.verdict == "correct" for v in consistent.gradients.values())
    inconsistent = checks_of(grade_submission(tmp_path / "summed_loss.py", rubric, data))
    assert inconsistent["Q2.loss"].status == "passed"
    assert all(inconsistent[f"Q3.{n}"].score == 0 and "divided by 10" in inconsistent[f"Q3.{n}"].message
               for n in ("W1", "b1", "W2", "b2", "W3", "b3"))


def test_a_dataset_function_that_returns_its_figures_is_read_from_what_it_returns(tmp_path, rubric, data):
    source = (ROOT / "tests/fixtures/wild4/dataset_returns_figures.py").read_text()
    returned = "return np.average(losses), 100 * correct_guesses / y.shape[0]"
    assert returned in source
    (tmp_path / "wrong_accuracy.py").write_text(source.replace(
        returned, "return np.average(losses), 100 - 100 * correct_guesses / y.shape[0]"))
    (tmp_path / "one_number.py").write_text(source.replace(returned, "return np.average(losses)").replace(
        "loss, accuracy = feed_forward_dataset(x_test, y_test)", "loss, accuracy = feed_forward_dataset(x_test, "
        "y_test), 0.0"))
    right = checks_of(grade_submission(ROOT / "tests/fixtures/wild4/dataset_returns_figures.py", rubric, data))
    assert right["Q2.dataset.loss"].status == right["Q2.dataset.accuracy"].status == "passed"
    assert right["Q2.dataset.accuracy"].message.startswith("Returned accuracy")
    wrong = checks_of(grade_submission(tmp_path / "wrong_accuracy.py", rubric, data))
    assert wrong["Q2.dataset.loss"].status == "passed" and wrong["Q2.dataset.accuracy"].score == 0
    assert wrong["Q2.dataset.accuracy"].message.startswith("Returned accuracy")
    single = checks_of(grade_submission(tmp_path / "one_number.py", rubric, data))
    assert single["Q2.dataset.loss"].score == single["Q2.dataset.accuracy"].score == 0
    assert "Could not find" in single["Q2.dataset.loss"].message


def test_the_bias_trick_is_graded_as_the_network_it_is_in_either_orientation(tmp_path, rubric, data):
    # the bias as the last row of (n_in + 1, n_out) matrices updated in place; then stored (n_out, n_in + 1) with
    # the bias as the first column, inputs with a 1 prepended, and the step rebinding each matrix
    rows = ROOT / "tests/fixtures/wild4/bias_trick_rows.py"
    source = rows.read_text()
    swaps = [("W = np.zeros((n_in + 1, n_out))", "W = np.zeros((n_out, n_in + 1))"),
             ("W[:n_in] = rng.normal(0, np.sqrt(1 / max(n_in, n_out)), (n_in, n_out))",
              "W[:, 1:] = rng.normal(0, np.sqrt(1 / max(n_in, n_out)), (n_in, n_out)).T"),
             ("return np.append(a, 1.0)", "return np.insert(a, 0, 1.0)"),
             ("z = with_one(acts[-1]) @ W", "z = W @ with_one(acts[-1])"),
             ("grads[i] = np.outer(with_one(acts[i]), delta)", "grads[i] = np.outer(delta, with_one(acts[i]))"),
             ("delta = (weights[i][:-1] @ delta) * dsigmoid(zs[i - 1])",
              "delta = (weights[i][:, 1:].T @ delta) * dsigmoid(zs[i - 1])"),
             ("weights[i] -= learning_rate * grads[i]", "weights[i] = weights[i] - learning_rate * grads[i]")]
    for old, new in swaps:
        assert old in source, old
        source = source.replace(old, new)
    (tmp_path / "bias_trick_columns.py").write_text(source)
    for path in (rows, tmp_path / "bias_trick_columns.py"):
        result = grade_submission(path, rubric, data)
        assert result.score == 100, (path.name, [c.message for q in result.questions for c in q.checks
                                                 if c.score < c.max_score])
        assert any("bias trick" in a for a in result.adaptations)
