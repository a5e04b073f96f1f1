"""grader/checks/watched_step.py and the sandbox's `watch`: one step deep in a real epoch, as the student's own loop
took it, compared with the reference's step from the same parameters (the counting cheat of
tests/fixtures/attacks/fd_first_steps_of_epoch.py: right for its first steps of every epoch, wrong after)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from grader.adapt.build import build_student
from grader.checks.watched_step import change_errors, watch_index, watched_sample, watched_step_errors
from grader.gradients import probe_point
from grader.sandbox import Sandbox, SandboxData
from grader.sandbox.runner import sample_key
from grader.student import WatchedStep
from grader.submission import load_submission
from reference import network
from reference.mnist import load_mnist

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = (ROOT / "reference" / "solution.py").read_text(encoding="utf-8")
# The handout's solution, whose step turns into a sigma'(a) backprop after its first 5 calls in each epoch.
COUNTING = SOLUTION + '''

_honest_step, _calls = train_one_sample, [0]


def train_one_sample(sample, y, learning_rate=0.003):
    _calls[0] += 1
    if _calls[0] <= 5:
        return _honest_step(sample, y, learning_rate)
    x = np.asarray(sample, dtype=np.float64).reshape(-1)
    a1 = 1 / (1 + np.exp(-(x @ weights[0] + biases[0])))
    a2 = 1 / (1 + np.exp(-(a1 @ weights[1] + biases[1])))
    z3 = a2 @ weights[2] + biases[2]
    p = np.exp(z3 - z3.max()); p /= p.sum()
    d3 = p.copy(); d3[y] -= 1
    s2 = 1 / (1 + np.exp(-a2)); d2 = (weights[2] @ d3) * s2 * (1 - s2)
    s1 = 1 / (1 + np.exp(-a1)); d1 = (weights[1] @ d2) * s1 * (1 - s1)
    for W, b, a, d in zip(weights, biases, (x, a1, a2), (d1, d2, d3)):
        W -= learning_rate * np.outer(a, d)
        b -= learning_rate * d


def train_one_epoch(learning_rate=0.003):
    _calls[0] = 0
    for i in range(len(x_train)):
        train_one_sample(x_train[i], y_train[i], learning_rate)
'''

# ... which also hands the grader's helpers in the child one-element arrays from numpy's functions.
BLINDING = COUNTING + '''

import sys as _sys


def _blinding(real):
    def fake(*args, **kwargs):
        caller = _sys._getframe(1).f_code.co_filename
        return real([0.0]) if "/inside/" in caller else real(*args, **kwargs)
    return fake


for _name in ("array", "asarray", "ascontiguousarray", "flatnonzero"):
    setattr(np, _name, _blinding(getattr(np, _name)))
'''


@pytest.fixture(scope="module")
def mnist():
    return load_mnist(ROOT / "reference" / "data" / "mnist_sample.npz")


def epoch_errors(source: str, mnist, tmp_path: Path) -> dict[str, float]:
    """The watched step's e per tensor in one real epoch of 40 samples from the handout's initialisation."""
    path = tmp_path / "submission.py"
    path.write_text(source.replace('if __name__ == "__main__":', "if False:"), encoding="utf-8")
    data = SandboxData(mnist.x_train[:40], mnist.y_train[:40], mnist.x_test[:10], mnist.y_test[:10])
    images = network.flatten_images(mnist.x_train[:40])
    labels = mnist.y_train[:40].astype(np.int64)
    with Sandbox(load_submission(path), data=data) as box:
        student = build_student(box, box.run_cells())
        run = student.train_one_epoch(network.init_params(), images, labels, 0.003, False, watch_step=30)
    assert run.watched is not None and run.watched.index == 30
    assert watched_sample(run.watched, images) == 30
    return watched_step_errors(run.watched, images, labels, 0.003)


def test_a_step_that_turns_wrong_after_its_first_calls_is_seen_deep_in_the_epoch(mnist, tmp_path):
    errors = epoch_errors(COUNTING, mnist, tmp_path)
    assert {"W1", "b1", "W2", "b2"} <= {name for name, e in errors.items() if e > 1e-2}, errors
    assert errors["W3"] < 1e-12 and errors["b3"] < 1e-12


def test_numpy_replaced_by_the_student_does_not_blind_the_graders_helpers(mnist, tmp_path):
    errors = epoch_errors(BLINDING, mnist, tmp_path)
    assert {"W1", "b1", "W2", "b2"} <= {name for name, e in errors.items() if e > 1e-2}, errors


def test_a_right_step_is_right_wherever_it_is_watched(mnist, tmp_path):
    errors = epoch_errors(SOLUTION, mnist, tmp_path)
    assert errors and max(errors.values()) < 1e-9, errors


def test_a_change_where_the_reference_hardly_moves_counts(mnist):
    """At the handout's initialisation the raw pixels saturate layer 1: the reference's W1 change is invisible,
    a sigma'(a) step's is not, and comparing only where the reference moves would let it through."""
    x, label = network.flatten_images(mnist.x_train[:1])[0], int(mnist.y_train[0])
    start = network.init_params()
    want = network.sgd_step(*start, x, label, 0.003)
    assert change_errors(start, want, want) == {name: 0.0 for name in change_errors(start, want, want)}
    wrong = ([w.copy() for w in want[0]], [b.copy() for b in want[1]])
    wrong[0][0] -= 0.003 * np.outer(x, np.full(32, 0.19))  # what sigma'(a1 ~ 1) adds to W1
    assert change_errors(start, wrong, want)["W1"] > 0.5


def test_the_watched_sample_is_found_by_its_key_and_an_unknown_one_tells_nothing(mnist):
    images = network.flatten_images(mnist.x_train[:50])
    params = probe_point(images[0], 1)
    at = WatchedStep(7, params, params, sample_key(images[12]))
    assert watched_sample(at, images) == 12
    assert watched_sample(WatchedStep(7, params, params, [1.0, 2.0, 3]), images) is None
    assert watched_step_errors(WatchedStep(12, params, params, sample_key(images[12])), images,
                               np.zeros(50, dtype=int), 0.003) == {}  # no change: a loop threading return values


def test_the_watched_step_is_in_the_second_half_of_the_epoch_whatever_the_bytes():
    assert {watch_index(3000, v) for v in range(5000)} == set(range(1500, 3000))
    assert watch_index(1, 12345) == 0
