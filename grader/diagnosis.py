"""Name the likely mistake behind a wrong Q3 tensor, by the nearest gradient of a known mistake.

The grader recomputes, at the student's probe point, the gradients that common mistakes produce
(sigma' of the activation, a missing sigma', a bias that skips sigma', an extra derivative on the
output delta, the wrong input in the outer product, weights updated during backprop, ...), and
compares the student's tensor with each by e = ||g - m|| / max(||g||, ||m||).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from itertools import product

import numpy as np

from grader.gradients import DEFAULT_POLICY, GradientPolicy, least_squares_ratio, relative_error, tensor
from reference import network
from reference.network import Params

Derivative = str  # "z": sigma'(z) (right), "a": sigma'(a) = dsigmoid(sigmoid(z)), "none": no factor
OUTPUT_FACTORS = {  # wrong extra factors on the output delta p - y
    "sigmoid_prime_z3": "sigma'(z3)",
    "softmax_diagonal": "p * (1 - p) (the diagonal of softmax's Jacobian)",
    "sigmoid_prime_p": "sigma'(p) = dsigmoid(p)",
}
FIX = {
    "W3": "dW3 = outer(a2, delta3) with delta3 = p - y",
    "b3": "db3 = delta3 = p - y",
    "W2": "dW2 = outer(a1, delta2) with delta2 = (W3 @ delta3) * sigma'(z2)",
    "b2": "db2 = delta2 = (W3 @ delta3) * sigma'(z2)",
    "W1": "dW1 = outer(x, delta1) with delta1 = (W2 @ delta2) * sigma'(z1)",
    "b1": "db1 = delta1 = (W2 @ delta2) * sigma'(z1)",
}
WRONG_INPUTS = {"W1": (), "W2": ("a2", "z1", "z2"), "W3": ("a1", "z1", "z2")}


@dataclass(frozen=True)
class Backprop:
    """How a (possibly mistaken) backward pass builds each piece; the defaults are right.

    Per hidden layer (index 0 = layer 1, 1 = layer 2) the derivative used in the delta for dW, for db
    and in the delta passed down to the layer below may differ, as in real submissions.
    """

    output: str = "p_minus_y"  # or a key of OUTPUT_FACTORS
    weight_derivative: tuple[Derivative, Derivative] = ("z", "z")
    bias_derivative: tuple[Derivative, Derivative] = ("z", "z")
    passed_derivative: tuple[Derivative, Derivative] = ("z", "z")
    outer_input: tuple[str, str, str] = ("x", "a1", "a2")
    updated_weights_lr: float | None = None  # W_l -= lr * dW_l before delta is passed through W_l


@dataclass(frozen=True)
class Diagnosis:
    """The known mistake nearest to a student's tensor: id, what to do, and how close (e) it is."""

    tensor: str
    mistake: str
    sentence: str
    rel_error: float  # e between the student's tensor and this mistake's
    correct_rel_error: float  # e between the student's tensor and the right one (or the other rate's)

    @property
    def text(self) -> str:
        """The sentence with the numbers behind it."""
        return (f"{self.sentence} (your {self.tensor} matches this mistake to e = {self.rel_error:.1e}; "
                f"it is off the expected by e = {self.correct_rel_error:.2g}.)")


@dataclass(frozen=True)
class RateProbe:
    """The same step read at two learning rates: student_grads are at `large`, `at_small` at `small`."""

    large: float
    small: float
    at_small: Params


def _derivative(kind: Derivative, z: np.ndarray) -> np.ndarray | float:
    if kind == "z":
        return network.sigmoid_prime(z)
    if kind == "a":
        return network.sigmoid_prime(network.sigmoid(z))
    return 1.0


