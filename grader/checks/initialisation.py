"""Q1: the student's initial weights and biases: shapes, zero biases, W ~ N(0, 1/max(n_in, n_out)).

Each weight matrix gets four tests against the known distribution: a z-test on the mean, a chi-square
test on the sum of squares (variance), a Kolmogorov-Smirnov test against N(0, sigma^2), and a binomial test
on the share of entries beyond 1.8 sigma (7.19%; bounded draws such as a uniform have none, which KS misses
in the small matrices). Bonferroni: each runs at alpha/4, so a correct initialisation (any seed) fails with
probability below `alpha` per matrix.
A failing matrix is compared with the usual mistakes (uniform draws, std where the variance was meant,
the wrong fan, no scaling, constants) to say which one it looks like.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from grader.checks.failures import SHARE
from grader.results import CheckResult
from grader.student import Params, Student
from reference import network

TESTS = ("mean", "variance", "normality", "tails")
TAIL = 1.8  # in sigmas


@dataclass(frozen=True)
class InitSettings:
    """The false-failure rate for Q1."""

    alpha: float = 1e-5  # chance that a correct matrix fails, per matrix (Bonferroni over TESTS)
    sizes: tuple[int, ...] = network.LAYER_SIZES


def expected_sigma(n_in: int, n_out: int) -> float:
    """The handout's standard deviation: sqrt(1 / max(n_in, n_out))."""
    return float(np.sqrt(1.0 / max(n_in, n_out)))


def distribution_pvalues(samples: np.ndarray, sigma: float) -> dict[str, np.ndarray]:
    """Two-sided p-values of the mean, variance and normality tests: samples (..., n) -> {test: (...)}."""
    from scipy import special  # imported when first needed: it costs every `grade` start 0.1 s

    samples = np.asarray(samples, dtype=np.float64)
    n = samples.shape[-1]
    z = samples.mean(axis=-1) / (sigma / np.sqrt(n))
    p_mean = 2.0 * special.ndtr(-np.abs(z))
    chi = (samples**2).sum(axis=-1) / sigma**2  # ~ chi2(n) when the mean is known to be 0
    p_variance = np.minimum(1.0, 2.0 * np.minimum(special.chdtr(n, chi), special.chdtrc(n, chi)))
    p_normality = two_sided_ks_pvalue(ks_distance(samples, sigma), n)
    return {
        "mean": p_mean,
        "variance": p_variance,
        "normality": p_normality,
        "tails": _tail_pvalue(samples, sigma),
    }


def two_sided_ks_pvalue(distance: np.ndarray | float, n: int) -> np.ndarray:
    """P(D_n >= d) bounded above by twice the exact one-sided tail (Smirnov): conservative, tight for small p."""
    from scipy import special

    return np.minimum(1.0, 2.0 * special.smirnov(n, np.clip(distance, 0.0, 1.0)))


def _binomial_at_least(count: np.ndarray, n: int, share: float) -> np.ndarray:
    """P(X >= count) for X ~ Binomial(n, share)."""
    from scipy import special

    count = np.asarray(count)
    return np.where(count <= 0, 1.0, special.bdtrc(np.maximum(count - 1, 0), n, share))


def _tail_pvalue(samples: np.ndarray, sigma: float) -> np.ndarray:
    """Two-sided binomial p-value of the count of |w| > TAIL * sigma: (..., n) -> (...)."""
    from scipy import special

    n = samples.shape[-1]
    share = 2.0 * special.ndtr(-TAIL)
    count = (np.abs(samples) > TAIL * sigma).sum(axis=-1)
    return np.minimum(
        1.0, 2.0 * np.minimum(special.bdtr(count, n, share), _binomial_at_least(count, n, share))
    )


def ks_distance(samples: np.ndarray, sigma: float) -> np.ndarray:
    """Kolmogorov-Smirnov distance to N(0, sigma^2): (..., n) -> (...)."""
    from scipy import special

    ordered = np.sort(samples, axis=-1)
    n = ordered.shape[-1]
    cdf = special.ndtr(ordered / sigma)
    steps = np.arange(1, n + 1) / n
    return np.maximum((steps - cdf).max(axis=-1), (cdf - (steps - 1.0 / n)).max(axis=-1))


def failed_tests(pvalues: dict[str, np.ndarray], alpha: float) -> dict[str, np.ndarray]:
    """Per test, True where its p-value is below alpha / (number of tests) (Bonferroni): (…) bool each."""
    return {t: np.asarray(pvalues[t] < alpha / len(TESTS)) for t in TESTS}


