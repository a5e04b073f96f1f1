"""Probe point, implied gradient, finite differences and the per-tensor verdict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from grader.gradients import (
    TENSOR_NAMES,
    GradientPolicy,
    compare_tensor,
    describe,
    finite_difference_gradient,
    implied_gradient,
    naive_finite_difference_gradient,
    probe_point,
    probe_samples,
    relative_error,
    tensor,
)
from reference import network

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def samples():
    for path in (ROOT / "reference" / "data" / "mnist_sample.npz", Path("/work/shared/data/mnist.npz")):
        if path.exists():
            with np.load(path, allow_pickle=False) as data:
                return probe_samples(data["x_train"][:2000], data["y_train"][:2000], 5)
    pytest.skip("no MNIST digits available")


def rounded_to_float32(a):
    return np.asarray(a, dtype=np.float32).astype(np.float64)


# ------------------------------------------------------------- probe point and digits

def test_probe_digits_are_of_different_classes_and_deterministic(samples):
    labels = [label for _, label in samples]
    assert len(set(labels)) == len(labels) == 5
    assert all(x.shape == (784,) and x.max() > 1 for x, _ in samples)  # raw pixels, not scaled


def test_probe_point_is_deterministic_and_not_saturated(samples):
    x, _ = samples[0]
    first, again, other = probe_point(x, 7), probe_point(x, 7), probe_point(x, 8)
    assert all(np.array_equal(a, b) for a, b in zip(first[0] + first[1], again[0] + again[1], strict=True))
    assert not np.array_equal(first[0][0], other[0][0])
    assert [w.shape for w in first[0]] == [(784, 32), (32, 32), (32, 10)]
    assert [b.shape for b in first[1]] == [(32,), (32,), (10,)]
    z1 = network.forward(*first, x).preactivations[0]
    assert 0.3 < z1.std() < 3 and np.abs(z1).max() < 6  # the handout's init gives median |z1| = 63


def test_handout_init_is_saturated_which_is_why_the_grader_has_its_own_point(samples):
    x, _ = samples[0]
    z1 = network.forward(*network.init_params(), x).preactivations[0]
    assert np.median(np.abs(z1)) > 10


# ------------------------------------------------------------- implied gradient

def test_implied_gradient_at_rate_one_is_exact_for_the_reference_step(samples):
    x, label = samples[1]
    params = probe_point(x, 0)
    after = network.sgd_step(*params, x, label, 1.0)
    implied = implied_gradient(params, after, 1.0)
    exact = network.gradient(*params, x, label)
    assert all(relative_error(tensor(implied, n), tensor(exact, n)) < 1e-13 for n in TENSOR_NAMES)


def test_implied_gradient_reads_row_biases_and_keeps_transposed_weights_transposed(samples):
    x, label = samples[0]
    params = probe_point(x, 0)
    weights, biases = network.sgd_step(*params, x, label, 1.0)
    stored = ([weights[0].T, *weights[1:]], [b.reshape(1, -1) for b in biases])
    implied = implied_gradient(params, stored, 1.0)
    assert implied[1][0].shape == (32,)
    assert implied[0][0].shape == (32, 784)
    unusable = implied_gradient(params, ([weights[0][:10], *weights[1:]], biases), 1.0)
    assert unusable[0][0].shape == (10, 32) and np.isnan(unusable[0][0]).all()


# ------------------------------------------------------------- finite differences

def test_finite_differences_agree_with_the_naive_loop_on_every_coordinate(samples):
    x, label = samples[2]
    params = probe_point(x, 3)
    fast = finite_difference_gradient(params, x, label)
    slow = naive_finite_difference_gradient(params, x, label)
    for n in TENSOR_NAMES:
        assert relative_error(tensor(fast, n), tensor(slow, n)) < 1e-9, n


def test_finite_differences_agree_with_backpropagation_on_every_probe_digit(samples):
    for i, (x, label) in enumerate(samples):
        params = probe_point(x, i)
        fd = finite_difference_gradient(params, x, label)
        bp = network.gradient(*params, x, label)
        for n in TENSOR_NAMES:
            assert relative_error(tensor(fd, n), tensor(bp, n)) < 1e-9, (i, n)


def test_zero_pixel_rows_of_the_w1_difference_are_exactly_zero(samples):
    x, label = samples[0]
    fd = finite_difference_gradient(probe_point(x, 0), x, label)
    assert not fd[0][0][x == 0].any()
    assert np.abs(fd[0][0][x > 0]).max() > 0


def test_finite_differences_see_a_perturbed_loss(samples):
    x, label = samples[0]
    params = probe_point(x, 0)
    shifted = ([w.copy() for w in params[0]], [b.copy() for b in params[1]])
    shifted[0][1][3, 4] += 0.5  # a different point has a different gradient
    e = relative_error(tensor(finite_difference_gradient(shifted, x, label), "W2"),
                       tensor(network.gradient(*params, x, label), "W2"))
    assert e > 1e-3


# ------------------------------------------------------------- the per-tensor verdict

@pytest.fixture(scope="module")
def expected(samples):
    x, label = samples[0]
    return finite_difference_gradient(probe_point(x, 0), x, label)


def test_exact_gradient_is_correct(expected):
    f = tensor(expected, "W2")
    v = compare_tensor("W2", f.copy(), f)
    assert v.ok and v.verdict == "correct" and v.rel_error < 1e-15
    assert describe(v).startswith("W2: matches finite differences")


def test_float32_rounding_is_correct_with_a_float32_note(expected):
    f = tensor(expected, "W1")
    v = compare_tensor("W1", rounded_to_float32(f) * (1 + 3e-7), f)
    assert v.ok and v.verdict == "float32"
    assert "float32 precision" in describe(v)


def test_half_gradient_is_wrong_with_ratio_one_half(expected):
    f = tensor(expected, "b2")
    v = compare_tensor("b2", 0.5 * f, f)
    assert not v.ok and v.verdict == "wrong"
    assert v.ratio == pytest.approx(0.5) and v.sign_agreement == 1.0
    assert v.rel_error == pytest.approx(0.5)
    text = describe(v)
    assert "got" in text and "expected" in text and "ratio g/f = 0.5" in text


def test_flipped_sign_is_wrong_with_ratio_minus_one_and_no_sign_agreement(expected):
    f = tensor(expected, "W3")
    v = compare_tensor("W3", -f, f)
    assert v.verdict == "wrong" and v.ratio == pytest.approx(-1) and v.sign_agreement == 0.0
    assert v.rel_error == pytest.approx(2.0)


def test_worst_entry_is_reported(expected):
    f = tensor(expected, "W2")
    g = f.copy()
    g[5, 7] += 1.0
    v = compare_tensor("W2", g, f)
    assert v.worst_index == [5, 7]
    assert v.worst_student == pytest.approx(g[5, 7]) and v.worst_expected == pytest.approx(f[5, 7])


def test_small_error_between_thresholds_is_inconclusive(expected):
    f = tensor(expected, "W2")
    v = compare_tensor("W2", f * (1 + 1e-3 * np.cos(np.arange(f.size)).reshape(f.shape)), f)
    assert v.verdict == "inconclusive" and not v.ok


def test_thresholds_come_from_the_policy(expected):
    f = tensor(expected, "W2")
    g = f * (1 + 1e-3 * np.cos(np.arange(f.size)).reshape(f.shape))
    assert compare_tensor("W2", g, f, GradientPolicy(correct=1e-2, wrong=1e-1)).verdict == "float32"
    assert compare_tensor("W2", g, f, GradientPolicy(correct=1e-6, wrong=1e-4)).verdict == "wrong"


def test_both_zero_counts_as_equal():
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert compare_tensor("b3", np.zeros(10), np.zeros(10)).verdict == "correct"


def test_zero_student_gradient_is_wrong(expected):
    f = tensor(expected, "b1")
    v = compare_tensor("b1", np.zeros_like(f), f)
    assert v.verdict == "wrong" and v.rel_error == 1.0 and v.ratio == 0.0


def test_shapes_row_bias_transposed_and_wrong(expected):
    b = tensor(expected, "b1")
    assert compare_tensor("b1", b.reshape(1, -1), b).verdict == "correct"
    w = tensor(expected, "W1")
    v = compare_tensor("W1", w.T, w)
    assert v.verdict == "correct" and "transposed" in v.diagnosis
    v = compare_tensor("W1", w[:100], w)
    assert v.verdict == "wrong" and "shape (100, 32)" in v.diagnosis


def test_non_finite_missing_and_non_numeric_are_wrong(expected):
    f = tensor(expected, "W3")
    g = f.copy()
    g[2, 3] = np.nan
    v = compare_tensor("W3", g, f)
    assert v.verdict == "wrong" and v.worst_index == [2, 3] and "nan" in v.diagnosis
    assert compare_tensor("W3", None, f).verdict == "missing"
    assert compare_tensor("W3", np.array(["a"] * 320).reshape(32, 10), f).verdict == "wrong"
