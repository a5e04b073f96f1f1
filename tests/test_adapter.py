"""grader/adapt/student.py: real submissions in bent layouts and signatures, run in the sandbox, seen canonically.

Each fixture under tests/fixtures/bends/ is a submission written the way real students bend the handout
(issue 7). The adapter must talk to each in its own layout and read back canonical parameters: from a
healthy probe point, one step at learning rate 1 must imply the reference gradient (rel. error < 1e-6) for
correct mathematics, and the known bugs must show. Ambiguous submissions must get a precise problem message.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import nbformat
import numpy as np
import pytest

from grader.adapt.build import build_student
from grader.adapt.calls import call_arguments, plan_call
from grader.adapt.data_form import DataForm
from grader.adapt.student import SandboxStudent
from grader.checks.training import Fingerprint
from grader.gradients import implied_gradient, probe_point
from grader.sandbox import Limits, Param, Sandbox, SandboxData
from grader.student import StudentCodeError
from grader.submission import load_submission
from reference import network
from reference.mnist import load_mnist

ROOT = Path(__file__).resolve().parents[1]
BENDS = ROOT / "tests" / "fixtures" / "bends"
TENSORS = ("W1", "W2", "W3", "b1", "b2", "b3")


@pytest.fixture(scope="module")
def mnist():
    return load_mnist(ROOT / "reference" / "data" / "mnist_sample.npz")


@pytest.fixture(scope="module")
def students(mnist, tmp_path_factory):
    """open(name) -> (RunLog, SandboxStudent), one sandbox per submission for the whole module."""
    data = SandboxData(mnist.x_train[:300], mnist.y_train[:300], mnist.x_test[:100], mnist.y_test[:100])
    opened: dict[str, tuple] = {}
    with ExitStack() as stack:

        def open_student(name: str, limits: Limits | None = None):
            if name not in opened:
                path = submission_path(name, tmp_path_factory.mktemp("nb"))
                box = stack.enter_context(Sandbox(load_submission(path), data=data, limits=limits))
                run = box.run_cells()
                opened[name] = (run, build_student(box, run))
            return opened[name]

        yield open_student


def submission_path(name: str, scratch: Path) -> Path:
    if name == "solution":
        return ROOT / "reference" / "solution.py"
    if name == "kv2154":
        return ROOT / "submissions" / "kv2154.py"
    if name.endswith(".ipynb"):
        return notebook_from_cells(BENDS / name.replace(".ipynb", ".py"), scratch / name)
    return BENDS / f"{name}.py"


def notebook_from_cells(source: Path, target: Path) -> Path:
    """A real .ipynb from a '# %%'-separated file, with a markdown cell and a magic line added."""
    cells = [c.strip("\n") for c in source.read_text().split("# %%\n") if c.strip()]
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Assignment 1, question 5"),
        nbformat.v4.new_code_cell("%matplotlib inline"),
    ]
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, target)
    return target


# --------------------------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def probe(mnist):
    """A digit (784,) float64 raw pixels, its label, and a healthy canonical probe point for it."""
    x = mnist.x_test[3].reshape(-1).astype(np.float64)
    return x, int(mnist.y_test[3]), probe_point(x, seed=7)


def rel_error(g: np.ndarray, f: np.ndarray) -> float:
    return float(np.linalg.norm(g - f) / max(np.linalg.norm(g), np.linalg.norm(f), 1e-300))


def gradient_errors(student: SandboxStudent, params, x, label, lr=1.0, expected_x=None) -> dict[str, float]:
    """Per tensor: rel. error between the implied gradient of one student step and the reference's."""
    after = student.train_one_sample(params, x, label, lr)
    implied = implied_gradient(params, after, lr)
    expected = network.gradient(*params, x if expected_x is None else expected_x, label)
    pairs = zip(implied[0] + implied[1], expected[0] + expected[1], strict=True)
    return {name: rel_error(g, f) for name, (g, f) in zip(TENSORS, pairs, strict=True)}


def assert_correct_gradient(student, probe, **kwargs):
    x, label, params = probe
    errors = gradient_errors(student, params, x, label, **kwargs)
    assert max(errors.values()) < 1e-6, errors


def assert_epoch_visits_in_order(student, mnist, n=12, lr=0.0042):
    images = network.flatten_images(mnist.x_train[100 : 100 + n])
    labels = mnist.y_train[100 : 100 + n].astype(np.int64)
    run = student.train_one_epoch(probe_point(images[0], 3), images, labels, lr, True)
    assert len(run.recorded) == n
    samples = [Fingerprint.of(x) for x in images]
    for i, step in enumerate(run.recorded):
        assert Fingerprint.of(step["x"]).matches(samples[i]), (i, step["x"])
        assert step["label"] == labels[i] and step["lr"] == lr


