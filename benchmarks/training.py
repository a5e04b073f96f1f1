"""Section 4: the reference's per-sample SGD (reference.network.train_epoch) against per-sample baselines.

train_epoch skips the rows of W1 whose pixel is zero (about 81% of them). The baselines do the same
arithmetic on every row: repeated reference.network.sgd_step (new arrays each step), and `textbook_step`
below (the loop a student writes: forward, backward, full in-place update). All three must end at the
same parameters, which is asserted before any figure is reported.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from benchmarks.rows import Row, Section, format_seconds, goal_met
from benchmarks.timing import median, timed
from reference import network
from reference.network import Params

NAME = "training"
GOAL = 2.0
TOLERANCE = 1e-12  # relative, per tensor; the runs are in fact expected to be bit-identical


def textbook_step(weights: list[np.ndarray], biases: list[np.ndarray], x: np.ndarray, label: int,
                  learning_rate: float = network.LEARNING_RATE) -> None:
    """One per-sample SGD step, updating weights (n_in, n_out) and biases (n_out,) in place; x (784,)."""
    activations, preactivations = [x], []
    for layer, (w, b) in enumerate(zip(weights, biases, strict=True)):
        z = activations[-1] @ w + b
        preactivations.append(z)
        activations.append(network.softmax(z) if layer == len(weights) - 1 else network.sigmoid(z))
    delta = activations[-1] - network.one_hot(label)
    grad_w, grad_b = [None] * len(weights), [None] * len(weights)
    for layer in reversed(range(len(weights))):
        grad_w[layer] = np.outer(activations[layer], delta)
        grad_b[layer] = delta
        if layer > 0:
            delta = (weights[layer] @ delta) * network.sigmoid_prime(preactivations[layer - 1])
    for layer in range(len(weights)):
        weights[layer] -= learning_rate * grad_w[layer]
        biases[layer] -= learning_rate * grad_b[layer]


def textbook_epoch(params: Params, images: np.ndarray, labels: np.ndarray,
                   learning_rate: float = network.LEARNING_RATE) -> Params:
    """textbook_step over images (n, 784) in order, on copies of params; returns the new parameters."""
    weights = [np.array(w, dtype=np.float64) for w in params[0]]
    biases = [np.array(b, dtype=np.float64) for b in params[1]]
    for x, label in zip(images, labels, strict=True):
        textbook_step(weights, biases, x, int(label), learning_rate)
    return weights, biases


def sgd_step_epoch(params: Params, images: np.ndarray, labels: np.ndarray,
                   learning_rate: float = network.LEARNING_RATE) -> Params:
    """reference.network.sgd_step over images (n, 784) in order; returns the new parameters."""
    weights, biases = params
    for x, label in zip(images, labels, strict=True):
        weights, biases = network.sgd_step(weights, biases, x, int(label), learning_rate)
    return weights, biases


def skipping_epoch(params: Params, images: np.ndarray, labels: np.ndarray,
                   learning_rate: float = network.LEARNING_RATE) -> Params:
    """reference.network.train_epoch (skips zero-pixel rows of W1) over images (n, 784)."""
    return network.train_epoch(params[0], params[1], images, labels, learning_rate)


def largest_difference(a: Params, b: Params) -> tuple[float, bool]:
    """(largest per-tensor relative difference, whether every tensor is bit-identical)."""
    pairs = list(zip(a[0] + a[1], b[0] + b[1], strict=True))
    worst = 0.0
    for x, y in pairs:
        scale = max(float(np.abs(x).max()), float(np.abs(y).max()))
        if scale > 0:
            worst = max(worst, float(np.abs(x - y).max()) / scale)
    return worst, all(np.array_equal(x, y) for x, y in pairs)


def assert_same_parameters(fast: Params, slow: Params, who: str, tolerance: float = TOLERANCE) -> bool:
    """Raise AssertionError when the two runs' parameters differ beyond tolerance; returns bit-identity."""
    worst, identical = largest_difference(fast, slow)
    assert worst <= tolerance, (f"train_epoch and {who} end at different parameters: "
                                f"{worst:.3g} > {tolerance:g}")
    return identical


Epoch = Callable[[Params, np.ndarray, np.ndarray], Params]
BASELINES: dict[str, tuple[Epoch, str]] = {
    "sgd_step": (sgd_step_epoch, "repeated reference.network.sgd_step"),
    "textbook": (textbook_epoch, "textbook in-place loop (benchmarks.training)"),
}


