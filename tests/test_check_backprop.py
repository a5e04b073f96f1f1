"""Q3 check end to end: trusted student-style steps, right and buggy, through InProcessStudent."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest

from grader.checks.backprop import BackpropSettings, check_backprop
from grader.checks.real_step import RealStep, check_real_step
from grader.gradients import probe_point, probe_samples
from grader.results import RunError
from grader.student import InProcessStudent, StudentCodeError
from reference import network

ROOT = Path(__file__).resolve().parents[1]
TENSORS = ("W1", "b1", "W2", "b2", "W3", "b3")


def _digits():
    for path in (ROOT / "reference" / "data" / "mnist_sample.npz", Path("/work/shared/data/mnist.npz")):
        if path.exists():
            with np.load(path, allow_pickle=False) as data:
                return probe_samples(data["x_train"][:2000], data["y_train"][:2000], 5)
    pytest.skip("no MNIST digits available")


@pytest.fixture(scope="module")
def samples():
    return _digits()


# ------------------------------------------------------------- student-style steps (trusted code)

def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def dsigmoid(z):
    return sigmoid(z) * (1 - sigmoid(z))


def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def student_step(params, x, label, lr, *, dtype=np.float64, derivative=("z", "z"), bias_skips=(),
                 output="p-y", sign=1.0, w2_input="a1", transpose_w2=False, rate="once",
                 update_inside_loop=False, frozen_bias=(), scale=1.0, touch_all_rows=False, noise=False,
                 w3_error=0.0, decay=0.0):
    """A from-scratch student's train_one_sample, with one knob per known mistake (defaults are right).

    derivative[k]: what layer k+1's delta is multiplied by: "z" dsigmoid(z), "a" dsigmoid(a), "none".
    """
    weights = [np.asarray(w, dtype=dtype) for w in params[0]]
    biases = [np.asarray(b, dtype=dtype) for b in params[1]]
    x = np.asarray(x, dtype=dtype)
    y = np.zeros(10, dtype=dtype)
    y[label] = 1
    activations, zs = [x], []
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        z = activations[-1] @ w + b
        zs.append(z)
        activations.append(softmax(z) if i == 2 else sigmoid(z))
    p = activations[-1]
    delta = p - y
    if output == "sigmoid'(z3)":
        delta = delta * dsigmoid(zs[2])
    elif output == "p(1-p)":
        delta = delta * p * (1 - p)
    delta = sign * delta
    grads_w, grads_b = [None] * 3, [None] * 3
    for layer in (2, 1, 0):
        inputs = {"a1": activations[1], "a2": activations[2], "z1": zs[0], "z2": zs[1]}
        below = activations[layer] if layer != 1 else inputs[w2_input]
        grads_w[layer] = np.outer(below, delta)
        grads_b[layer] = delta
        if update_inside_loop:
            weights[layer] = weights[layer] - lr * grads_w[layer]
        if layer > 0:
            back = weights[layer] @ delta
            factor = {"z": dsigmoid(zs[layer - 1]), "a": dsigmoid(activations[layer]), "none": 1.0}
            delta = back * factor[derivative[layer - 1]]
    if bias_skips:
        grads_b = _bias_without_derivative(weights, grads_b, zs, bias_skips, delta_out=p - y)
    if transpose_w2:
        grads_w[1] = grads_w[1].T
    grads_w[2] = grads_w[2] * (1 + w3_error * np.cos(np.arange(grads_w[2].size))).reshape(grads_w[2].shape)
    factor = {"once": lr, "ignored": 0.003, "twice": lr * lr}[rate] * scale
    new_w = [w if update_inside_loop else w - factor * (g + decay * w) for w, g in zip(weights, grads_w, strict=True)]
    new_b = [b if k + 1 in frozen_bias else b - factor * g
             for k, (b, g) in enumerate(zip(biases, grads_b, strict=True))]
    if touch_all_rows:
        new_w[0] = new_w[0] * (1 - 1e-4 * lr)  # weight decay
    if noise:
        new_w[2] = new_w[2] + np.random.default_rng().normal(0, 1e-6, new_w[2].shape)
    return new_w, new_b


def _bias_without_derivative(weights, grads_b, zs, hidden_layers, delta_out):
    """Bias gradients where hidden layer k's bias uses W @ delta before the dsigmoid factor."""
    delta3 = delta_out
    delta2 = (weights[2] @ delta3) * dsigmoid(zs[1])
    grads_b = list(grads_b)
    if 2 in hidden_layers:
        grads_b[1] = weights[2] @ delta3
    if 1 in hidden_layers:
        grads_b[0] = weights[1] @ delta2
    return grads_b


