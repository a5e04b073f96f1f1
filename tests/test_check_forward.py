"""Q2 checks: the handout's forward pass passes; swapped losses, wrong guesses, bad prints are named."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest

from grader.checks.forward import ForwardCase, ForwardSettings, check_feed_forward_sample, read_guess
from grader.checks.forward_dataset import check_feed_forward_dataset, parse_accuracy, parse_average_loss
from grader.gradients import probe_point
from grader.results import RunError
from grader.student import InProcessStudent, StudentCodeError
from reference import network, solution

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def digits():
    for path in (ROOT / "reference" / "data" / "mnist_sample.npz", Path("/work/shared/data/mnist.npz")):
        if path.exists():
            with np.load(path, allow_pickle=False) as data:
                return network.flatten_images(data["x_test"][:300]), data["y_test"][:300].astype(np.int64)
    pytest.skip("no MNIST digits available")


@pytest.fixture(scope="module")
def cases(digits):
    """Two samples at the handout's initialisation, three at healthy probe points (as the grader chooses)."""
    images, labels = digits
    handout = [ForwardCase(network.init_params(), images[i], int(labels[i]), "handout init") for i in (0, 1)]
    healthy = [
        ForwardCase(probe_point(images[i], 10 + i), images[i], int(labels[i]), "healthy point")
        for i in (2, 3, 4)
    ]
    return handout + healthy


def with_globals(function):
    """The handout's global-reading function, called with the grader's parameters installed."""

    def call(params, *args):
        solution.weights, solution.biases = params
        return function(*args)

    return call


def printed(function):
    def call(params, images, labels):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            with_globals(function)(params, images, labels)
        return out.getvalue()

    return call


def returning(transform):
    """A forward pass returning transform(loss, probabilities, label) -> (loss, guess)."""

    def forward(params, x, label):
        fwd = network.forward(*params, x)
        return transform(float(network.loss(*params, x, label)), fwd.probabilities, label)

    return forward


def by_id(results):
    return {r.id: r for r in results}


REFERENCE = InProcessStudent(
    forward=with_globals(solution.feed_forward_sample), dataset=printed(solution.feed_forward_dataset)
)


def test_the_reference_forward_pass_gets_full_marks(cases, digits):
    results = check_feed_forward_sample(REFERENCE, cases) + check_feed_forward_dataset(
        REFERENCE, network.init_params(), *digits
    )
    assert [r.status for r in results] == ["passed"] * 4, [r.message for r in results]
    assert all(r.score == r.max_score == 1.0 for r in results)
    assert "one-hot vector of shape (10,)" in results[1].message


@pytest.mark.parametrize(
    "guess,form",
    [
        (lambda p: int(np.argmax(p)), "an integer"),
        (lambda p: np.eye(10)[np.argmax(p)][None, :], "one-hot vector of shape (1, 10)"),
        (lambda p: p, "scores (argmax taken) of shape (10,)"),
    ],
)
def test_guesses_as_int_row_one_hot_or_probabilities_are_accepted_and_named(cases, guess, form):
    student = InProcessStudent(forward=returning(lambda loss, p, y: (np.array([loss]), guess(p))))
    results = check_feed_forward_sample(student, cases)
    assert [r.status for r in results] == ["passed", "passed"], [r.message for r in results]
    assert form in results[1].message


def test_swapped_cross_entropy_arguments_give_inf_and_are_named(cases):
    def swapped(loss, p, y):
        with np.errstate(divide="ignore", invalid="ignore"):
            return -np.sum(p * np.log(network.one_hot(y))), np.eye(10)[np.argmax(p)]

    results = by_id(check_feed_forward_sample(InProcessStudent(forward=returning(swapped)), cases))
    assert results["Q2.loss"].status == "failed" and results["Q2.loss"].score == 0
    assert "got loss inf" in results["Q2.loss"].message
    assert "cross_entropy_loss(y, yHat) takes the one-hot label first" in results["Q2.loss"].message
    assert results["Q2.prediction"].status == "passed"


def test_inputs_scaled_by_255_give_a_wrong_loss_with_its_size(cases):
    def scaled(params, x, label):
        return network.loss(*params, x / 255, label), np.eye(10)[network.predict(*params, x / 255)]

    result = check_feed_forward_sample(InProcessStudent(forward=scaled), cases)[0]
    assert result.status == "failed" and result.score < 6
    assert (
        "got loss" in result.message and "expected" in result.message and "relative error" in result.message
    )


def test_a_guess_that_is_the_true_label_is_named(cases):
    student = InProcessStudent(forward=returning(lambda loss, p, y: (loss, network.one_hot(y))))
    result = by_id(check_feed_forward_sample(student, cases))["Q2.prediction"]
    assert result.status == "failed" and "always the true label" in result.message


def test_a_single_return_value_is_unusable_and_says_what_came_back(cases):
    student = InProcessStudent(forward=lambda params, x, label: {"a3": np.zeros(10)})
    results = check_feed_forward_sample(student, cases)
    assert all(r.status == "failed" and "returned dict" in r.message for r in results)