def _output_delta(kind: str, probabilities: np.ndarray, logits: np.ndarray, label: int) -> np.ndarray:
    delta = probabilities - network.one_hot(label)
    if kind == "sigmoid_prime_z3":
        return delta * network.sigmoid_prime(logits)
    if kind == "softmax_diagonal":
        return delta * probabilities * (1 - probabilities)
    if kind == "sigmoid_prime_p":
        return delta * network.sigmoid_prime(probabilities)
    return delta


def backprop(params: Params, x: np.ndarray, label: int, how: Backprop = Backprop()) -> Params:
    """The gradient a backward pass built as `how` says produces, canonical shapes (Backprop() is right)."""
    weights = [np.array(w, dtype=np.float64) for w in params[0]]
    fwd = network.forward(weights, params[1], x)
    inputs = {"x": fwd.activations[0], "a1": fwd.activations[1], "a2": fwd.activations[2],
              "z1": fwd.preactivations[0], "z2": fwd.preactivations[1]}
    grad_w: list[np.ndarray] = [np.empty(0)] * 3
    grad_b: list[np.ndarray] = [np.empty(0)] * 3
    passed = _output_delta(how.output, fwd.probabilities, fwd.logits, label)
    for layer in (2, 1, 0):
        if layer == 2:
            for_weight = for_bias = passed
        else:
            incoming = weights[layer + 1] @ passed
            z = fwd.preactivations[layer]
            for_weight = incoming * _derivative(how.weight_derivative[layer], z)
            for_bias = incoming * _derivative(how.bias_derivative[layer], z)
            passed = incoming * _derivative(how.passed_derivative[layer], z)
        grad_w[layer] = np.outer(inputs[how.outer_input[layer]], for_weight)
        grad_b[layer] = for_bias
        if how.updated_weights_lr is not None:
            weights[layer] = weights[layer] - how.updated_weights_lr * grad_w[layer]
    return grad_w, grad_b


def _derivative_words(kind: Derivative, k: int) -> str:
    if kind == "a":
        return f"uses dsigmoid(a{k}) = sigma'(sigmoid(z{k})) instead of sigma'(z{k}) = a{k} * (1 - a{k})"
    return f"lacks the factor sigma'(z{k})"


def _gradient_candidates(name: str, lr: float) -> Iterator[tuple[str, Backprop, str]]:
    """(mistake id, backward pass, what it does wrong) for the mistakes that can change tensor `name`."""
    layer = int(name[1]) - 1
    outputs = ("p_minus_y", *OUTPUT_FACTORS)
    if layer == 2:
        slots: list[tuple[str, ...]] = []
    elif layer == 1:
        slots = ["weight_derivative" if name[0] == "W" else "bias_derivative"]
    else:
        slots = ["passed_derivative", "weight_derivative" if name[0] == "W" else "bias_derivative"]
    for output in outputs:
        for kinds in product(("z", "a", "none"), repeat=len(slots)):
            if output == "p_minus_y" and set(kinds) <= {"z"}:
                continue
            how, ids, words = Backprop(output=output), [], []
            if output != "p_minus_y":
                ids.append(f"output_delta_times_{output}")
                words.append(f"multiplies the output delta p - y by {OUTPUT_FACTORS[output]}, "
                             "though softmax with cross-entropy gives dL/dz3 = p - y exactly")
            for slot, kind in zip(slots, kinds, strict=True):
                if kind == "z":
                    continue
                k = 2 if slot == "passed_derivative" else layer + 1
                pair = list(getattr(how, slot))
                pair[k - 1] = kind
                how = replace(how, **{slot: tuple(pair)})
                what = "sigma_prime_of_activation" if kind == "a" else "missing_sigma_prime"
                if slot == "passed_derivative":
                    ids.append(f"{what}_in_delta2_passed_down")
                    words.append(f"is built from a delta2 that {_derivative_words(kind, 2)}")
                else:
                    ids.append(f"{what}_in_delta{k}")
                    words.append(_derivative_words(kind, k))
            yield "+".join(ids), how, " and ".join(words)
    for wrong in WRONG_INPUTS.get(name, ()):
        inputs = list(Backprop().outer_input)
        inputs[layer] = wrong
        right = Backprop().outer_input[layer]
        yield (f"outer_product_with_{wrong}", Backprop(outer_input=tuple(inputs)),
               f"multiplies delta{layer + 1} by {wrong} instead of the layer's input {right}")
    if layer < 2:
        yield ("updated_weights_in_backprop", Backprop(updated_weights_lr=lr),
               f"propagates delta through W{layer + 2} after updating it (at learning rate {lr:g})")


