"""Q3 gradient verification: probe point, implied gradient, finite differences, the per-tensor metric.

The grader only sees `train_one_sample` move the parameters, so the gradient it judges is the
implied one, (before - after) / learning_rate, compared tensor by tensor with central finite
differences of the reference loss. The metric is e = ||g - f|| / max(||g||, ||f||).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np

from grader.results import GradientVerdict
from reference import network
from reference.network import LAYER_SIZES, Params

TENSOR_NAMES: tuple[str, ...] = ("W1", "b1", "W2", "b2", "W3", "b3")
FD_STEP = 1e-3  # how far a perturbed coordinate moves its pre-activation (fourth-order stencil)


@dataclass(frozen=True)
class GradientPolicy:
    """Thresholds on e: correct if e <= correct, wrong if e > wrong, inconclusive between."""

    correct: float = 1e-5
    wrong: float = 1e-2
    float64: float = 1e-8  # above this a correct gradient is reported as float32 precision
    match: float = 1e-3  # a known mistake explains a tensor when e(student, mistake) is below this
    negligible: float = 1e-8  # entries of f below this share of max|f| are left out of sign agreement


DEFAULT_POLICY = GradientPolicy()


def tensor(params: Params, name: str) -> np.ndarray:
    """The tensor called name ('W1'..'b3') of canonical params."""
    weights, biases = params
    layer = int(name[1:]) - 1
    return weights[layer] if name[0] == "W" else biases[layer]


def as_named(params: Params) -> dict[str, np.ndarray]:
    """Canonical params -> {'W1': (784, 32), 'b1': (32,), ...}."""
    return {name: tensor(params, name) for name in TENSOR_NAMES}


def probe_point(x: np.ndarray, seed: int) -> Params:
    """A healthy, non-saturated point for sample x (784,): z1 = x @ W1 is N(0, 1) per unit."""
    rng = np.random.default_rng(seed)
    norm = _norm(np.asarray(x, dtype=np.float64)) or 1.0
    weights, biases = [], []
    for layer, (n_in, n_out) in enumerate(zip(LAYER_SIZES[:-1], LAYER_SIZES[1:], strict=True)):
        std = 1.0 / norm if layer == 0 else np.sqrt(1.0 / max(n_in, n_out))
        weights.append(rng.normal(0.0, std, size=(n_in, n_out)))
        biases.append(rng.normal(0.0, 0.1, size=n_out))
    return weights, biases


def probe_samples(images: np.ndarray, labels: np.ndarray, n: int) -> list[tuple[np.ndarray, int]]:
    """The first sample of each of the first n classes met in order: images (N, 784) or (N, 28, 28)."""
    flat = np.asarray(images).reshape(len(images), -1).astype(np.float64)
    chosen: dict[int, np.ndarray] = {}
    for x, label in zip(flat, np.asarray(labels), strict=True):
        if int(label) not in chosen and x.any():
            chosen[int(label)] = x
            if len(chosen) == n:
                break
    return [(x, label) for label, x in chosen.items()]


def implied_gradient(before: Params, after: Params, learning_rate: float) -> Params:
    """(before - after) / learning_rate per tensor, in the shape `after` came in when it differs.

    A tensor whose shape differs only by axes of length 1 (a (1, n) bias) is read in `before`'s
    shape; a transposed weight matrix gives a transposed gradient (compare_tensor says so); any
    other shape gives an all-nan array of `after`'s shape, which compare_tensor rejects by shape.
    """

    def one(b: np.ndarray, a: np.ndarray) -> np.ndarray:
        b, a = np.asarray(b, dtype=np.float64), np.asarray(a, dtype=np.float64)
        if a.shape == b.shape or (a.size == b.size and _squeezed(a) == _squeezed(b)):
            return (b - a.reshape(b.shape)) / learning_rate
        if b.ndim == 2 and a.shape == b.T.shape:
            return (b.T - a) / learning_rate
        return np.full(a.shape, np.nan)

    weights_before, biases_before = before
    weights_after, biases_after = after
    return (
        [one(b, a) for b, a in zip(weights_before, weights_after, strict=True)],
        [one(b, a) for b, a in zip(biases_before, biases_after, strict=True)],
    )


def _squeezed(a: np.ndarray) -> tuple[int, ...]:
    return tuple(n for n in a.shape if n != 1)


def _loss_from_preactivation(params: Params, layer: int, z: np.ndarray, label: int) -> np.ndarray:
    """Loss of a batch of layer-`layer` pre-activations z (m, n_layer) run through the layers above: (m,)."""
    weights, biases = params
    for above in range(layer + 1, len(weights)):
        z = network.sigmoid(z) @ weights[above] + biases[above]
    return network.cross_entropy(z, np.full(len(z), label))


def _central_difference(loss_at, h: float):
    """Fourth-order central difference at offset 0: (-L(2h) + 8 L(h) - 8 L(-h) + L(-2h)) / 12h."""
    return (8 * (loss_at(h) - loss_at(-h)) - (loss_at(2 * h) - loss_at(-2 * h))) / (12 * h)


def _shifted_loss(params: Params, layer: int, z: np.ndarray, label: int, eye: np.ndarray,
                  t: float) -> np.ndarray:
    """Loss with each pre-activation z_l[j] in turn moved by t: (n_layer,)."""
    return _loss_from_preactivation(params, layer, z + t * eye, label)


def finite_difference_gradient(params: Params, x: np.ndarray, label: int, step: float = FD_STEP) -> Params:
    """Central differences of the reference loss for all 26,506 parameters, by the pre-activation method.

    The loss depends on W_l and b_l only through z_l = a_{l-1} @ W_l + b_l, so perturbing W_l[i, j] by
    h / a_{l-1}[i] moves z_l[j] by h and nothing else: difference the 74 pre-activations (4 batched
    forward passes per layer) and expand dW_l = outer(a_{l-1}, dL/dz_l), db_l = dL/dz_l exactly
    (rows of zero pixels come out exactly 0). Shapes as params: W (n_in, n_out), b (n_out,).
    """
    weights, biases = params
    fwd = network.forward(weights, biases, np.asarray(x, dtype=np.float64))
    grad_w, grad_b = [], []
    for layer, z in enumerate(fwd.preactivations):
        h = step * max(1.0, float(np.abs(z).max()))
        dz = _central_difference(partial(_shifted_loss, params, layer, z, label, np.eye(z.size)), h)
        grad_w.append(np.outer(fwd.activations[layer], dz))
        grad_b.append(dz)
    return grad_w, grad_b


def naive_finite_difference_gradient(params: Params, x: np.ndarray, label: int,
                                     step: float = FD_STEP) -> Params:
    """The same central differences one coordinate at a time (106,024 loss evaluations; tests, benchmarks).

    W_l[i, j] moves by step / |a_{l-1}[i]| so that every coordinate moves its pre-activation by `step`
    (a uniform step is wrong for W1: x_i is up to 255); b_l[j] moves by step.
    """
    weights = [np.array(w, dtype=np.float64) for w in params[0]]
    biases = [np.array(b, dtype=np.float64) for b in params[1]]
    x = np.asarray(x, dtype=np.float64)
    activations = network.forward(weights, biases, x).activations

    def differentiate(array: np.ndarray, index: tuple[int, ...], h: float) -> float:
        saved = array[index]

        def loss_at(t: float) -> float:
            array[index] = saved + t
            return float(network.loss(weights, biases, x, label))

        value = _central_difference(loss_at, h)
        array[index] = saved
        return value

    grad_w, grad_b = [], []
    for w, b, a in zip(weights, biases, activations[:-1], strict=True):
        row_step = step / np.where(a != 0, np.abs(a), 1.0)
        grad_w.append(np.array([[differentiate(w, (i, j), row_step[i]) for j in range(w.shape[1])]
                                for i in range(w.shape[0])]))
        grad_b.append(np.array([differentiate(b, (j,), step) for j in range(b.size)]))
    return grad_w, grad_b


def _norm(a: np.ndarray) -> float:
    # elementwise, not BLAS: a multithreaded BLAS dot on a busy machine costs milliseconds here
    return float(np.sqrt(np.sum(np.square(a))))


def relative_error(g: np.ndarray, f: np.ndarray) -> float:
    """e = ||g - f|| / max(||g||, ||f||), 0 when both are zero."""
    scale = max(_norm(g), _norm(f))
    return 0.0 if scale == 0.0 else _norm(g - f) / scale


def least_squares_ratio(g: np.ndarray, f: np.ndarray) -> float | None:
    """The c minimising ||g - c f||: 0.5 points to a factor of two, -1 to a sign error; None when f = 0."""
    ff = float(np.sum(f * f))
    return None if ff == 0.0 else float(np.sum(g * f)) / ff


def sign_agreement(g: np.ndarray, f: np.ndarray, negligible: float = 1e-8) -> float | None:
    """Share of the entries with |f| above negligible * max|f| where g and f have the same sign."""
    big = np.abs(f) > negligible * float(np.abs(f).max(initial=0.0))
    if not big.any():
        return None
    return float(np.mean(np.sign(g[big]) == np.sign(f[big])))


def compare_tensor(name: str, student, expected: np.ndarray,
                   policy: GradientPolicy = DEFAULT_POLICY) -> GradientVerdict:
    """Verdict on one student tensor (the implied gradient) against the expected one (finite differences).

    Structure before numbers: missing -> 'missing'; non-numeric, wrong shape or non-finite -> 'wrong';
    a (1, n) for (n,) is read as (n,); a transposed matrix is compared transposed and noted in `diagnosis`.
    """
    f = np.asarray(expected, dtype=np.float64)
    if student is None:
        return GradientVerdict(name, False, "missing", None, diagnosis=f"{name}: no value came back.")
    g = np.asarray(student)
    if g.dtype.kind not in "biuf":
        return GradientVerdict(name, False, "wrong", None,
                               diagnosis=f"{name}: got dtype {g.dtype}, expected numbers.")
    g = g.astype(np.float64)
    note = None
    if g.shape != f.shape:
        if g.size == f.size and _squeezed(g) == _squeezed(f):
            g = g.reshape(f.shape)
        elif f.ndim == 2 and g.shape == f.T.shape:
            g = g.T
            note = f"{name}: arrived transposed, shape {g.T.shape} for {f.shape}; compared transposed."
        else:
            return GradientVerdict(name, False, "wrong", None,
                                   diagnosis=f"{name}: got shape {g.shape}, expected {f.shape}.")
    if not np.isfinite(g).all():
        bad = [int(i) for i in np.argwhere(~np.isfinite(g))[0]]
        return GradientVerdict(name, False, "wrong", None, worst_index=bad, worst_student=None,
                               worst_expected=float(f[tuple(bad)]),
                               diagnosis=f"{name}: contains nan or inf (first at {bad}).")
    e = relative_error(g, f)
    worst = np.unravel_index(int(np.argmax(np.abs(g - f))), f.shape) if f.size else ()
    if e <= policy.correct:
        verdict = "correct" if e <= policy.float64 else "float32"
    else:
        verdict = "wrong" if e > policy.wrong else "inconclusive"
    return GradientVerdict(
        tensor=name,
        ok=verdict in ("correct", "float32"),
        verdict=verdict,
        rel_error=e,
        worst_index=[int(i) for i in worst],
        worst_student=float(g[worst]) if f.size else None,
        worst_expected=float(f[worst]) if f.size else None,
        sign_agreement=sign_agreement(g, f, policy.negligible),
        ratio=least_squares_ratio(g, f),
        diagnosis=note,
    )


def describe(verdict: GradientVerdict, policy: GradientPolicy = DEFAULT_POLICY) -> str:
    """One 'got ..., expected ...' sentence with the numbers behind a verdict."""
    v = verdict
    if v.rel_error is None:
        return v.diagnosis or f"{v.tensor}: {v.verdict}."
    if v.verdict == "correct":
        text = f"{v.tensor}: matches finite differences, e = {v.rel_error:.1e}."
    elif v.verdict == "float32":
        text = (f"{v.tensor}: matches finite differences to float32 precision, e = {v.rel_error:.1e} "
                f"(float64 arithmetic gives below {policy.float64:.0e}).")
    else:
        judged = "wrong" if v.verdict == "wrong" else "inconclusive (between the thresholds)"
        parts = [f"{v.tensor}: {judged}, e = {v.rel_error:.2e} (correct needs e <= {policy.correct:.0e})"]
        if v.worst_index is not None and v.worst_student is not None:
            index = tuple(v.worst_index)
            # canonical (n_in, n_out): named by role, so that a student storing W as (n_out, n_in) can find it
            where = f"(input {index[0]}, unit {index[1]})" if len(index) == 2 else f"{index}"
            parts.append(f"worst entry {where}: got {v.worst_student:.6g}, expected {v.worst_expected:.6g}")
        if v.sign_agreement is not None:
            parts.append(f"signs agree on {100 * v.sign_agreement:.1f}% of entries")
        if v.ratio is not None:
            parts.append(f"ratio g/f = {v.ratio:.4g}")
        text = "; ".join(parts) + "."
    if v.diagnosis and v.diagnosis not in text:
        text += " " + v.diagnosis
    return text
