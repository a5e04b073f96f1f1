"""The oracle: reference.network against finite differences and itself, reference.solution against network."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from reference import network
from reference.mnist import flattened, read_npz, sample_path

ROOT = Path(__file__).resolve().parents[1]
SIZES = network.LAYER_SIZES


@pytest.fixture(scope="module")
def sample():
    """The bundled sample, flattened: x (n, 784) float64 raw pixels, y (n,) int64."""
    return flattened(read_npz(sample_path()))


def digits_of_different_classes(sample, k: int = 3) -> list[tuple[np.ndarray, int]]:
    """The first training digit of each of the classes 0..k-1: [(x (784,), label)]."""
    return [(sample.x_train[np.flatnonzero(sample.y_train == c)[0]], c) for c in range(k)]


def healthy_point(seed: int, xs: list[np.ndarray]) -> network.Params:
    """A non-saturated point: W1 ~ N(0, 1/||x||^2), other W ~ N(0, 1/max(n_in, n_out)), small biases."""
    rng = np.random.default_rng(seed)
    norm = np.mean([np.linalg.norm(x) for x in xs])
    weights = [rng.normal(0, 1 / norm, (SIZES[0], SIZES[1]))]
    for n_in, n_out in zip(SIZES[1:-1], SIZES[2:], strict=True):
        weights.append(rng.normal(0, np.sqrt(1 / max(n_in, n_out)), (n_in, n_out)))
    biases = [rng.normal(0, 0.1, n) for n in SIZES[1:]]
    return weights, biases


def finite_difference_gradient(weights, biases, x, label) -> network.Params:
    """Central differences of network.loss over every parameter; per-layer step so that z moves by ~1e-5.

    W1 rows of zero pixels are skipped: the loss does not depend on them, their difference is exactly 0.
    """
    activations = network.forward(weights, biases, x).activations
    params = [*weights, *biases]
    grads = [np.zeros_like(p) for p in params]
    for t, (p, g) in enumerate(zip(params, grads, strict=True)):
        layer = t % len(weights)
        is_weight = t < len(weights)
        scale = np.abs(activations[layer]).max() if is_weight else 1.0
        h = 1e-5 / scale
        for index in np.ndindex(p.shape):
            if is_weight and layer == 0 and x[index[0]] == 0:
                continue
            saved = p[index]
            p[index] = saved + h
            up = float(network.loss(weights, biases, x, label))
            p[index] = saved - h
            down = float(network.loss(weights, biases, x, label))
            p[index] = saved
            g[index] = (up - down) / (2 * h)
    return grads[: len(weights)], grads[len(weights):]


def relative_error(g: np.ndarray, f: np.ndarray) -> float:
    """||g - f|| / max(||g||, ||f||), the per-tensor metric of the grader."""
    return float(np.linalg.norm(g - f) / max(np.linalg.norm(g), np.linalg.norm(f), 1e-300))


def errors_per_tensor(grads: network.Params, expected: network.Params) -> dict[str, float]:
    names = ["W1", "W2", "W3", "b1", "b2", "b3"]
    return {n: relative_error(g, f) for n, g, f in zip(names, [*grads[0], *grads[1]],
                                                        [*expected[0], *expected[1]], strict=True)}


# --- network: the gradient ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def probe(sample):
    digits = digits_of_different_classes(sample)
    weights, biases = healthy_point(7, [x for x, _ in digits])
    return weights, biases, digits, [finite_difference_gradient(weights, biases, x, c) for x, c in digits]


def test_analytic_gradient_matches_central_differences_for_every_tensor(probe):
    weights, biases, digits, numeric = probe
    for (x, label), fd in zip(digits, numeric, strict=True):
        z = network.forward(weights, biases, x).preactivations
        assert max(np.abs(z[0]).max(), np.abs(z[1]).max()) < 10, "probe point must not saturate the sigmoids"
        errors = errors_per_tensor(network.gradient(weights, biases, x, label), fd)
        assert max(errors.values()) < 1e-6, errors


def test_gradient_of_zero_pixels_rows_is_exactly_zero(probe):
    weights, biases, digits, _ = probe
    x, label = digits[0]
    grad_w, _ = network.gradient(weights, biases, x, label)
    assert np.all(grad_w[0][x == 0] == 0) and np.any(grad_w[0][x != 0] != 0)


def test_finite_differences_reject_the_seed_students_bias_gradients(probe):
    """b2 = delta3 @ W3.T without sigma'(z2): the mistake kv2154 made, which the check must flag."""
    weights, biases, digits, numeric = probe
    x, label = digits[0]
    fwd = network.forward(weights, biases, x)
    grad_w, grad_b = network.gradient(weights, biases, x, label)
    delta3 = fwd.probabilities - network.one_hot(label)
    wrong_b = [grad_b[0], weights[2] @ delta3, grad_b[2]]
    errors = errors_per_tensor((grad_w, wrong_b), numeric[0])
    assert errors["b2"] > 1e-2 and errors["W2"] < 1e-6