def row_vector_step(params, x, label, lr, *, kv2154=False):
    """A student keeping (1, n) biases and row vectors; kv2154=True replicates that real submission's Q3."""
    (w1, w2, w3), (b1, b2, b3) = params
    b1, b2, b3 = b1.reshape(1, -1), b2.reshape(1, -1), b3.reshape(1, -1)
    a = np.reshape(x, (1, 784))
    first = a @ w1 + b1
    first_act = sigmoid(first)
    second = first_act @ w2 + b2
    second_act = sigmoid(second)
    third_act = softmax(second_act @ w3 + b3)
    one_hot = np.zeros((1, 10))
    one_hot[0, label] = 1
    last = third_act - one_hot
    second_back = last @ w3.T
    second_delta = second_back * dsigmoid(second)
    first_back = (second_back if kv2154 else second_delta) @ w2.T
    first_delta = first_back * dsigmoid(first)
    grads_w = [a.T @ first_delta, first_act.T @ second_delta, second_act.T @ last]
    grads_b = [first_back if kv2154 else first_delta, second_back if kv2154 else second_delta, last]
    new_w = [w - lr * g for w, g in zip((w1, w2, w3), grads_w, strict=True)]
    new_b = [b - lr * g for b, g in zip((b1, b2, b3), grads_b, strict=True)]
    return new_w, new_b


def reference_step(params, x, label, lr):
    return network.sgd_step(params[0], params[1], x, label, lr)


def grade(step, samples, **settings):
    results, verdicts = check_backprop(InProcessStudent(step=step), samples, BackpropSettings(**settings))
    return {r.id: r for r in results}, verdicts


def mistake(result) -> str | None:
    return result.details.get("mistake")


# ------------------------------------------------------------- the right answers pass

def test_reference_step_gets_full_marks(samples):
    results, verdicts = grade(reference_step, samples)
    assert all(r.status == "passed" for r in results.values()), [r.message for r in results.values()]
    assert all(r.score == r.max_score == 1.0 for r in results.values())  # each the whole of its share
    assert all(verdicts[n].verdict == "correct" and verdicts[n].rel_error < 1e-9 for n in TENSORS)


def test_student_style_float64_step_passes_as_correct(samples):
    results, verdicts = grade(student_step, samples)
    assert all(r.status == "passed" for r in results.values())
    assert {v.verdict for v in verdicts.values()} == {"correct"}


def test_float32_step_passes_with_a_float32_note(samples):
    results, verdicts = grade(partial(student_step, dtype=np.float32), samples)
    assert all(results[f"Q3.{n}"].status == "passed" for n in TENSORS), [r.message for r in results.values()]
    assert {v.verdict for v in verdicts.values()} == {"float32"}
    assert "float32 precision" in results["Q3.W2"].message
    assert results["Q3.learning_rate"].status == "passed"
    assert results["Q3.zero_pixels"].status == "passed"


def test_row_vector_biases_of_shape_1_n_pass(samples):
    results, verdicts = grade(row_vector_step, samples)
    assert all(r.status == "passed" for r in results.values()), [r.message for r in results.values()]


# ------------------------------------------------------------- each known mistake is rejected and named