def reference_epoch(params, images, labels, lr):
    for x, y in zip(images, labels, strict=True):
        params = network.sgd_step(*params, x, int(y), lr)
    return params


# ----------------------------------------------------------------------------------- handout-conformant


def test_handout_solution_gives_the_reference_gradient_and_loop(students, probe, mnist):
    run, student = students("solution")
    assert run.errors == () and student.problems == ()
    assert not any("transposed" in a or "shape" in a for a in student.adaptations)
    assert_correct_gradient(student, probe)
    x, label, params = probe
    loss, guess = student.feed_forward_sample(params, x, label)
    assert loss == pytest.approx(float(network.loss(*params, x, label)), rel=1e-12)
    assert int(np.argmax(guess)) == int(network.predict(*params, x))
    assert_epoch_visits_in_order(student, mnist)


def test_handout_epoch_without_recording_trains_like_the_reference(students, mnist):
    _, student = students("solution")
    images = network.flatten_images(mnist.x_train[:20])
    labels = mnist.y_train[:20].astype(np.int64)
    params = probe_point(images[0], 5)
    run = student.train_one_epoch(params, images, labels, 0.01, False)
    expected = reference_epoch(params, images, labels, 0.01)
    assert run.recorded == [] and "Finished training" in run.stdout
    for got, want in zip(run.params[0] + run.params[1], expected[0] + expected[1], strict=True):
        assert rel_error(got, want) < 1e-9


def test_dataset_pass_prints_what_the_student_prints(students, mnist):
    _, student = students("solution")
    images = network.flatten_images(mnist.x_test[:50])
    labels = mnist.y_test[:50].astype(np.int64)
    params = network.init_params()
    _, accuracy = network.evaluate(*params, images, labels)
    printed = student.feed_forward_dataset(params, images, labels)
    assert f"{round(accuracy * 50)} / 50" in printed


def test_helpers_are_called_and_decoded(students):
    _, student = students("solution")
    got = student.call_helper("sigmoid", np.array([0.0, 2.0]))
    assert np.allclose(got, network.sigmoid(np.array([0.0, 2.0])))
    assert student.has("dsigmoid") and not student.has("backpropagation")


# --------------------------------------------------------------------------------------------- bends


def test_transposed_weights_are_probed_transposed(students, probe, mnist):
    run, student = students("transposed")
    assert run.errors == () and student.problems == ()
    assert "weights stored transposed (n_out, n_in), used as W @ a" in student.adaptations
    assert [w.shape for w in student.initial_params[0]] == [(784, 32), (32, 32), (32, 10)]
    assert_correct_gradient(student, probe)
    assert_epoch_visits_in_order(student, mnist)


def test_dicts_and_parameters_as_arguments_and_returned(students, probe, mnist):
    run, student = students("dict_layers")
    assert run.errors == () and student.problems == ()
    notes = " | ".join(student.adaptations)
    assert "weights and biases are dicts keyed 'h1', 'h2', 'out'" in notes
    assert "parameters weights, biases are not in the handout's train_one_sample(sample, y" in notes
    assert "feed_forward_sample takes no y" in notes
    assert_correct_gradient(student, probe)
    assert "train_one_sample returns the updated parameters instead of updating the globals" in (
        student.adaptations
    )
    x, label, params = probe
    loss, guess = student.feed_forward_sample(params, x, label)
    assert loss is None and int(np.argmax(guess)) == int(network.predict(*params, x))
    assert any("'a3'" in a and "no loss" in a for a in student.adaptations)


def test_returned_epoch_parameters_are_read_and_a_loop_using_the_return_is_recorded(students, mnist):
    _, student = students("dict_layers")
    images = network.flatten_images(mnist.x_train[:15])
    labels = mnist.y_train[:15].astype(np.int64)
    params = probe_point(images[0], 4)
    run = student.train_one_epoch(params, images, labels, 0.05, False)
    expected = reference_epoch(params, images, labels, 0.05)
    for got, want in zip(run.params[0] + run.params[1], expected[0] + expected[1], strict=True):
        assert rel_error(got, want) < 1e-9
    recorded = student.train_one_epoch(params, images, labels, 0.05, True).recorded
    visits = [Fingerprint.of(r["x"]).matches(Fingerprint.of(x)) for r, x in zip(recorded, images, strict=True)]
    assert visits == [True] * 15
    assert [r["label"] for r in recorded] == labels.tolist() and {r["lr"] for r in recorded} == {0.05}