def relu_gradient(params: Params, x: np.ndarray, label: int) -> Params:
    """The gradient of the same network with ReLU hidden layers (what a ReLU student's step computes)."""
    weights, biases = params
    a, activations, zs = np.asarray(x, dtype=np.float64), [np.asarray(x, dtype=np.float64)], []
    for w, b in zip(weights[:-1], biases[:-1], strict=True):
        z = a @ w + b
        a = np.maximum(0.0, z)
        zs.append(z)
        activations.append(a)
    delta = network.softmax(a @ weights[-1] + biases[-1]) - network.one_hot(label)
    grad_w, grad_b = [np.empty(0)] * 3, [np.empty(0)] * 3
    for layer in (2, 1, 0):
        grad_w[layer], grad_b[layer] = np.outer(activations[layer], delta), delta
        if layer:
            delta = (weights[layer] @ delta) * (zs[layer - 1] > 0)
    return grad_w, grad_b


def _constant_words(c: float) -> str:
    for n in (2, 3, 10, 32, 784):
        if abs(c * n - 1) < 1e-3:
            return f"divided by {n}"
        if abs(c / n - 1) < 1e-3:
            return f"multiplied by {n}"
    return f"multiplied by {c:.4g}"


def _fix(name: str) -> str:
    return f"use {FIX[name]}"


def _tensor_candidates(name: str, g: np.ndarray, f: np.ndarray) -> Iterator[tuple[str, float, str]]:
    """(id, e, sentence) for mistakes that are a transformation of the right tensor f."""
    if not g.any() and f.any():
        what = "bias" if name[0] == "b" else "weight matrix"
        yield ("never_updated", 0.0,
               f"{name}: the {what} never changes in the step; update it too: "
               f"{name} -= learning_rate * d{name}.")
    yield ("sign_flipped", relative_error(g, -f),
           f"{name}: your gradient has the wrong sign (ratio -1): the step must be {name} -= learning_rate * "
           f"d{name}, with delta3 = p - y (not y - p); {_fix(name)}.")
    if f.ndim == 2 and f.shape[0] == f.shape[1]:
        yield ("transposed", relative_error(g, f.T),
               f"{name}: your gradient is transposed: entry (i, j) must be the input i times delta j, "
               f"{_fix(name)}.")
    if name[0] == "b" and f.size > 1:
        # a mini-batch habit on a single sample: np.sum(delta, axis=...) over the units, not the samples
        yield ("bias_summed_over_units", relative_error(g, np.full_like(f, f.sum())),
               f"{name}: every entry of your bias gradient is the sum of delta{name[1]} over the layer's units "
               f"(a sum over the wrong axis): for one sample d{name} is delta{name[1]} itself, unsummed.")
        yield ("bias_averaged_over_units", relative_error(g, np.full_like(f, f.mean())),
               f"{name}: every entry of your bias gradient is the mean of delta{name[1]} over the layer's units "
               f"(a mean over the wrong axis): for one sample d{name} is delta{name[1]} itself.")
    c = least_squares_ratio(g, f)
    if c is not None and abs(c - 1) > 1e-3 and abs(c + 1) > 1e-3 and c != 0:
        yield ("scaled_by_constant", relative_error(g, c * f),
               f"{name}: your gradient is the right one {_constant_words(c)} (ratio g/f = {c:.4g}); "
               f"remove the constant factor: {_fix(name)}.")


