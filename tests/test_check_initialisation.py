"""Q1 checks: a correct draw (any seed) passes; uniform, mis-scaled, constant and zero weights are named."""

from __future__ import annotations

import numpy as np
import pytest

from grader.checks.initialisation import (
    TESTS,
    InitSettings,
    check_biases,
    check_initialisation,
    check_weight_matrix,
    distribution_pvalues,
    expected_sigma,
    rejects,
)
from grader.student import InProcessStudent
from reference import network

LAYERS = [(784, 32), (32, 32), (32, 10)]
SETTINGS = InitSettings()


def draw(make, seed=1):
    """Three weight matrices from make(rng, n_in, n_out, sigma) and zero biases."""
    rng = np.random.default_rng(seed)
    weights = [make(rng, n_in, n_out, expected_sigma(n_in, n_out)) for n_in, n_out in LAYERS]
    return weights, [np.zeros(n_out) for _, n_out in LAYERS]


def correct(rng, n_in, n_out, sigma):
    return rng.normal(0.0, sigma, (n_in, n_out))


BAD = {
    "uniform [0, s)": lambda rng, n_in, n_out, s: rng.random((n_in, n_out)) * s,
    "uniform [-s, s)": lambda rng, n_in, n_out, s: rng.uniform(-s, s, (n_in, n_out)),
    "uniform, right variance": lambda rng, n_in, n_out, s: rng.uniform(
        -np.sqrt(3) * s, np.sqrt(3) * s, (n_in, n_out)
    ),
    "std 1/max": lambda rng, n_in, n_out, s: rng.normal(0.0, s**2, (n_in, n_out)),
    "unscaled randn": lambda rng, n_in, n_out, s: rng.normal(0.0, 1.0, (n_in, n_out)),
    "constant": lambda rng, n_in, n_out, s: np.full((n_in, n_out), s),
    "zeros": lambda rng, n_in, n_out, s: np.zeros((n_in, n_out)),
}


def by_id(results):
    return {r.id: r for r in results}


def test_the_reference_initialisation_gets_full_marks_and_is_recognised():
    results = check_initialisation(InProcessStudent(initial_params=network.init_params()))
    assert all(r.status == "passed" for r in results), [r.message for r in results]
    assert all(r.score == r.max_score == 1.0 for r in results)  # each its whole share
    assert "exactly the reference draw" in by_id(results)["Q1.W1.distribution"].message


@pytest.mark.parametrize("seed", [0, 1, 2, 12345])
def test_a_correct_draw_from_another_seed_passes_without_the_reference_note(seed):
    results = check_initialisation(InProcessStudent(initial_params=draw(correct, seed)))
    assert all(r.status == "passed" for r in results), [r.message for r in results]
    assert not any("reference draw" in r.message for r in results)


def test_the_legacy_np_random_randn_correct_init_passes():
    np.random.seed(3)
    weights = [np.random.randn(n_in, n_out) * np.sqrt(1 / max(n_in, n_out)) for n_in, n_out in LAYERS]
    results = check_initialisation(
        InProcessStudent(initial_params=(weights, [np.zeros((1, 32)), np.zeros((1, 32)), np.zeros((1, 10))]))
    )
    assert all(r.status == "passed" for r in results), [r.message for r in results]
    assert "(1, 32)" in by_id(results)["Q1.biases"].message