def test_sgd_step_moves_against_the_gradient_and_leaves_its_inputs_alone(probe):
    weights, biases, digits, _ = probe
    x, label = digits[1]
    before = [p.copy() for p in [*weights, *biases]]
    new_w, new_b = network.sgd_step(weights, biases, x, label, learning_rate=0.5)
    grad_w, grad_b = network.gradient(weights, biases, x, label)
    for p, q in zip(before, [*weights, *biases], strict=True):
        np.testing.assert_array_equal(p, q)
    np.testing.assert_array_equal(new_w[1], weights[1] - 0.5 * grad_w[1])
    np.testing.assert_array_equal(new_b[2], biases[2] - 0.5 * grad_b[2])
    assert network.loss(new_w, new_b, x, label) < network.loss(weights, biases, x, label)


# --- network: forward, loss, init, training ---------------------------------------------------------------


def test_batch_forward_equals_per_sample_forward(sample):
    weights, biases = network.init_params()
    batch = network.forward(weights, biases, sample.x_test[:50])
    for i in range(50):
        one = network.forward(weights, biases, sample.x_test[i])
        for a, b in zip(one.activations + one.preactivations, batch.activations + batch.preactivations,
                        strict=True):
            np.testing.assert_allclose(a, b[i], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        network.loss(weights, biases, sample.x_test[:50], sample.y_test[:50]),
        [network.loss(weights, biases, sample.x_test[i], sample.y_test[i]) for i in range(50)],
        rtol=1e-12,
    )


def test_softmax_and_cross_entropy_are_finite_at_extreme_logits():
    logits = np.array([[1000.0, -1000.0, 0, 0, 0, 0, 0, 0, 0, 0], [-1e4] * 10, [745.0] * 9 + [-745.0]])
    probabilities = network.softmax(logits)
    assert np.all(np.isfinite(probabilities))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    losses = network.cross_entropy(logits, np.array([1, 3, 9]))
    assert np.all(np.isfinite(losses))
    np.testing.assert_allclose(losses, [2000.0, np.log(10), 1490.0 + np.log(9)], rtol=1e-12)
    np.testing.assert_array_equal(network.sigmoid(np.array([-1e6, 0.0, 1e6])), [0.0, 0.5, 1.0])


def test_handouts_own_loss_would_overflow_where_the_oracle_does_not():
    """The reason the oracle computes from logits: -sum(y * log(softmax)) is inf at these logits."""
    logits = np.array([1000.0, -1000.0] + [0.0] * 8)
    with np.errstate(divide="ignore"):
        assert np.isinf(-np.log(network.softmax(logits)[1]))
    assert np.isfinite(network.cross_entropy(logits, 1))


def test_init_replays_the_handouts_seed_and_draws():
    weights, biases = network.init_params()
    rng = np.random.default_rng(80085)
    for w, (n_in, n_out) in zip(weights, zip(SIZES[:-1], SIZES[1:], strict=True), strict=True):
        np.testing.assert_array_equal(w, rng.normal(0, np.sqrt(1 / max(n_in, n_out)), (n_in, n_out)))
    assert [b.shape for b in biases] == [(32,), (32,), (10,)] and all(np.all(b == 0) for b in biases)
    assert not np.array_equal(network.init_params(seed=1)[0][0], weights[0])


def looks_like_handout_init(w: np.ndarray) -> bool:
    """Mean 0 and variance 1/max(n_in, n_out) within 4 standard errors, and normal by Kolmogorov-Smirnov."""
    variance = 1 / max(w.shape)
    n = w.size
    mean_ok = abs(w.mean()) < 4 * np.sqrt(variance / n)
    var_ok = abs(w.var() - variance) < 4 * variance * np.sqrt(2 / n)
    normal_ok = stats.kstest(w.ravel() / np.sqrt(variance), "norm").pvalue > 1e-3
    return bool(mean_ok and var_ok and normal_ok)


def test_init_has_the_handouts_distribution_and_a_uniform_layer_does_not():
    weights, _ = network.init_params()
    assert all(looks_like_handout_init(w) for w in weights)
    uniform_w3 = np.random.default_rng(0).random((32, 10)) * np.sqrt(1 / 32)  # kv2154's np.random.rand
    too_wide_w1 = np.random.default_rng(0).normal(0, 1, (784, 32))  # variance 1 instead of 1/784
    assert not looks_like_handout_init(uniform_w3)
    assert not looks_like_handout_init(too_wide_w1)