def step_times(images: np.ndarray, labels: np.ndarray,
               rounds: int) -> tuple[dict[str, dict[str, float]], dict[str, bool]]:
    """Seconds per step (median and min over rounds) of train_epoch and each baseline on the same samples.

    The runs are interleaved and their order rotates every round, so load from other processes falls
    on all of them alike.
    """
    params = network.init_params()
    runners: dict[str, Epoch] = {"train_epoch": skipping_epoch, **{k: e for k, (e, _) in BASELINES.items()}}
    runs: dict[str, list[float]] = {key: [] for key in runners}
    identical: dict[str, bool] = {}
    keys = list(runners)
    for r in range(max(1, rounds)):
        ends = {}
        for key in keys[r % len(keys):] + keys[:r % len(keys)]:
            seconds, ends[key] = timed(lambda e=runners[key]: e(params, images, labels))
            runs[key].append(seconds / len(labels))
        for key, (_, label) in BASELINES.items():
            identical[key] = assert_same_parameters(ends["train_epoch"], ends[key], label)
    return {k: {"median": median(v), "min": min(v)} for k, v in runs.items()}, identical


def three_epochs(x_train, y_train, x_test, y_test,
                 epochs: int = 3) -> tuple[float, list[network.EpochRecord]]:
    """Seconds of `epochs` epochs of reference.network.train_epoch (evaluation excluded) and test figures."""
    weights, biases = network.init_params()
    history, seconds = [network.EpochRecord(0, *network.evaluate(weights, biases, x_test, y_test))], 0.0
    for epoch in range(1, epochs + 1):
        took, (weights, biases) = timed(lambda w=weights, b=biases: skipping_epoch((w, b), x_train, y_train))
        seconds += took
        history.append(network.EpochRecord(epoch, *network.evaluate(weights, biases, x_test, y_test)))
    return seconds, history


def run(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
        steps: int = 1000, rounds: int = 5, epochs: int = 3, source: str = "") -> Section:
    """Per-step times on the first `steps` digits, then `epochs` full epochs; images flat (n, 784) float64."""
    per_step, identical = step_times(x_train[:steps], y_train[:steps], rounds)
    fast = per_step["train_epoch"]["median"]
    rows = []
    for key, (_, label) in BASELINES.items():
        slow = per_step[key]["median"]
        rows.append(Row(
            NAME, f"one SGD step, reference.network.train_epoch ({steps} steps x {rounds})",
            format_seconds(fast), f"{format_seconds(slow)} ({label})", slow / fast,
            f">= {GOAL:.0f}x, identical results", goal_met(slow / fast, GOAL),
            {"train_epoch_s_per_step": fast, "baseline_s_per_step": slow,
             "train_epoch_min_s_per_step": per_step["train_epoch"]["min"],
             "baseline_min_s_per_step": per_step[key]["min"], "baseline": key, "steps": steps,
             "rounds": rounds, "bit_identical": identical[key], "tolerance": TOLERANCE},
        ))
    seconds, history = three_epochs(x_train, y_train, x_test, y_test, epochs)
    total_steps = epochs * len(y_train)
    rows.append(Row(
        NAME, f"reference {epochs} epochs on {len(y_train):,} digits (train_epoch)",
        f"{format_seconds(seconds)} ({format_seconds(seconds / total_steps)} per step)",
        values={"seconds": seconds, "steps": total_steps, "s_per_step": seconds / total_steps,
                "test_accuracy": [round(r.test_accuracy, 4) for r in history],
                "test_loss": [round(r.test_loss, 4) for r in history]},
    ))
    same = ", ".join(f"{key}: {'bit-identical' if identical[key] else f'within {TOLERANCE:g}'}"
                     for key in BASELINES)
    notes = (
        f"per-step medians of {rounds} interleaved rounds (order rotating) of {steps} steps from the "
        f"handout's init (fastest rounds: train_epoch {format_seconds(per_step['train_epoch']['min'])}, "
        + ", ".join(f"{k} {format_seconds(per_step[k]['min'])}" for k in BASELINES) + "); "
        f"final parameters asserted equal ({same})",
        f"{epochs} epochs on {source or 'the given data'}, evaluation excluded from the time; "
        "test accuracy by epoch " + " -> ".join(f"{100 * r.test_accuracy:.2f}%" for r in history),
    )
    return Section(NAME, tuple(rows), notes)