def rejects(pvalues: dict[str, np.ndarray], alpha: float) -> np.ndarray:
    """True where any test fails: the matrix is not N(0, sigma^2) at level alpha. (…) bool."""
    return np.any(list(failed_tests(pvalues, alpha).values()), axis=0)


# ---------------------------------------------------------------- naming the mistake


def _known_variances(n_in: int, n_out: int) -> list[tuple[float, str, str]]:
    """(variance, mistake id, what it looks like) for common wrong scalings; the right one, 1/max, excluded."""
    fan = max(n_in, n_out)
    table = [
        (1.0 / fan**2, "std_not_variance",
         f"std 1/{fan} instead of sqrt(1/{fan}): the scale looks like 1/max instead of sqrt(1/max)"),
        (1.0, "unscaled", "no scaling at all (variance 1, plain randn / standard_normal)"),
        (1.0 / n_in, "fan_in", f"variance 1/n_in = 1/{n_in}: the handout's fan is max(n_in, n_out) = {fan}"),
        (1.0 / n_out, "fan_out", f"variance 1/n_out = 1/{n_out}: the handout's fan is max(n_in, n_out) = {fan}"),
        (2.0 / (n_in + n_out), "glorot", f"Glorot's variance 2/(n_in + n_out) = 2/{n_in + n_out}, not 1/max = 1/{fan}"),
        (2.0 / n_in, "he", f"He's variance 2/n_in = 2/{n_in}, not 1/max = 1/{fan}"),
        (1.0 / n_in**2, "std_fan_in", f"std 1/n_in = 1/{n_in}: both the fan and sqrt are off"),
        (1.0 / n_out**2, "std_fan_out", f"std 1/n_out = 1/{n_out}: both the fan and sqrt are off"),
    ]
    seen, kept = {1.0 / fan}, []
    for variance, mistake, looks_like in table:
        if not any(np.isclose(variance, v, rtol=1e-9) for v in seen):
            seen.add(variance)
            kept.append((variance, mistake, looks_like))
    return kept


def _closest_known_variance(variance: float, n: int, n_in: int, n_out: int) -> tuple[str, str] | None:
    """The known wrong scaling (id, words) nearest to `variance`, if within 5 standard errors of log(variance)."""
    if variance <= 0:
        return None
    tolerance = max(0.15, 5.0 * np.sqrt(2.0 / n))  # the standard error of log(mean square) is sqrt(2/n)
    distance, mistake, text = min((abs(np.log(variance / v)), m, t) for v, m, t in _known_variances(n_in, n_out))
    return (mistake, text) if distance < tolerance else None


def _uniform_shape(w: np.ndarray) -> str | None:
    """'uniform on [lo, hi)' if w looks uniform on its range (KS p > 1e-3), else None."""
    lo, hi = float(w.min()), float(w.max())
    if hi <= lo:
        return None
    if lo >= 0:
        lo = 0.0
    elif abs(lo + hi) < 0.1 * (hi - lo):
        lo, hi = -max(-lo, hi), max(-lo, hi)
    x = np.sort((w.ravel() - lo) / (hi - lo))
    k = np.arange(1, x.size + 1)
    distance = max(float(np.max(k / x.size - x)), float(np.max(x - (k - 1) / x.size)))
    p = two_sided_ks_pvalue(distance, x.size)
    return f"uniform on [{lo:.3g}, {hi:.3g})" if p > 1e-3 else None


def describe_mistake(name: str, w: np.ndarray, n_in: int, n_out: int) -> tuple[str | None, str, str]:
    """(mistake id, one sentence naming the likely mistake with the measurements, the same sentence without
    them: what every student with this mistake reads) for a weight matrix that failed the tests."""
    fan, flat = max(n_in, n_out), w.ravel()
    fix = f"use rng.normal(0, np.sqrt(1/{fan}), size=({n_in}, {n_out}))"
    if np.all(flat == 0):
        return "zeros", f"{name} is all zeros; {fix}.", f"{name} is all zeros; {fix}."
    if np.all(flat == flat[0]):
        return "constant", f"Every entry of {name} is {flat[0]:.6g} (constant); {fix}.", (
            f"Every entry of {name} is the same constant; {fix}.")
    shape = _uniform_shape(flat)
    never_negative = "values are never negative (np.random.rand / rng.random draw from [0, 1))"
    if flat.min() >= 0:
        looks = f"looks {shape}" if shape else "has no negative values"
        return "non_negative", f"{name} {looks}: {never_negative}; {fix}.", f"{name}'s {never_negative}; {fix}."
    if shape:
        return "uniform", f"{name} looks {shape}, not normal; {fix}.", f"{name} looks uniform, not normal; {fix}."
    variance = float(np.mean(flat**2))
    known = _closest_known_variance(variance, flat.size, n_in, n_out)
    if known:
        mistake, text = known
        return (mistake, f"{name}'s variance {variance:.3g} (std {np.sqrt(variance):.3g}) looks like {text}; {fix}.",
                f"{name}'s variance looks like {text}; {fix}.")
    return None, "", ""