CASES = {
    # name: (step keyword arguments, tensors that must fail, mistake id each must be diagnosed as)
    "sigma' of the activation in both hidden layers (the 85.6% one)": (
        {"derivative": ("a", "a")}, {"W1", "b1", "W2", "b2"}, "sigma_prime_of_activation"),
    "sigma' of the activation in layer 2 only": ({"derivative": ("z", "a")}, {"W1", "b1", "W2", "b2"},
                                                 "sigma_prime_of_activation"),
    "sigma' missing from delta1": ({"derivative": ("none", "z")}, {"W1", "b1"},
                                   "missing_sigma_prime_in_delta1"),
    "sigma' missing from both deltas": ({"derivative": ("none", "none")}, {"W1", "b1", "W2", "b2"},
                                        "missing_sigma_prime"),
    "b2 skips sigma'": ({"bias_skips": (2,)}, {"b2"}, "missing_sigma_prime_in_bias2_only"),
    "b1 skips sigma'": ({"bias_skips": (1,)}, {"b1"}, "missing_sigma_prime_in_bias1_only"),
    "output delta times sigma'(z3)": ({"output": "sigmoid'(z3)"}, set(TENSORS),
                                      "output_delta_times_sigmoid_prime_z3"),
    "output delta times p(1-p)": ({"output": "p(1-p)"}, set(TENSORS), "output_delta_times_softmax_diagonal"),
    "sign flipped": ({"sign": -1.0}, set(TENSORS), "sign_flipped"),
    "W2 transposed": ({"transpose_w2": True}, {"W2"}, "transposed"),
    "W2 with a2 in the outer product": ({"w2_input": "a2"}, {"W2"}, "outer_product_with_a2"),
    "W2 with z1 in the outer product": ({"w2_input": "z1"}, {"W2"}, "outer_product_with_z1"),
    "learning rate ignored (0.003 hard-coded)": ({"rate": "ignored"}, set(TENSORS), "learning_rate_ignored"),
    "learning rate applied twice": ({"rate": "twice"}, set(TENSORS), "learning_rate_applied_twice"),
    "weights updated inside the backward loop": ({"update_inside_loop": True}, {"W1", "b1", "W2", "b2"},
                                                "updated_weights_in_backprop"),
    "bias 2 never updated": ({"frozen_bias": (2,)}, {"b2"}, "never_updated"),
    "gradient averaged over the 10 outputs": ({"scale": 0.1}, set(TENSORS), "scaled_by_constant"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_known_mistake_is_rejected_and_diagnosed(samples, case):
    knobs, broken, expected_mistake = CASES[case]
    results, verdicts = grade(partial(student_step, **knobs), samples)
    failed = {n for n in TENSORS if results[f"Q3.{n}"].status == "failed"}
    assert failed == broken
    for n in broken:
        assert results[f"Q3.{n}"].score == 0.0
        assert verdicts[n].verdict == "wrong"
        assert expected_mistake in (mistake(results[f"Q3.{n}"]) or ""), (n, results[f"Q3.{n}"].message)
        assert results[f"Q3.{n}"].message.startswith(f"{n}: wrong, e = ")


def test_a_small_unexplained_error_is_inconclusive_probes_more_digits_and_earns_partial_credit(samples):
    results, verdicts = grade(partial(student_step, w3_error=1e-3), samples)
    assert verdicts["W3"].verdict == "inconclusive"
    assert len(results["Q3.W3"].details["rel_error_per_digit"]) == 5
    assert results["Q3.W3"].score == pytest.approx(0.5)  # half its share
    assert results["Q3.W1"].status == "passed"
    results, verdicts = grade(partial(student_step, w3_error=1e-1), samples)
    assert verdicts["W3"].verdict == "wrong" and len(results["Q3.W3"].details["rel_error_per_digit"]) == 3


def test_the_famous_bug_is_caught_with_an_actionable_sentence(samples):
    results, _ = grade(partial(student_step, derivative=("a", "a")), samples)
    message = results["Q3.W2"].message
    assert "dsigmoid(a2)" in message and "sigma'(z2)" in message and "matches this mistake to e = " in message
    assert [n for n in TENSORS if results[f"Q3.{n}"].score == 1.0] == ["W3", "b3"]


def test_transposed_w2_gradient_is_caught_in_full_not_along_one_direction(samples):
    results, verdicts = grade(partial(student_step, transpose_w2=True), samples)
    assert verdicts["W2"].rel_error > 0.5
    assert "transposed" in results["Q3.W2"].message


def test_kv2154_backprop_is_diagnosed_tensor_by_tensor(samples):
    results, _ = grade(partial(row_vector_step, kv2154=True), samples)
    assert {n for n in TENSORS if results[f"Q3.{n}"].status == "failed"} == {"W1", "b1", "b2"}
    assert mistake(results["Q3.b2"]) == "missing_sigma_prime_in_bias2_only"
    assert mistake(results["Q3.W1"]) == "missing_sigma_prime_in_delta2_passed_down"
    assert mistake(results["Q3.b1"]) == ("missing_sigma_prime_in_delta2_passed_down"
                                         "+missing_sigma_prime_in_bias1_only")


def test_learning_rate_side_check_names_the_rate_mistakes(samples):
    for knobs, expected in (({"rate": "ignored"}, "learning_rate_ignored"),
                            ({"rate": "twice"}, "learning_rate_applied_twice"),
                            ({"update_inside_loop": True}, "updated_weights_in_backprop")):
        results, _ = grade(partial(student_step, **knobs), samples)
        assert results["Q3.learning_rate"].status == "failed"
        assert results["Q3.learning_rate"].details["mistake"] == expected


def test_weight_decay_on_zero_pixel_rows_is_flagged(samples):
    results, _ = grade(partial(student_step, touch_all_rows=True), samples)
    assert results["Q3.zero_pixels"].status == "failed"
    assert "though pixel" in results["Q3.zero_pixels"].message


def test_l2_weight_decay_is_taken_out_of_the_gradient_and_named_not_graded_by_its_size(samples):
    # W -= lr * (dW + 1e-3 * W): e is 1e-6 for W1 (looked like float32), 1e-2 for W2 (wrong), 1e-3 for W3 (half)
    results, verdicts = grade(partial(student_step, decay=1e-3), samples)
    for name in ("W1", "W2", "W3"):
        assert results[f"Q3.{name}"].status == "passed", results[f"Q3.{name}"].message
        assert results[f"Q3.{name}"].details["weight_decay"] == pytest.approx(1e-3, rel=1e-3)
        assert results[f"Q3.{name}"].mistake_id == "weight_decay"
        assert verdicts[name].verdict == "correct" and "weight decay" in verdicts[name].diagnosis
    for name in ("b1", "b2", "b3"):
        assert "weight_decay" not in results[f"Q3.{name}"].details


def test_a_float32_steps_weight_decay_is_named_on_every_weight_matrix(samples):
    # in float32 the decay of W1 (e ~ 1e-6) is too close to rounding to fit alone: the lambda of W2 and W3 explains it
    results, verdicts = grade(partial(student_step, dtype=np.float32, decay=1e-3), samples)
    assert all(verdicts[n].ok for n in TENSORS), [results[f"Q3.{n}"].message for n in TENSORS]
    for name in ("W1", "W2", "W3"):
        assert results[f"Q3.{name}"].details.get("weight_decay") == pytest.approx(1e-3, rel=1e-2), name
    assert not any("weight_decay" in results[f"Q3.{n}"].details for n in ("b1", "b2", "b3"))


def test_weight_decay_applied_after_the_step_is_found_too(samples):
    # W -= lr * dW; W *= 1 - lr * lambda (the implied gradient is (1 - lr * lambda) dW + lambda W)
    def step(params, x, label, lr):
        weights, biases = network.sgd_step(params[0], params[1], x, label, lr)
        return [w * (1 - lr * 5e-3) for w in weights], biases

    results, verdicts = grade(step, samples)
    assert all(verdicts[n].ok for n in TENSORS), [results[f"Q3.{n}"].message for n in TENSORS]
    assert results["Q3.W2"].details["weight_decay"] == pytest.approx(5e-3, rel=1e-3)


def test_a_real_bug_is_not_taken_for_weight_decay(samples):
    results, verdicts = grade(partial(student_step, derivative=("a", "a"), decay=1e-3), samples)
    assert not verdicts["W1"].ok and not verdicts["W2"].ok
    assert all("weight_decay" not in results[f"Q3.{n}"].details for n in ("W1", "W2"))


def test_real_step_charges_weight_decay_once_and_names_it(samples):
    (x, label), (x2, label2) = samples[0], samples[1]
    steps = [RealStep("the handout's initialisation", network.init_params(), np.asarray(x, float).ravel(), label),
             RealStep("probe weights", probe_point(x2, 3), np.asarray(x2, float).ravel(), label2)]
    student = InProcessStudent(step=partial(student_step, decay=1e-3))
    decay = {"W1": 1e-3, "W2": 1e-3, "W3": 1e-3}
    charged = check_real_step(student, steps, 1.0, decay=decay)
    assert charged.status == "failed" and charged.mistake_id == "weight_decay"
    assert "weight decay" in charged.message and "lambda = 0.001" in charged.message
    assert charged.details["weight_decay"] == decay
    right = check_real_step(InProcessStudent(step=reference_step), steps, 1.0)
    assert right.status == "passed"
    other = check_real_step(InProcessStudent(step=partial(student_step, decay=1e-1)), steps, 1.0, decay=decay)
    assert other.status == "failed" and other.mistake_id is None  # not the decay found: an ordinary failure


def test_a_step_with_momentum_is_named_as_not_repeatable(samples):
    velocity = {}

    def momentum_step(params, x, label, lr):
        grads = network.gradient(params[0], params[1], x, label)
        new = []
        for k, (p, g) in enumerate(zip(params[0] + params[1], grads[0] + grads[1], strict=True)):
            velocity[k] = 0.9 * velocity.get(k, 0.0) + g
            new.append(p - lr * velocity[k])
        return new[:3], new[3:]

    results, verdicts = grade(momentum_step, samples)
    assert results["Q3.determinism"].status == "failed"
    wrong = [n for n in TENSORS if not verdicts[n].ok]
    assert wrong
    for name in wrong:
        assert results[f"Q3.{name}"].mistake_id == "step_not_repeatable"
        assert "two identical calls" in results[f"Q3.{name}"].message


def test_a_random_step_fails_determinism(samples):
    results, _ = grade(partial(student_step, noise=True), samples)
    assert results["Q3.determinism"].status == "failed"
    assert results["Q3.determinism"].score == 0.0


# ------------------------------------------------------------- failures of the student's code

def test_a_step_that_raises_gives_error_results_not_a_crash(samples):
    def raising(params, x, label, lr):
        raise StudentCodeError(RunError("exception", "call train_one_sample", "ValueError: shapes mismatch",
                                        "Traceback ...\n  File \"kv.py\", line 12\nValueError"))

    results, verdicts = grade(raising, samples)
    assert {r.status for r in results.values()} == {"error"}
    assert all(r.score == 0.0 for r in results.values())
    assert "line 12" in results["Q3.W1"].traceback
    assert all(not v.ok for v in verdicts.values())


def test_missing_train_one_sample_fails_every_tensor(samples):
    results, verdicts = check_backprop(InProcessStudent(), samples, BackpropSettings())
    assert all(r.status == "failed" and r.score == 0.0 for r in results)
    assert {v.verdict for v in verdicts.values()} == {"missing"}


def test_nan_parameters_are_wrong(samples):
    def nan_step(params, x, label, lr):
        weights, biases = reference_step(params, x, label, lr)
        weights[2] = weights[2] * np.nan
        return weights, biases

    results, verdicts = grade(nan_step, samples)
    assert verdicts["W3"].verdict == "wrong" and results["Q3.W3"].status == "failed"
    assert results["Q3.W1"].status == "passed"


def test_unusable_return_value_fails_without_crashing(samples):
    results, verdicts = grade(lambda params, x, label, lr: None, samples)
    assert all(results[f"Q3.{n}"].status == "failed" for n in TENSORS)
    assert "unusable" in results["Q3.W1"].message
