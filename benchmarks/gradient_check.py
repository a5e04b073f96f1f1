"""Section 1: vectorised finite differences over all 26,506 parameters vs the per-coordinate loop."""

from __future__ import annotations

from functools import partial

import numpy as np

from benchmarks.rows import Row, Section, format_seconds, goal_met
from benchmarks.timing import median, repeated, timed
from grader import gradients
from reference.network import Params

NAME = "gradient verification"
GOAL = 50.0
TOLERANCE = 1e-9  # relative, per tensor


def max_relative_difference(a: Params, b: Params) -> dict[str, float]:
    """Per tensor e = ||a - b|| / max(||a||, ||b||), keyed 'W1'..'b3'."""
    named_a, named_b = gradients.as_named(a), gradients.as_named(b)
    return {name: gradients.relative_error(named_a[name], named_b[name]) for name in gradients.TENSOR_NAMES}


def assert_same_gradient(fast: Params, naive: Params, tolerance: float = TOLERANCE) -> dict[str, float]:
    """Raise AssertionError naming the tensor when the two gradients differ by more than tolerance."""
    errors = max_relative_difference(fast, naive)
    bad = {name: e for name, e in errors.items() if not e <= tolerance}
    assert not bad, f"vectorised and naive finite differences differ beyond {tolerance:g}: {bad}"
    return errors


def parameter_count(params: Params) -> int:
    return sum(int(np.size(t)) for t in params[0] + params[1])


def run(images: np.ndarray, labels: np.ndarray, digits: int = 3, fast_repeats: int = 50,
        source: str = "") -> Section:
    """Time both methods at grader.gradients.probe_point on `digits` real digits of different classes.

    The naive loop runs once per digit, the vectorised method `fast_repeats` times per digit; the
    figures are medians over all runs. images (n, 784) or (n, 28, 28), labels (n,).
    """
    fast_times, naive_times, errors = [], [], []
    samples = gradients.probe_samples(images, labels, digits)
    for seed, (x, label) in enumerate(samples):
        params = gradients.probe_point(x, seed)
        times, fast = repeated(partial(gradients.finite_difference_gradient, params, x, label), fast_repeats)
        fast_times += times
        seconds, naive = timed(partial(gradients.naive_finite_difference_gradient, params, x, label))
        naive_times.append(seconds)
        errors.append(assert_same_gradient(fast, naive))
    fast_s, naive_s = median(fast_times), median(naive_times)
    speedup = naive_s / fast_s
    worst = max(max(e.values()) for e in errors)
    n_params = parameter_count(params)
    row = Row(
        NAME,
        f"finite differences, all {n_params:,} parameters ({len(errors)} digit{'s' * (len(errors) > 1)})",
        format_seconds(fast_s),
        f"{format_seconds(naive_s)} (per-coordinate loop)",
        speedup,
        f">= {GOAL:.0f}x, same result to {TOLERANCE:g}",
        goal_met(speedup, GOAL),
        {"vectorised_s": fast_s, "naive_s": naive_s, "vectorised_runs": len(fast_times),
         "naive_runs": len(naive_times), "parameters": n_params, "digits": len(errors),
         "max_relative_difference": worst, "tolerance": TOLERANCE},
    )
    notes = (
        f"real digits (labels {[label for _, label in samples]}) from {source or 'the given images'}, "
        f"at grader.gradients.probe_point; medians of {len(fast_times)} vectorised and {len(naive_times)} "
        f"naive runs; largest per-tensor relative difference {worst:.1e} (asserted <= {TOLERANCE:g})",
    )
    return Section(NAME, (row,), notes)