# ---------------------------------------------------------------- the checks


def _fail(check_id: str, title: str, points: float, message: str, **details) -> CheckResult:
    return CheckResult(check_id, title, "failed", 0.0, points, message, details=details)


def _as_array(value) -> np.ndarray | None:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return array


def _layers(sizes: Sequence[int]) -> list[tuple[int, int]]:
    return list(zip(sizes[:-1], sizes[1:], strict=False))


def check_weight_matrix(
    params: Params | None, layer: int, settings: InitSettings = InitSettings(), layout_note: str | None = None
) -> CheckResult:
    """Q1.W<layer+1>.distribution: shape (n_in, n_out) or transposed, W ~ N(0, 1/max(n_in, n_out))."""
    name = f"W{layer + 1}"
    n_in, n_out = _layers(settings.sizes)[layer]
    check_id, title, points = (
        f"Q1.{name}.distribution",
        f"{name} ~ N(0, 1/{max(n_in, n_out)})",
        SHARE,
    )
    if params is None:
        return _fail(check_id, title, points, "weights/biases not defined at top level.")
    weights = params[0]
    if layer >= len(weights):
        return _fail(
            check_id, title, points, f"{name} is missing: got {len(weights)} weight matrices, expected 3."
        )
    w = _as_array(weights[layer])
    if w is None:
        return _fail(check_id, title, points, f"{name} is not an array of numbers.")
    note = ""
    if w.shape == (n_out, n_in) and n_in != n_out:
        note = f" (stored as ({n_out}, {n_in}), transposed{'; ' + layout_note if layout_note else ''})"
    elif w.shape != (n_in, n_out):
        return _fail(check_id, title, points, f"{name} has shape {w.shape}, expected ({n_in}, {n_out}).")
    if not np.all(np.isfinite(w)):
        return _fail(
            check_id, title, points, f"{name} contains {np.count_nonzero(~np.isfinite(w))} nan/inf values."
        )
    sigma = expected_sigma(n_in, n_out)
    flat = w.ravel()
    pvalues = {t: float(p) for t, p in distribution_pvalues(flat, sigma).items()}
    mean_square, mean, variance = float(np.mean(flat**2)), float(flat.mean()), float(np.var(flat))
    details = {
        "shape": list(w.shape),
        "mean": mean,
        "mean_square": mean_square,
        "variance": variance,
        "expected_variance": sigma**2,
        "variance_ratio": mean_square / sigma**2,
        "pvalues": pvalues,
        "alpha": settings.alpha,
        "ks_distance": float(ks_distance(flat, sigma)),
    }
    figures = (
        f"mean {mean:.3g} (z = {mean / (sigma / np.sqrt(flat.size)):.2f}), variance {variance:.4g} "
        f"(expected {sigma**2:.4g} = 1/{max(n_in, n_out)}, ratio {variance / sigma**2:.3g}), "
        f"KS distance {details['ks_distance']:.3g} (p = {pvalues['normality']:.2g})"
    )
    failed = [t for t, rejected in failed_tests(pvalues, settings.alpha).items() if rejected]
    failed_text = ", ".join(failed[:-1]) + (" and " if len(failed) > 1 else "") + failed[-1] if failed else ""
    if not failed:
        exact = _is_reference_draw(w, layer, settings)
        extra = " It is exactly the reference draw from default_rng(80085)." if exact else ""
        message = f"{name}{note} looks like N(0, 1/{max(n_in, n_out)}): {figures}.{extra}"
        return CheckResult(check_id, title, "passed", points, points, message, details=details)
    mistake_id, mistake, fix = describe_mistake(name, w if not note else w.T, n_in, n_out)
    message = (
        f"{name}{note} is not N(0, 1/{max(n_in, n_out)}): the {failed_text} test"
        f"{'s' if len(failed) > 1 else ''} failed; got {figures}. {mistake}"
    ).strip()
    if mistake_id:
        details["mistake"] = f"init_{mistake_id}"
    return CheckResult(check_id, title, "failed", 0.0, points, message, details=details,
                       mistake_id=details.get("mistake"), fix=fix or None)