def test_a_raising_forward_is_the_students_error_and_a_grader_bug_is_worded_as_ours(cases):
    def raising(params, x, label):
        raise StudentCodeError(
            RunError(
                "exception",
                "call feed_forward_sample",
                "ValueError: shapes (784,) (10,)",
                "File submission.py, line 12",
            )
        )

    results = check_feed_forward_sample(InProcessStudent(forward=raising), cases)
    assert all(r.status == "error" and r.message.startswith("Your code raised an error") for r in results)
    assert results[0].traceback == "File submission.py, line 12"

    def broken(params, x, label):
        raise RuntimeError("adapter lost the child")

    results = check_feed_forward_sample(InProcessStudent(forward=broken), cases)
    assert all(r.status == "error" and r.message.startswith("The grader itself failed") for r in results)
    assert "not a problem with your code" in results[0].message


def test_missing_functions_fail(cases, digits):
    assert all(r.status == "failed" for r in check_feed_forward_sample(InProcessStudent(), cases))
    assert all(
        r.status == "failed"
        for r in check_feed_forward_dataset(InProcessStudent(), network.init_params(), *digits)
    )


def report(loss_text, accuracy_text):
    return lambda params, images, labels: f"Feeding forward...\n{loss_text}\n{accuracy_text}\n"


def test_dataset_prints_in_other_formats_are_read(digits):
    loss, accuracy = network.evaluate(*network.init_params(), *digits)
    for text in (
        f"Accuracy: {100 * accuracy:.2f}%",
        f"acc = {accuracy:.4f}",
        f"{round(accuracy * 300)} / 300 correct",
    ):
        student = InProcessStudent(dataset=report(f"mean loss = {loss:.5f}", text))
        results = check_feed_forward_dataset(student, network.init_params(), *digits)
        assert [r.status for r in results] == ["passed", "passed"], (text, [r.message for r in results])


def test_dataset_with_wrong_figures_fails_each_separately(digits):
    loss, accuracy = network.evaluate(*network.init_params(), *digits)
    student = InProcessStudent(
        dataset=report(f"Average loss: {loss:.4f}", f"Accuracy: {100 * accuracy + 5:.2f} %")
    )
    results = by_id(check_feed_forward_dataset(student, network.init_params(), *digits))
    assert results["Q2.dataset.loss"].status == "passed"
    assert results["Q2.dataset.accuracy"].status == "failed"
    assert f"expected {100 * accuracy:.2f}%" in results["Q2.dataset.accuracy"].message


def test_dataset_printing_inf_loss_is_told_about_the_swapped_arguments(digits):
    student = InProcessStudent(
        dataset=report("Average loss: inf", "Accuracy (# of correct guesses): 1 / 300 ( 0.33 %)")
    )
    result = check_feed_forward_dataset(student, network.init_params(), *digits)[0]
    assert result.status == "failed" and "one-hot label first" in result.message


def test_dataset_that_prints_nothing_useful_says_what_it_printed(digits):
    student = InProcessStudent(dataset=lambda params, images, labels: "done!\n")
    results = check_feed_forward_dataset(student, network.init_params(), *digits)
    assert all(r.status == "failed" and "'done!'" in r.message for r in results)


def test_parsers_read_the_handouts_line_and_other_styles():
    text = "Average loss: inf\nAccuracy (# of correct guesses): 1025.0 / 10000 ( 10.25 %)"
    assert parse_average_loss(text).value == np.inf
    assert parse_accuracy(text, 10000).value == pytest.approx(0.1025)
    assert parse_accuracy("Epoch 1/3: accuracy 45.5%").value == pytest.approx(0.455)
    assert parse_accuracy("test acc 0.0987").value == pytest.approx(0.0987)
    assert parse_average_loss("Loss=2.3e+00").value == pytest.approx(2.3)
    assert parse_average_loss("nothing here") is None


def test_read_guess_rejects_what_is_not_a_class():
    with pytest.raises(ValueError, match="shape"):
        read_guess(np.zeros(5))
    with pytest.raises(ValueError, match="class 0..9"):
        read_guess(12)
    assert read_guess(np.float64(3.0)).label == 3


def test_settings_tolerances_are_used(cases):
    off = InProcessStudent(
        forward=returning(lambda loss, p, y: (loss * (1 + 1e-4), np.eye(10)[np.argmax(p)]))
    )
    assert check_feed_forward_sample(off, cases)[0].status == "failed"
    loose = ForwardSettings(loss_rtol=1e-3)
    assert check_feed_forward_sample(off, cases, loose)[0].status == "passed"


@pytest.mark.parametrize("eps", [1e-5, 1e-7, 1e-10])
def test_an_epsilon_guard_inside_the_log_is_tolerated_and_said(cases, eps):
    # -log(p + eps): at the handout's saturated initialisation the label's p is tiny and eps decides the loss
    student = InProcessStudent(forward=returning(lambda loss, p, y: (-np.log(p[y] + eps), np.eye(10)[np.argmax(p)])))
    result = check_feed_forward_sample(student, cases)[0]
    assert result.status == "passed" and result.score == result.max_score, result.message
    if "guard" in result.message:
        assert result.details["log_guard"] == pytest.approx(eps, rel=1e-2)


@pytest.mark.parametrize("loss", [
    lambda p, y: -np.log(p[y] + 1e-2),  # more than a guard
    lambda p, y: -np.log(p[y] + 1e-5 * (1 + y)),  # no one epsilon
    lambda p, y: -np.log(p[y]) + 1e-3,  # outside the log
])
def test_a_loss_that_is_not_an_epsilon_guard_still_fails(cases, loss):
    student = InProcessStudent(forward=returning(lambda _, p, y: (loss(p, y), np.eye(10)[np.argmax(p)])))
    result = check_feed_forward_sample(student, cases)[0]
    assert result.status == "failed" and "guard" not in result.message, result.message