def test_train_epoch_is_repeated_sgd_steps_bit_for_bit(sample):
    weights, biases = network.init_params()
    steps_w, steps_b = weights, biases
    for x, y in zip(sample.x_train[:100], sample.y_train[:100], strict=True):
        steps_w, steps_b = network.sgd_step(steps_w, steps_b, x, y)
    seen = []
    epoch_w, epoch_b = network.train_epoch(weights, biases, sample.x_train[:100], sample.y_train[:100],
                                           progress=seen.append)
    assert seen == list(range(1, 101))
    for a, b in zip([*steps_w, *steps_b], [*epoch_w, *epoch_b], strict=True):
        np.testing.assert_array_equal(a, b)


def test_one_short_training_run_improves_test_accuracy(sample):
    (weights, biases), history = network.train(*network.init_params(), sample.x_train, sample.y_train,
                                               sample.x_test, sample.y_test, epochs=1)
    before, after = history
    assert before.test_accuracy < 0.2
    assert after.test_accuracy > 0.4 and after.test_loss < before.test_loss
    assert network.evaluate(weights, biases, sample.x_test, sample.y_test)[1] == after.test_accuracy


# --- solution.py: the handout's API, agreeing with network ------------------------------------------------


@pytest.fixture
def solution(monkeypatch, sample):
    """reference.solution with fresh copies of its globals (tests may mutate them) and the sample's data."""
    from reference import solution as module

    weights, biases = network.init_params()
    monkeypatch.setattr(module, "weights", [w.copy() for w in weights])
    monkeypatch.setattr(module, "biases", [b.copy() for b in biases])
    data = read_npz(sample_path())
    for name in ("x_train", "y_train", "x_test", "y_test"):
        monkeypatch.setattr(module, name, getattr(data, name))
    return module


def test_solution_initialises_exactly_as_the_oracle():
    from reference import solution

    for a, b in zip([*solution.weights, *solution.biases], [*sum(network.init_params(), [])], strict=True):
        np.testing.assert_array_equal(a, b)
    assert solution.x_train.dtype == np.uint8 and solution.x_train.shape[1:] == (28, 28)


def test_solution_helpers_agree_with_network(solution):
    z = np.linspace(-800, 800, 101)
    np.testing.assert_array_equal(solution.sigmoid(z), network.sigmoid(z))
    np.testing.assert_array_equal(solution.dsigmoid(z), network.sigmoid_prime(z))
    logits = np.array([3.0, -2.0, 700.0, 0.5])
    np.testing.assert_array_equal(solution.softmax(logits), network.softmax(logits))
    np.testing.assert_array_equal(solution.integer_to_one_hot(4, 10), network.one_hot(4))
    with np.errstate(all="raise"):
        assert np.isfinite(solution.cross_entropy_loss(network.one_hot(1), np.array([1.0] + [0.0] * 9)))


def test_solution_forward_agrees_with_network(solution, sample):
    weights, biases = network.init_params()
    for i in range(20):
        loss, guess = solution.feed_forward_sample(solution.x_test[i], solution.y_test[i])
        assert loss == pytest.approx(float(network.loss(weights, biases, sample.x_test[i], sample.y_test[i])),
                                     rel=1e-12)
        expected_guess = network.one_hot(network.predict(weights, biases, sample.x_test[i]))
        np.testing.assert_array_equal(guess, expected_guess)


def test_solution_train_one_sample_is_the_oracles_sgd_step(solution, probe):
    weights, biases, digits, _ = probe
    solution.weights = [w.copy() for w in weights]
    solution.biases = [b.copy() for b in biases]
    x, label = digits[2]
    solution.train_one_sample(x.reshape(28, 28).astype(np.uint8), label, learning_rate=1.0)
    expected_w, expected_b = network.sgd_step(weights, biases, x, label, learning_rate=1.0)
    for a, b in zip([*solution.weights, *solution.biases], [*expected_w, *expected_b], strict=True):
        np.testing.assert_array_equal(a, b)


def test_solution_train_one_epoch_matches_the_oracle_bit_for_bit(solution, sample, capsys):
    solution.x_train, solution.y_train = solution.x_train[:300], solution.y_train[:300]
    solution.train_one_epoch()
    expected_w, expected_b = network.train_epoch(*network.init_params(), sample.x_train[:300],
                                                 sample.y_train[:300])
    for a, b in zip([*solution.weights, *solution.biases], [*expected_w, *expected_b], strict=True):
        np.testing.assert_array_equal(a, b)
    assert "Finished training." in capsys.readouterr().out


