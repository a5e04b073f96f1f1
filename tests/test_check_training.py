"""Q4 checks: the handout's loop and training pass; loops that skip, reorder or drop the rate are named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from grader.checks.short_training import check_short_training
from grader.checks.training import (
    Fingerprint,
    TrainingSettings,
    check_training_loop,
    identify_sample,
    recorded_label,
)
from grader.results import RunError
from grader.student import EpochRun, InProcessStudent, StudentCodeError
from reference import network, solution

ROOT = Path(__file__).resolve().parents[1]
FAST = TrainingSettings(train_samples=600, test_samples=300)


@pytest.fixture(scope="module")
def data():
    for path in (ROOT / "reference" / "data" / "mnist_sample.npz", Path("/work/shared/data/mnist.npz")):
        if path.exists():
            with np.load(path, allow_pickle=False) as d:
                return (
                    network.flatten_images(d["x_train"][:3000]),
                    d["y_train"][:3000].astype(np.int64),
                    network.flatten_images(d["x_test"][:1000]),
                    d["y_test"][:1000].astype(np.int64),
                )
    pytest.skip("no MNIST digits available")


def fingerprint(x):
    """What the sandbox's recorder ships instead of the array."""
    flat = np.asarray(x, dtype=np.float64).ravel()
    nonzero = np.flatnonzero(flat)
    return {
        "shape": list(np.shape(x)),
        "sum": float(flat.sum()),
        "sumsq": float(flat @ flat),
        "first_nonzero": int(nonzero[0]) if nonzero.size else None,
    }


def handout_epoch(params, images, labels, learning_rate, record_steps):
    """The handout's code (reference/solution.py) on globals, its step recorded as the sandbox does."""
    solution.weights, solution.biases = params
    solution.x_train, solution.y_train = images, labels
    recorded, real_step = [], solution.train_one_sample

    def recorder(sample, y, learning_rate=0.003):
        recorded.append({"x": fingerprint(sample), "label": int(y), "lr": learning_rate})

    solution.train_one_sample = recorder if record_steps else real_step
    try:
        solution.train_one_epoch(learning_rate)
    finally:
        solution.train_one_sample = real_step
    return EpochRun((solution.weights, solution.biases), recorded)


def student_epoch(loop, step=network.sgd_step, ship_arrays=False):
    """An epoch from loop(train_one_sample, images, labels, learning_rate); train_one_sample takes the
    handout's arguments; recorded (arrays or fingerprints) when record_steps, else it runs `step`."""

    def epoch(params, images, labels, learning_rate, record_steps):
        state, recorded = {"params": params}, []

        def train_one_sample(sample, y, learning_rate=0.003):
            if record_steps:
                recorded.append(
                    {"x": sample if ship_arrays else fingerprint(sample), "label": y, "lr": learning_rate}
                )
            else:
                state["params"] = step(*state["params"], sample, y, learning_rate)

        loop(train_one_sample, images, labels, learning_rate)
        return EpochRun(state["params"], recorded)

    return epoch


def in_order(step, images, labels, lr):
    for i in range(len(images)):
        step(images[i], labels[i], lr)


def test_the_handouts_train_one_epoch_gets_full_marks(data):
    student = InProcessStudent(epoch=handout_epoch)
    loop = check_training_loop(student, network.init_params(), data[0], data[1])
    training = check_short_training(student, network.init_params(), *data, FAST)
    assert loop.status == "passed" and loop.score == 1.0, loop.message
    assert training.status == "passed" and training.score == 1.0, training.message
    assert training.details["student_accuracy"] == pytest.approx(training.details["reference_accuracy"])
    assert len(training.details["student_accuracy"]) == 4


def test_fingerprints_and_arrays_identify_the_same_samples(data):
    images = data[0][:5]
    table = [Fingerprint.of(x) for x in images]
    assert identify_sample(images[3], table, 3) == (3, "")
    assert identify_sample(fingerprint(images[3].reshape(28, 28)), table, 0) == (3, "")
    assert identify_sample(images[3] / 255, table, 3) == (3, "scaled")
    assert identify_sample(images[3] + 1, table, 3) == (None, "unknown")
    assert recorded_label(fingerprint(network.one_hot(7))) == 7 and recorded_label(np.int64(4)) == 4