def test_inputs_scaled_inside_are_graded_on_their_own_function(students, probe, mnist):
    _, student = students("scaled_inputs")
    x, label, _ = probe
    params = probe_point(x / 255.0, seed=7)  # healthy for the network the student actually computes
    errors = gradient_errors(student, params, x, label, expected_x=x / 255.0)
    assert max(errors.values()) < 1e-6, errors
    raw = gradient_errors(student, params, x, label)
    assert raw["W1"] > 0.1, "against the handout's raw-pixel network the gradient must differ"
    assert_epoch_visits_in_order(student, mnist)


def test_kv2154_row_biases_and_its_real_bugs(students, probe):
    run, student = students("kv2154")
    assert "biases have shape (1, n)" in student.adaptations and student.problems == ()
    x, label, params = probe
    errors = gradient_errors(student, params, x, label)
    assert max(errors["W2"], errors["W3"], errors["b3"]) < 1e-6, errors
    assert min(errors["W1"], errors["b1"], errors["b2"]) > 0.1, errors
    loss, guess = student.feed_forward_sample(params, x, label)
    assert loss == np.inf and np.shape(guess) == (1, 10), "the handout-shaped pair is passed on as returned"


def test_numpy_matrix_parameters(students, probe, mnist):
    run, student = students("numpy_matrix")
    assert run.errors == () and "biases have shape (1, n)" in student.adaptations
    assert_correct_gradient(student, probe)
    assert_epoch_visits_in_order(student, mnist, n=5)


def test_updating_inside_the_backward_loop_shows_at_learning_rate_one(students, probe):
    _, student = students("update_in_backward_loop")
    x, label, params = probe
    errors = gradient_errors(student, params, x, label, lr=1.0)
    assert errors["W3"] < 1e-6 and errors["b3"] < 1e-6, errors
    assert errors["W2"] > 1e-3 and errors["W1"] > 1e-3, errors
    small = gradient_errors(student, params, x, label, lr=1e-6)
    assert max(small.values()) < 1e-4, small


def test_notebook_with_column_vectors(students, probe, mnist):
    run, student = students("column_vectors_notebook.ipynb")
    assert run.errors == () and student.problems == ()
    assert "weights stored transposed (n_out, n_in), used as W @ a" in student.adaptations
    assert "biases have shape (n, 1)" in student.adaptations
    assert_correct_gradient(student, probe)
    x, label, params = probe
    loss, guess = student.feed_forward_sample(params, x, label)
    assert loss == pytest.approx(float(network.loss(*params, x, label)), rel=1e-9)
    assert_epoch_visits_in_order(student, mnist, n=6)


def test_one_params_dict_is_recorded_as_soon_as_it_holds_the_network(students, probe, mnist):
    run, student = students("params_dict")
    assert run.initialised and student.layout.holders == ("params",) and student.problems == ()
    notes = " | ".join(student.adaptations)
    assert "the network is held in params['W1']" in notes and "after all cells ran" not in notes
    init = network.init_params()
    for got, want in zip(
        student.initial_params[0] + student.initial_params[1], init[0] + init[1], strict=True
    ):
        assert np.array_equal(got, want)
    assert_correct_gradient(student, probe)
    assert_epoch_visits_in_order(student, mnist, n=5)


# ------------------------------------------------------------------------------- no guesses, no crashes


def test_of_two_parameter_sets_the_one_the_functions_use_is_the_network(students, probe):
    _, student = students("ambiguous_holders")  # `initial` and `trained`; the functions use `trained`
    assert student.problems == ()
    assert [student.layout.texts[i] for i in student.layout.w_entries] == [f"trained['W'][{i}]" for i in range(3)]
    x, label, params = probe
    loss, guess = student.feed_forward_sample(params, x, label)
    assert np.argmax(guess) == int(np.argmax(network.forward(*params, x).probabilities))


TWO_UNUSED_SETS = """
import numpy as np
rng = np.random.default_rng(1)
def make():
    return {'W': [rng.normal(size=(784, 32)), rng.normal(size=(32, 32)), rng.normal(size=(32, 10))],
            'b': [np.zeros(32), np.zeros(32), np.zeros(10)]}
first, second = make(), make()
def feed_forward_sample(sample, y):
    return 0.0, np.eye(10)[0]
"""