def _is_reference_draw(w: np.ndarray, layer: int, settings: InitSettings) -> bool:
    reference = network.init_params(network.SEED, settings.sizes)[0][layer]
    return w.shape == reference.shape and bool(np.array_equal(w, reference))


def check_biases(params: Params | None, settings: InitSettings = InitSettings()) -> CheckResult:
    """Q1.biases: three zero vectors of n_out entries, shape (n,) or (1, n); partial credit per bias."""
    check_id, title, points = "Q1.biases", "biases are zero", SHARE
    if params is None:
        return _fail(check_id, title, points, "weights/biases not defined at top level.")
    biases, problems, notes = params[1], [], []
    for layer, (_, n_out) in enumerate(_layers(settings.sizes)):
        name = f"b{layer + 1}"
        b = _as_array(biases[layer]) if layer < len(biases) else None
        if b is None:
            problems.append(
                f"{name} is missing" if layer >= len(biases) else f"{name} is not an array of numbers"
            )
        elif b.size != n_out or sum(d != 1 for d in b.shape) > 1:
            problems.append(f"{name} has shape {b.shape}, expected ({n_out},)")
        elif np.any(b != 0):
            worst = int(np.argmax(np.abs(b.ravel())))
            problems.append(
                f"{name} has {np.count_nonzero(b)} non-zero entries (largest |{name}[{worst}]| = "
                f"{abs(b.ravel()[worst]):.3g}), expected all zeros"
            )
        elif b.shape != (n_out,):
            notes.append(f"{name} has shape {b.shape}")
    fraction = (len(settings.sizes) - 1 - len(problems)) / (len(settings.sizes) - 1)
    shape_note = f" ({', '.join(notes)}; accepted)" if notes else ""
    if not problems:
        message = f"All three biases are zero{shape_note}."
        return CheckResult(check_id, title, "passed", points, points, message)
    message = "; ".join(problems) + f".{shape_note} Use np.zeros(n_out) for each layer."
    return CheckResult(
        check_id,
        title,
        "failed",
        round(points * fraction, 6),
        points,
        message,
        details={"problems": problems},
    )


def check_structure(
    params: Params | None, settings: InitSettings = InitSettings(), layout_note: str | None = None
) -> CheckResult:
    """Q1.structure: three weight matrices (784, 32), (32, 32), (32, 10) and three biases."""
    check_id, title, points = (
        "Q1.structure",
        "weights and biases: layers and shapes",
        SHARE,
    )
    if params is None:
        return _fail(check_id, title, points, "weights/biases not defined at top level.")
    expected = _layers(settings.sizes)
    weights, biases = params
    shapes = [tuple(np.shape(w)) for w in weights]
    note = f" ({layout_note})" if layout_note else ""
    if len(weights) != len(expected) or len(biases) != len(expected):
        message = (
            f"got {len(weights)} weight matrices and {len(biases)} biases, expected {len(expected)} of each "
            f"for layers {' -> '.join(map(str, settings.sizes))}{note}."
        )
        return _fail(check_id, title, points, message, shapes=[list(s) for s in shapes])
    pairs = enumerate(zip(shapes, expected, strict=True))
    wrong = [f"W{i + 1} {s}" for i, (s, e) in pairs if s not in (e, e[::-1])]
    if wrong:
        message = f"got shapes {', '.join(wrong)}, expected {', '.join(str(e) for e in expected)}{note}."
        return _fail(check_id, title, points, message, shapes=[list(s) for s in shapes])
    message = f"Three layers with weight shapes {', '.join(str(s) for s in shapes)}{note}."
    return CheckResult(
        check_id, title, "passed", points, points, message, details={"shapes": [list(s) for s in shapes]}
    )


def check_initialisation(
    student: Student, settings: InitSettings = InitSettings(), layout_note: str | None = None
) -> list[CheckResult]:
    """All of Q1 on student.initial_params: structure, each weight matrix's distribution, biases."""
    params = student.initial_params
    results = [check_structure(params, settings, layout_note)]
    results += [
        check_weight_matrix(params, layer, settings, layout_note) for layer in range(len(settings.sizes) - 1)
    ]
    results.append(check_biases(params, settings))
    return results