def _rate_candidates(name: str, g: np.ndarray, rates: RateProbe) -> Iterator[tuple[str, float, str]]:
    """(id, e, sentence) for a step that does not scale as learning_rate * gradient."""
    small = tensor(rates.at_small, name)
    r = rates.large / rates.small
    yield ("learning_rate_ignored", relative_error(small, r * g),
           f"{name}: your step does not scale with the learning_rate argument (its implied gradient grows "
           f"{r:g}-fold when the rate drops {r:g}-fold): update with {name} -= learning_rate * d{name}, "
           "not a fixed rate.")
    yield ("learning_rate_applied_twice", relative_error(small, g / r),
           f"{name}: your step scales with learning_rate squared (its implied gradient shrinks {r:g}-fold "
           f"when the rate drops {r:g}-fold): multiply by learning_rate once, "
           f"{name} -= learning_rate * d{name}.")


def diagnose(name: str, student_grads: Params, params: Params, x: np.ndarray, label: int,
             rates: RateProbe | None = None, learning_rate: float = 1.0,
             policy: GradientPolicy = DEFAULT_POLICY) -> Diagnosis | None:
    """The known mistake that explains the student's tensor `name`, or None.

    student_grads: implied gradients (canonical) at `learning_rate` (rates.large when rates is given)
    from params, for sample x (784,) and label. A match needs e(student, mistake) <= policy.match and
    at most a tenth of e(student, right) (for the rate mistakes: of e between the two rates' tensors).
    """
    lr = rates.large if rates is not None else learning_rate
    x = np.asarray(x, dtype=np.float64)
    g = np.asarray(tensor(student_grads, name), dtype=np.float64)
    f = tensor(network.gradient(params[0], params[1], x, label), name)
    if g.shape != f.shape or not np.isfinite(g).all():
        return None
    found: list[Diagnosis] = []
    e_right = relative_error(g, f)
    for mistake, how, words in _gradient_candidates(name, lr):
        grads = backprop(params, x, label, how)
        sentence = f"{name}: your gradient {words}: {_fix(name)}."
        if mistake == "updated_weights_in_backprop":
            sentence = (f"{name}: your gradient {words}: compute every delta with the weights from before "
                        "the step, then update them all.")
        bias_only = name[0] == "b" and how.bias_derivative != ("z", "z")
        if bias_only and _weights_match(name, student_grads, grads):
            k = name[1]
            mistake = mistake.replace(f"_in_delta{k}", f"_in_bias{k}_only")
            sentence = (f"{name}: your bias gradient {words} (your dW{k} has sigma'(z{k})): use delta{k} = "
                        f"{FIX[name].split('= ')[-1]} for both dW{k} and d{name}.")
        found.append(Diagnosis(name, mistake, sentence, relative_error(g, tensor(grads, name)), e_right))
    found += [Diagnosis(name, i, s, e, e_right) for i, e, s in _tensor_candidates(name, g, f)]
    relu = tensor(relu_gradient(params, x, label), name)
    found.append(Diagnosis(name, "relu_hidden_layers",
                           f"{name}: your gradient is that of ReLU hidden layers: the handout's hidden layers are "
                           "sigmoid, a = sigmoid(z), with sigma'(z) = a * (1 - a) in backprop.",
                           relative_error(g, relu), e_right))
    if rates is not None:
        small = np.asarray(tensor(rates.at_small, name), dtype=np.float64)
        if small.shape == g.shape and np.isfinite(small).all():
            e_rates = relative_error(small, g)
            if e_rates > policy.wrong:
                found += [Diagnosis(name, i, s, e, e_rates) for i, e, s in _rate_candidates(name, g, rates)]
    rate_ids = {"learning_rate_ignored", "learning_rate_applied_twice", "updated_weights_in_backprop"}
    plausible = [d for d in found if d.correct_rel_error > policy.correct
                 and d.rel_error <= min(policy.match, 0.1 * d.correct_rel_error)]
    # a rate mistake also looks like a constant factor at one rate: the two-rate evidence wins
    return min(plausible, key=lambda d: (d.mistake not in rate_ids, d.rel_error), default=None)