def test_two_parameter_sets_that_no_function_names_are_a_problem_not_a_guess(tmp_path, mnist):
    path = tmp_path / "two_sets.py"
    path.write_text(TWO_UNUSED_SETS)
    data = SandboxData(mnist.x_train[:50], mnist.y_train[:50], mnist.x_test[:20], mnist.y_test[:20])
    with Sandbox(load_submission(path), data, Limits(cell_timeout_s=20, call_timeout_s=10)) as box:
        student = build_student(box, box.run_cells())
    assert student.initial_params is None
    assert len(student.problems) == 1 and "cannot tell" in student.problems[0], student.problems


def test_unmatched_parameter_is_named_and_the_rest_is_graded(students, probe):
    _, student = students("ambiguous_signature")
    assert student.problems == (
        "train_one_sample(model, batch): required parameter model matches none of the values the grader can "
        "pass (a sample, a label, a learning rate, the weights, the biases); expected "
        "train_one_sample(sample, y, learning_rate=0.003)",
    )
    x, label, params = probe
    with pytest.raises(StudentCodeError, match="required parameter model"):
        student.train_one_sample(params, x, label, 1.0)
    loss, _ = student.feed_forward_sample(params, x, label)
    assert loss == pytest.approx(float(network.loss(*params, x, label)), rel=1e-9)


def test_mixed_orientation_is_a_problem(students):
    _, student = students("mixed_orientation")
    assert student.initial_params is None
    (problem,) = student.problems
    assert problem.endswith(
        "weights[0] is stored (784, 32) but weights[2] is stored (10, 32): one is (n_in, n_out), "
        "the other (n_out, n_in), so the orientation of the (32, 32) layer cannot be told"
    )


def test_student_exceptions_carry_their_traceback(students, probe):
    _, student = students("transposed")
    x, _, params = probe
    with pytest.raises(StudentCodeError) as failed:
        student.feed_forward_sample(params, x, 12)  # out of range for the student's out[y]
    error = failed.value.error
    assert error.kind == "exception" and "IndexError" in error.message
    assert "transposed.py" in error.traceback


def test_unusable_values_and_hangs_become_student_errors(students, probe, mnist):
    _, student = students("unusable_values", Limits(call_timeout_s=2, cell_timeout_s=2))
    x, label, params = probe
    with pytest.raises(StudentCodeError, match="returned a builtins.object"):
        student.feed_forward_sample(params, x, label)
    with pytest.raises(StudentCodeError, match="sigmoid returned a builtins.function"):
        student.call_helper("sigmoid", np.zeros(3))
    with pytest.raises(StudentCodeError) as failed:
        student.train_one_sample(params, x, label, 1.0)
    assert failed.value.error.kind == "timeout"
    images = network.flatten_images(mnist.x_train[:3])
    with pytest.raises(StudentCodeError, match=r"weights\[2\] is a str"):
        student.train_one_epoch(params, images, np.arange(3), 0.1, False)
    with pytest.raises(StudentCodeError, match="IndexError"):
        student.feed_forward_dataset(params, images, np.arange(3))


# -------------------------------------------------------------------------------------- pure helpers


def test_arguments_go_positionally_as_far_as_the_signature_allows():
    signature = [
        Param("sample"),
        Param("label"),
        Param("weights"),
        Param("biases"),
        Param("learning_rate", has_default=True, default_repr="0.003"),
    ]
    plan = plan_call("train_one_sample", signature)
    values = {"sample": "x", "label": 3, "weights": "W", "biases": "B", "learning_rate": 1.0}
    args, kwargs, positions = call_arguments(plan, signature, values)
    assert args == ["x", 3, "W", "B", 1.0] and kwargs == {}
    assert positions["weights"] == 2 and positions["biases"] == 3
    gap = [
        Param("sample"),
        Param("verbose", has_default=True, default_repr="False"),
        Param("y"),
        Param("w"),
        Param("b"),
    ]
    plan = plan_call("train_one_sample", gap)
    args, kwargs, positions = call_arguments(plan, gap, values)
    assert args == ["x"] and kwargs == {"y": 3, "w": "W", "b": "B"} and "weights" not in positions


def test_samples_go_in_as_the_handout_data_holds_them():
    form = DataForm()
    x = np.arange(784, dtype=np.float64) % 256
    sample = form.sample(x)
    assert sample.shape == (28, 28) and sample.dtype == np.uint8 and np.array_equal(sample.ravel(), x)
    scaled = form.sample(x / 255.0)
    assert scaled.dtype == np.float64 and np.allclose(scaled.ravel(), x / 255.0), "never rounded"
    flat = DataForm((784,), "float32", "int64", "note")
    assert (
        flat.samples(np.stack([x, x])).shape == (2, 784) and flat.labels(np.array([1, 2])).dtype == np.int64
    )