def test_solution_feed_forward_dataset_prints_the_handouts_lines_with_the_oracles_figures(solution, sample,
                                                                                         capsys):
    solution.feed_forward_dataset(solution.x_test[:200], solution.y_test[:200])
    out = capsys.readouterr().out
    loss, accuracy = network.evaluate(*network.init_params(), sample.x_test[:200], sample.y_test[:200])
    assert f"Average loss: {loss:.2f}" in out
    match = re.search(r"Accuracy \(# of correct guesses\): (\d+) / 200 \( ([\d.]+) %\)", out)
    assert match, out
    assert int(match[1]) == round(accuracy * 200) and float(match[2]) == pytest.approx(100 * accuracy)


FAKE_TENSORFLOW = '''
import types
import numpy as np

def load_data(path="mnist.npz"):
    with np.load({sample!r}, allow_pickle=False) as d:
        return (d["x_train"][:60], d["y_train"][:60]), (d["x_test"][:30], d["y_test"][:30])

mnist = types.SimpleNamespace(load_data=load_data)
keras = types.SimpleNamespace(datasets=types.SimpleNamespace(mnist=mnist))
'''


def test_solution_runs_top_to_bottom_as_a_submission_without_the_reference_package(tmp_path):
    """In the sandbox `reference` is hidden and `tensorflow` is the grader's stand-in: it must still run."""
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text(FAKE_TENSORFLOW.format(sample=str(sample_path())))
    runner = textwrap.dedent(f"""
        import runpy, sys
        sys.modules["reference"] = None  # `from reference.mnist import ...` now raises ImportError
        runpy.run_path({str(ROOT / "reference" / "solution.py")!r}, run_name="__main__")
    """)
    done = subprocess.run([sys.executable, "-c", runner], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("Accuracy (# of correct guesses):") == 4
    assert re.findall(r"correct guesses\): \d+ / (\d+)", done.stdout) == ["30"] * 4


def test_importing_the_solution_does_not_train():
    source = (ROOT / "reference" / "solution.py").read_text()
    tree = ast.parse(source)
    calls_at_top_level = [
        ast.unparse(node) for node in tree.body
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
    ]
    assert calls_at_top_level == []
    assert 'if __name__ == "__main__":' in source


# --- the seed submission keeps its real mistakes ------------------------------------------------------------


@pytest.fixture(scope="module")
def kv2154():
    """kv2154's imports and function definitions only (no data loading, no top-level training)."""
    tree = ast.parse((ROOT / "submissions" / "kv2154.py").read_text())
    keep = [n for n in tree.body if isinstance(n, ast.FunctionDef)
            or (isinstance(n, ast.Import | ast.ImportFrom) and "tensorflow" not in ast.unparse(n)
                and "matplotlib" not in ast.unparse(n))]
    namespace: dict = {}
    exec(compile(ast.Module(body=keep, type_ignores=[]), "kv2154.py", "exec"), namespace)
    return namespace


def test_seed_submission_defines_the_handouts_names(kv2154):
    for name in ("sigmoid", "dsigmoid", "softmax", "cross_entropy_loss", "integer_to_one_hot",
                 "feed_forward_sample", "feed_forward_dataset", "train_one_sample", "train_one_epoch",
                 "test_and_train", "feed_forward_test_data"):
        assert callable(kv2154.get(name)), name


def test_seed_submission_keeps_its_wrong_hidden_gradients_and_its_infinite_loss(kv2154, probe):
    weights, biases, digits, numeric = probe
    x, label = digits[0]
    kv2154["weights"] = [w.copy() for w in weights]
    kv2154["biases"] = [b.reshape(1, -1).copy() for b in biases]  # the student's (1, n) biases
    kv2154["train_one_sample"](x.reshape(28, 28).astype(np.uint8), label, learning_rate=1.0)
    implied = ([w - v for w, v in zip(weights, kv2154["weights"], strict=True)],
               [b - v.reshape(-1) for b, v in zip(biases, kv2154["biases"], strict=True)])
    errors = errors_per_tensor(implied, numeric[0])
    assert max(errors["W3"], errors["b3"], errors["W2"]) < 1e-6, errors
    assert min(errors["W1"], errors["b1"], errors["b2"]) > 1e-2, errors
    with np.errstate(divide="ignore"):
        loss, guess = kv2154["feed_forward_sample"](x.reshape(28, 28), label)
    assert np.isinf(loss) and guess.shape == (1, 10)