def test_2000_correct_draws_per_matrix_never_fail():
    """The false-failure rate is below 1e-4 per matrix (alpha 1e-5): 2000 seeded draws, no failure."""
    for layer, (n_in, n_out) in enumerate(LAYERS):
        sigma, rng = expected_sigma(n_in, n_out), np.random.default_rng(2024 + layer)
        chunk = 100 if layer == 0 else 2000
        failures = sum(
            int(
                rejects(
                    distribution_pvalues(rng.normal(0, sigma, (chunk, n_in * n_out)), sigma), SETTINGS.alpha
                ).sum()
            )
            for _ in range(2000 // chunk)
        )
        assert failures == 0, f"W{layer + 1}: {failures} of 2000 correct draws failed"


@pytest.mark.parametrize("mistake", sorted(BAD))
def test_each_known_bad_initialisation_is_rejected_for_every_matrix(mistake):
    """Power: 50 seeded draws of each mistake, all rejected, for W1, W2 and W3 alike."""
    for layer, (n_in, n_out) in enumerate(LAYERS):
        sigma = expected_sigma(n_in, n_out)
        rng = np.random.default_rng(7 + layer)
        draws = np.stack([BAD[mistake](rng, n_in, n_out, sigma).ravel() for _ in range(50)])
        with np.errstate(all="ignore"):
            rejected = rejects(distribution_pvalues(draws, sigma), SETTINGS.alpha)
        assert rejected.all(), f"{mistake}: W{layer + 1} accepted {int((~rejected).sum())} of 50"


def test_the_wrong_fan_1_over_n_out_is_rejected_where_it_differs_from_max():
    rng = np.random.default_rng(5)
    weights = [rng.normal(0, np.sqrt(1 / n_out), (n_in, n_out)) for n_in, n_out in LAYERS]
    results = by_id(
        check_initialisation(InProcessStudent(initial_params=(weights, network.init_params()[1])))
    )
    assert results["Q1.W1.distribution"].status == "failed"
    assert "variance 1/n_out = 1/32" in results["Q1.W1.distribution"].message
    assert results["Q1.W2.distribution"].status == "passed"  # 32 x 32: 1/n_out is 1/max
    assert "1/n_out = 1/10" in results["Q1.W3.distribution"].message


def test_the_seed_students_uniform_w3_is_named_with_its_range_and_the_fix():
    """The scanned submission: W3 = np.random.rand(32, 10) * sqrt(1/32)."""
    np.random.seed(0)
    weights = [
        np.random.randn(784, 32) * np.sqrt(1 / 784),
        np.random.randn(32, 32) * np.sqrt(1 / 32),
        np.random.rand(32, 10) * np.sqrt(1 / 32),
    ]
    results = by_id(
        check_initialisation(InProcessStudent(initial_params=(weights, network.init_params()[1])))
    )
    assert results["Q1.W1.distribution"].status == results["Q1.W2.distribution"].status == "passed"
    w3 = results["Q1.W3.distribution"]
    assert w3.status == "failed" and w3.score == 0
    assert "W3 looks uniform on [0, 0.1" in w3.message and "never negative" in w3.message
    assert "rng.normal(0, np.sqrt(1/32), size=(32, 10))" in w3.message
    assert sorted(r.id for r in results.values() if r.score < 1.0) == ["Q1.W3.distribution"]


def test_std_instead_of_variance_is_named_with_the_figures():
    weights = draw(lambda rng, n_in, n_out, s: rng.normal(0, s**2, (n_in, n_out)))[0]
    result = check_weight_matrix((weights, []), 0)
    assert result.status == "failed"
    assert "expected 0.001276 = 1/784" in result.message
    assert "looks like 1/max instead of sqrt(1/max)" in result.message


@pytest.mark.parametrize(
    "mistake,words",
    [("zeros", "W2 is all zeros"), ("constant", "(constant)"), ("unscaled randn", "no scaling at all")],
)
def test_other_mistakes_are_named(mistake, words):
    weights = draw(BAD[mistake])[0]
    result = check_weight_matrix((weights, []), 1)
    assert result.status == "failed" and words in result.message


def test_transposed_weights_are_graded_on_their_distribution_with_the_layout_note():
    weights, biases = network.init_params()
    result = check_weight_matrix(
        ([w.T for w in weights], biases), 0, layout_note="weights stored as (n_out, n_in)"
    )
    assert result.status == "passed"
    assert "transposed" in result.message and "weights stored as (n_out, n_in)" in result.message


def test_a_wrong_shape_fails_with_got_and_expected():
    weights, biases = network.init_params()
    result = check_weight_matrix(([weights[0][:, :16], *weights[1:]], biases), 0)
    assert result.status == "failed" and "shape (784, 16), expected (784, 32)" in result.message


def test_no_weights_at_top_level_fails_every_q1_check():
    results = check_initialisation(InProcessStudent(initial_params=None))
    assert all(r.status == "failed" and "not defined at top level" in r.message for r in results)


def test_non_zero_biases_get_partial_credit_and_say_where():
    weights, biases = network.init_params()
    biases = [biases[0], np.full(32, 0.1), np.zeros(10)]
    result = check_biases((weights, biases), SETTINGS)
    assert result.status == "failed" and result.score == pytest.approx(2 / 3)  # two of three biases
    assert "b2 has 32 non-zero entries" in result.message


def test_bias_of_the_wrong_size_is_rejected():
    weights, biases = network.init_params()
    result = check_biases((weights, [biases[0], biases[1], np.zeros(32)]), SETTINGS)
    assert result.status == "failed" and "b3 has shape (32,), expected (10,)" in result.message


def test_checks_score_shares_and_tests_are_listed():
    results = check_initialisation(InProcessStudent(initial_params=network.init_params()), InitSettings())
    assert [r.max_score for r in results] == [1.0] * 5  # the rubric gives the points
    assert set(results[1].details["pvalues"]) == set(TESTS)
