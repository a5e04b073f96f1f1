"""Diagnosis: a wrong tensor is named after the known mistake whose gradient it matches.

The mistaken gradients here are written the way students write them (row vectors, dsigmoid of the
activation, ...), independently of grader.diagnosis, which has to recognise them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from grader.diagnosis import Backprop, RateProbe, backprop, diagnose
from grader.gradients import TENSOR_NAMES, probe_point, probe_samples, relative_error, tensor
from reference import network

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def digit():
    for path in (ROOT / "reference" / "data" / "mnist_sample.npz", Path("/work/shared/data/mnist.npz")):
        if path.exists():
            with np.load(path, allow_pickle=False) as data:
                x, label = probe_samples(data["x_train"][:500], data["y_train"][:500], 2)[1]
                return x, label, probe_point(x, 11)
    pytest.skip("no MNIST digits available")


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def dsigmoid(z):
    return sigmoid(z) * (1 - sigmoid(z))


def student_gradient(params, x, label, *, hidden=("z", "z"), bias_plain=(), output="", sign=1.0):
    """A student's backprop: hidden[k] is what delta_{k+1} is multiplied by ('z', 'a' or 'none')."""
    (w1, w2, w3), (b1, b2, b3) = params
    z1 = x @ w1 + b1
    a1 = sigmoid(z1)
    z2 = a1 @ w2 + b2
    a2 = sigmoid(z2)
    z3 = a2 @ w3 + b3
    p = np.exp(z3 - z3.max()) / np.exp(z3 - z3.max()).sum()
    delta3 = p - np.eye(10)[label]
    if output == "sigmoid":
        delta3 = delta3 * dsigmoid(z3)
    delta3 = sign * delta3

    def factor(kind, z, a):
        return {"z": dsigmoid(z), "a": dsigmoid(a), "none": 1.0}[kind]

    back2 = delta3 @ w3.T
    delta2 = back2 * factor(hidden[1], z2, a2)
    back1 = delta2 @ w2.T
    delta1 = back1 * factor(hidden[0], z1, a1)
    grads_w = [np.outer(x, delta1), np.outer(a1, delta2), np.outer(a2, delta3)]
    grads_b = [back1 if 1 in bias_plain else delta1, back2 if 2 in bias_plain else delta2, delta3]
    return grads_w, grads_b


def diagnosed(grads, digit, name, **kwargs):
    x, label, params = digit
    return diagnose(name, grads, params, x, label, **kwargs)


def test_backprop_with_no_mistake_is_the_reference_gradient(digit):
    x, label, params = digit
    right = network.gradient(*params, x, label)
    mine = backprop(params, x, label, Backprop())
    assert all(relative_error(tensor(mine, n), tensor(right, n)) < 1e-14 for n in TENSOR_NAMES)


def test_a_correct_gradient_has_no_diagnosis(digit):
    x, label, params = digit
    grads = student_gradient(params, x, label)
    assert all(diagnosed(grads, digit, n) is None for n in TENSOR_NAMES)


def test_sigma_prime_of_the_activation_in_both_layers_is_named_per_tensor(digit):
    x, label, params = digit
    grads = student_gradient(params, x, label, hidden=("a", "a"))
    w2 = diagnosed(grads, digit, "W2")
    assert w2.mistake == "sigma_prime_of_activation_in_delta2"
    assert "dsigmoid(a2)" in w2.sentence and "sigma'(z2)" in w2.sentence
    assert w2.rel_error < 1e-12 and w2.correct_rel_error > 1e-2
    w1 = diagnosed(grads, digit, "W1")
    assert w1.mistake == "sigma_prime_of_activation_in_delta2_passed_down+sigma_prime_of_activation_in_delta1"
    assert diagnosed(grads, digit, "W3") is None  # the output layer is right


def test_hidden_bias_without_sigma_prime_is_flagged_as_bias_only(digit):
    x, label, params = digit
    grads = student_gradient(params, x, label, bias_plain=(1,))
    found = diagnosed(grads, digit, "b1")
    assert found.mistake == "missing_sigma_prime_in_bias1_only"
    assert found.sentence == ("b1: your bias gradient lacks the factor sigma'(z1) (your dW1 has sigma'(z1)): "
                              "use delta1 = (W2 @ delta2) * sigma'(z1) for both dW1 and db1.")
    assert "e = " in found.text


def test_missing_sigma_prime_in_the_whole_delta_is_not_called_bias_only(digit):
    x, label, params = digit
    grads = student_gradient(params, x, label, hidden=("none", "z"))
    assert diagnosed(grads, digit, "b1").mistake == "missing_sigma_prime_in_delta1"


def test_output_delta_times_sigmoid_prime_reaches_every_tensor(digit):
    x, label, params = digit
    grads = student_gradient(params, x, label, output="sigmoid")
    mistakes = {diagnosed(grads, digit, n).mistake for n in TENSOR_NAMES}
    assert mistakes == {"output_delta_times_sigmoid_prime_z3"}


def test_float32_rounding_of_a_mistake_still_matches(digit):
    x, label, params = digit
    grads = student_gradient(params, x, label, hidden=("a", "a"))
    rounded = tuple([np.float32(t).astype(float) for t in part] for part in grads)
    assert diagnosed(rounded, digit, "b2").mistake == "sigma_prime_of_activation_in_delta2"


def test_sign_transpose_scale_and_frozen_bias(digit):
    x, label, params = digit
    right = network.gradient(*params, x, label)
    assert diagnosed(student_gradient(params, x, label, sign=-1.0), digit, "W3").mistake == "sign_flipped"
    transposed = ([right[0][0], right[0][1].T, right[0][2]], right[1])
    assert diagnosed(transposed, digit, "W2").mistake == "transposed"
    halved = ([w / 10 for w in right[0]], right[1])
    found = diagnosed(halved, digit, "W1")
    assert found.mistake == "scaled_by_constant" and "divided by 10" in found.sentence
    frozen = (right[0], [right[1][0], np.zeros(32), right[1][2]])
    assert diagnosed(frozen, digit, "b2").mistake == "never_updated"


def test_rate_mistakes_are_read_from_the_two_rate_probe(digit):
    x, label, params = digit
    right = network.gradient(*params, x, label)
    fixed_rate = ([0.003 * w for w in right[0]], [0.003 * b for b in right[1]])  # step = 0.003 * g at lr 1
    at_small = ([3.0 * w for w in right[0]], [3.0 * b for b in right[1]])  # ... and at lr 1e-3
    found = diagnosed(fixed_rate, digit, "W2", rates=RateProbe(1.0, 1e-3, at_small))
    assert found.mistake == "learning_rate_ignored"
    squared = ([1e-3 * w for w in right[0]], [1e-3 * b for b in right[1]])
    found = diagnosed(right, digit, "b3", rates=RateProbe(1.0, 1e-3, squared))
    assert found.mistake == "learning_rate_applied_twice"


def test_unrelated_noise_is_not_diagnosed(digit):
    x, label, params = digit
    right = network.gradient(*params, x, label)
    rng = np.random.default_rng(0)
    noisy = ([w + rng.normal(0, np.abs(w).mean(), w.shape) for w in right[0]], right[1])
    assert diagnosed(noisy, digit, "W2") is None