MAX_DECAY = 1.0  # a larger lambda is no regulariser: it would shrink every weight to nothing within a few steps


@dataclass(frozen=True)
class WeightDecay:
    """An L2 weight decay found in a step: g = c * f + decay * theta (c = 1, or 1 - learning_rate * decay when
    the step multiplies the tensor by 1 - learning_rate * decay after the gradient step)."""

    decay: float
    factor: float

    def remove(self, g: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """The gradient the step used, the decay taken out: (g - decay * theta) / factor."""
        return (g - self.decay * theta) / self.factor


def weight_decay(g: np.ndarray, f: np.ndarray, theta: np.ndarray, learning_rate: float,
                 policy: GradientPolicy = DEFAULT_POLICY) -> WeightDecay | None:
    """The L2 weight decay that explains a step's implied gradient g, or None.

    g: the implied gradient of one tensor, f: the right one, theta: the tensor before the step (same shapes).
    Found when g is not f (e above float64 rounding) and c * f + decay * theta is, to policy.correct and ten times
    closer than f: 0 < decay <= MAX_DECAY, and c = 1 (W -= lr * (dW + decay * W)) or c = 1 - lr * decay
    (W -= lr * dW, then W *= 1 - lr * decay), by least squares.
    """
    g, f, theta = (np.asarray(a, dtype=np.float64) for a in (g, f, theta))
    if not g.shape == f.shape == theta.shape or not np.isfinite(g).all() or not theta.any():
        return None
    e_plain = relative_error(g, f)
    if e_plain <= policy.float64:
        return None
    basis = np.stack([f.ravel(), theta.ravel()], axis=1)
    (c, decay), *_ = np.linalg.lstsq(basis, g.ravel(), rcond=None)
    c, decay = float(c), float(decay)
    if not 0.0 < decay <= MAX_DECAY or abs(c - 1.0) > max(1e-6, 1.01 * learning_rate * decay):
        return None
    e_fit = relative_error(g, c * f + decay * theta)
    return WeightDecay(decay, c) if e_fit <= min(policy.correct, 0.1 * e_plain) else None


def step_with_decay(params: Params, x: np.ndarray, label: int, learning_rate: float,
                    decay: dict[str, float] | None = None) -> Params:
    """The reference's SGD step from params, each tensor named in decay (name -> lambda) moved by a further
    learning_rate * lambda * its value (the L2 weight decay a student's step adds)."""
    weights, biases = network.sgd_step(params[0], params[1], x, label, learning_rate)
    for name, lam in (decay or {}).items():
        stepped = weights if name[0] == "W" else biases
        layer = int(name[1]) - 1
        stepped[layer] = stepped[layer] - learning_rate * lam * np.asarray(tensor(params, name), dtype=np.float64)
    return weights, biases


def weight_decay_sentence(name: str, decay: float) -> str:
    """What a step with L2 weight decay on tensor name does, and the handout's step instead."""
    return (f"{name}: your step adds L2 weight decay: it moves {name} by learning_rate * (d{name} + {decay:.3g} * "
            f"{name}); the gradient d{name} itself matches. The handout's step is plain SGD on the cross-entropy "
            f"loss: {name} -= learning_rate * d{name}.")


def _weights_match(bias_name: str, student_grads: Params, mistaken: Params, tolerance: float = 1e-5) -> bool:
    """Whether the student's dW_k equals the mistaken pass's dW_k, whose delta keeps the factor db_k lacks."""
    w = "W" + bias_name[1]
    g = np.asarray(tensor(student_grads, w), dtype=np.float64)
    m = tensor(mistaken, w)
    return g.shape == m.shape and bool(np.isfinite(g).all()) and relative_error(g, m) <= tolerance