@pytest.mark.parametrize(
    "loop,words",
    [
        (
            lambda step, x, y, lr: [step(x[i], y[i]) for i in range(len(x))],
            "does not pass learning_rate on: called with learning_rate=0.0042, every step used 0.003",
        ),
        (
            lambda step, x, y, lr: [step(x[i], y[i], 0.01) for i in range(len(x))],
            "learning rate 0.01, expected 0.0042",
        ),
        (
            lambda step, x, y, lr: [step(x[i], y[i], lr) for i in range(len(x) - 1)],
            "skips sample 19 (the last)",
        ),
        (lambda step, x, y, lr: [step(x[i], y[i], lr) for i in reversed(range(len(x)))], "reverse order"),
        (
            lambda step, x, y, lr: [
                step(x[i], y[i], lr) for i in np.random.default_rng(0).permutation(len(x))
            ],
            "out of order",
        ),
        (lambda step, x, y, lr: [step(x[i], y[i], lr) for i in list(range(len(x))) * 2], "more than once"),
        (
            lambda step, x, y, lr: [step(x[i], y[(i + 1) % len(y)], lr) for i in range(len(x))],
            "whose label is",
        ),
        (lambda step, x, y, lr: [step(x[i] / 255, y[i], lr) for i in range(len(x))], "passes x / 255"),
        (lambda step, x, y, lr: [step(x[i] + 1, y[i], lr) for i in range(len(x))], "read a global x_train"),
    ],
)
def test_known_bad_loops_are_rejected_with_what_went_wrong(data, loop, words):
    result = check_training_loop(
        InProcessStudent(epoch=student_epoch(loop)), network.init_params(), data[0], data[1]
    )
    assert result.status == "failed" and result.score < 10
    assert words in result.message, result.message


def test_a_loop_shipping_arrays_instead_of_fingerprints_is_read_too(data):
    student = InProcessStudent(epoch=student_epoch(in_order, ship_arrays=True))
    assert check_training_loop(student, network.init_params(), data[0], data[1]).status == "passed"


def test_an_inline_epoch_is_judged_by_its_weights(data):
    def inline(step):
        def epoch(params, images, labels, learning_rate, record_steps):
            for x, y in zip(images, labels, strict=True):
                params = step(*params, x, y, learning_rate)
            return EpochRun(params, [])

        return epoch

    good = check_training_loop(
        InProcessStudent(epoch=inline(network.sgd_step)), network.init_params(), *data[:2]
    )
    assert good.status == "passed" and "never called train_one_sample" in good.message
    flipped = inline(lambda w, b, x, y, lr: network.sgd_step(w, b, x, y, -lr))
    bad = check_training_loop(InProcessStudent(epoch=flipped), network.init_params(), *data[:2])
    assert bad.status == "failed" and "differ from the reference" in bad.message


def test_training_that_falls_short_gets_partial_credit_scaled_by_the_gap(data):
    slow = student_epoch(in_order, step=lambda w, b, x, y, lr: network.sgd_step(w, b, x, y, lr / 30))
    result = check_short_training(InProcessStudent(epoch=slow), network.init_params(), *data, FAST)
    assert result.status == "failed" and 0 <= result.score < 1
    gap = result.details["gap"]
    assert gap > FAST.accuracy_tolerance and "points below the reference" in result.message
    tol, zero = FAST.accuracy_tolerance, FAST.zero_credit_gap
    expected = max(0.0, 1 - (gap - tol) / (zero - tol))
    assert result.score == pytest.approx(expected)


def test_training_far_above_the_reference_says_accuracy_alone_proves_nothing(data):
    """Scaling inputs by 1/255 inside the step dodges the saturation a correct raw-pixel network suffers."""
    scaled = student_epoch(in_order, step=lambda w, b, x, y, lr: network.sgd_step(w, b, x / 255, y, 0.5))
    result = check_short_training(InProcessStudent(epoch=scaled), network.init_params(), *data, FAST)
    assert result.status == "passed" and result.score == 1.0
    assert "more than the spread of correct solutions" in result.message and "see Q3" in result.message


def test_nan_weights_after_an_epoch_fail_and_say_when(data):
    def exploding(params, images, labels, learning_rate, record_steps):
        return EpochRun(([w * np.nan for w in params[0]], params[1]), [])

    result = check_short_training(InProcessStudent(epoch=exploding), network.init_params(), *data, FAST)
    assert result.status == "failed" and "After epoch 1: W1 or b1 contains nan" in result.message


def test_a_raising_epoch_is_the_students_error_with_the_figures_so_far(data):
    def raising(params, images, labels, learning_rate, record_steps):
        raise StudentCodeError(RunError("timeout", "call train_one_epoch", "no answer within 60 s"))

    result = check_short_training(InProcessStudent(epoch=raising), network.init_params(), *data, FAST)
    assert result.status == "error" and result.message.startswith("Your code ran out of time")
    assert result.details["reference_accuracy"]
    loop = check_training_loop(InProcessStudent(epoch=raising), network.init_params(), *data[:2])
    assert loop.status == "error"


def test_missing_train_one_epoch_fails_both_checks(data):
    assert check_training_loop(InProcessStudent(), network.init_params(), *data[:2]).status == "failed"
    assert check_short_training(InProcessStudent(), network.init_params(), *data, FAST).status == "failed"
