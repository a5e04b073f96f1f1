"""The homework's network as pure functions: 784-32-32-10, sigmoid hidden layers, softmax output.

Conventions, used everywhere in this package:
- a sample x is a float64 vector of 784 raw pixels (0..255, not scaled), a batch X is (n, 784);
- weights[l] has shape (n_in, n_out) and is used as z = a @ W + b; biases[l] has shape (n_out,);
- a label is an integer 0..9.
Nothing here mutates its arguments except `train_epoch`'s private copies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

LAYER_SIZES: tuple[int, ...] = (784, 32, 32, 10)
SEED = 80085
LEARNING_RATE = 0.003

Params = tuple[list[np.ndarray], list[np.ndarray]]


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function, without overflow for any finite z."""
    z = np.asarray(z, dtype=np.float64)
    ez = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + ez), ez / (1.0 + ez))


def sigmoid_prime(z: np.ndarray) -> np.ndarray:
    """Derivative of the sigmoid at the pre-activation z: s(z) * (1 - s(z))."""
    s = sigmoid(z)
    return s * (1.0 - s)


def log_softmax(z: np.ndarray) -> np.ndarray:
    """log(softmax(z)) along the last axis, via log-sum-exp."""
    z = np.asarray(z, dtype=np.float64)
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(z: np.ndarray) -> np.ndarray:
    """Softmax along the last axis: (..., k) -> (..., k), rows sum to 1."""
    return np.exp(log_softmax(z))


def one_hot(labels: np.ndarray | int, classes: int = 10) -> np.ndarray:
    """Integer label(s) -> one-hot float64: () -> (classes,), (n,) -> (n, classes)."""
    return np.eye(classes)[np.asarray(labels, dtype=np.int64)]


def cross_entropy(logits: np.ndarray, labels: np.ndarray | int) -> np.ndarray:
    """-log softmax(logits)[label], finite for any finite logits: (..., 10) -> (...)."""
    log_p = log_softmax(logits)
    labels = np.asarray(labels, dtype=np.int64)
    return -np.take_along_axis(log_p, labels[..., None], axis=-1)[..., 0]


def init_params(seed: int = SEED, sizes: Sequence[int] = LAYER_SIZES) -> Params:
    """Q1: W_l ~ N(0, 1/max(n_in, n_out)) of shape (n_in, n_out), drawn in layer order; b_l = 0 (n_out,)."""
    rng = np.random.default_rng(seed)
    weights, biases = [], []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        weights.append(rng.normal(0.0, np.sqrt(1.0 / max(n_in, n_out)), size=(n_in, n_out)))
        biases.append(np.zeros(n_out))
    return weights, biases


@dataclass(frozen=True)
class Forward:
    """Everything a forward pass computes: zs[l] = activations[l] @ W_l + b_l, activations[0] = x."""

    activations: list[np.ndarray]  # x (…, 784), a1 (…, 32), a2 (…, 32), softmax output (…, 10)
    preactivations: list[np.ndarray]  # z1 (…, 32), z2 (…, 32), z3 = logits (…, 10)

    @property
    def probabilities(self) -> np.ndarray:
        """Softmax output: (…, 10)."""
        return self.activations[-1]

    @property
    def logits(self) -> np.ndarray:
        """Output pre-activation: (…, 10)."""
        return self.preactivations[-1]


def forward(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray], x: np.ndarray) -> Forward:
    """Q2: forward pass of one sample (784,) or a batch (n, 784); sigmoid hidden layers, softmax output."""
    a = np.asarray(x, dtype=np.float64)
    activations, preactivations = [a], []
    for layer, (w, b) in enumerate(zip(weights, biases, strict=True)):
        z = a @ w + b
        last = layer == len(weights) - 1
        a = softmax(z) if last else sigmoid(z)
        preactivations.append(z)
        activations.append(a)
    return Forward(activations, preactivations)


def loss(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray], x: np.ndarray, label) -> np.ndarray:
    """Cross-entropy of the softmax output: one sample -> float, a batch (n, 784) -> (n,)."""
    return cross_entropy(forward(weights, biases, x).logits, label)


def predict(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray], x: np.ndarray) -> np.ndarray:
    """Most likely class: (784,) -> (), (n, 784) -> (n,)."""
    return np.argmax(forward(weights, biases, x).logits, axis=-1)


def evaluate(weights, biases, images: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Mean cross-entropy and accuracy (0..1) of a set: images (n, 784), labels (n,)."""
    logits = forward(weights, biases, images).logits
    return float(cross_entropy(logits, labels).mean()), float((logits.argmax(axis=1) == labels).mean())


def gradient(weights, biases, x: np.ndarray, label: int) -> Params:
    """Q3: dLoss/dW_l (n_in, n_out) and dLoss/db_l (n_out,) for one sample (784,), by backpropagation.

    delta_l = dLoss/dz_l. For softmax + cross-entropy delta_3 = p - onehot(label); each hidden layer
    passes delta back through its weights and multiplies by sigma'(z_l) = a_l * (1 - a_l).
    """
    (w1, w2, w3), (b1, b2, b3) = weights, biases
    x = np.asarray(x, dtype=np.float64)
    a1 = sigmoid(x @ w1 + b1)
    a2 = sigmoid(a1 @ w2 + b2)
    delta3 = softmax(a2 @ w3 + b3)
    delta3[label] -= 1.0
    delta2 = (w3 @ delta3) * (a2 * (1.0 - a2))
    delta1 = (w2 @ delta2) * (a1 * (1.0 - a1))
    grad_w = [np.outer(x, delta1), np.outer(a1, delta2), np.outer(a2, delta3)]
    return grad_w, [delta1, delta2, delta3]


def sgd_step(weights, biases, x: np.ndarray, label: int, learning_rate: float = LEARNING_RATE) -> Params:
    """One plain SGD step on one sample; returns new parameters, the inputs are left untouched."""
    grad_w, grad_b = gradient(weights, biases, x, label)
    new_w = [w - learning_rate * g for w, g in zip(weights, grad_w, strict=True)]
    new_b = [b - learning_rate * g for b, g in zip(biases, grad_b, strict=True)]
    return new_w, new_b


def train_epoch(
    weights,
    biases,
    images: np.ndarray,
    labels: np.ndarray,
    learning_rate: float = LEARNING_RATE,
    progress: Callable[[int], None] | None = None,
) -> Params:
    """Q4: one epoch of per-sample SGD over images (n, 784) in order; returns new parameters.

    The same arithmetic as `gradient` + `sgd_step` for each sample in turn (bit for bit), updating in place,
    and the W1 update touches only the rows of non-zero pixels (about 19% of them): dLoss/dW1[i, :] =
    x[i] * delta1 is exactly zero for the others.
    """
    (w1, w2, w3) = [np.array(w, dtype=np.float64) for w in weights]
    (b1, b2, b3) = [np.array(b, dtype=np.float64) for b in biases]
    lr = learning_rate
    for i, (x, label) in enumerate(zip(np.asarray(images, dtype=np.float64), labels, strict=True)):
        a1 = sigmoid(x @ w1 + b1)
        a2 = sigmoid(a1 @ w2 + b2)
        delta3 = softmax(a2 @ w3 + b3)
        delta3[label] -= 1.0
        delta2 = (w3 @ delta3) * (a2 * (1.0 - a2))
        delta1 = (w2 @ delta2) * (a1 * (1.0 - a1))
        w3 -= lr * np.outer(a2, delta3)
        b3 -= lr * delta3
        w2 -= lr * np.outer(a1, delta2)
        b2 -= lr * delta2
        pixels = np.flatnonzero(x)
        w1[pixels] -= lr * np.outer(x[pixels], delta1)
        b1 -= lr * delta1
        if progress is not None:
            progress(i + 1)
    return [w1, w2, w3], [b1, b2, b3]


@dataclass(frozen=True)
class EpochRecord:
    """Test-set figures after a number of epochs (0 = before training)."""

    epoch: int
    test_loss: float
    test_accuracy: float


def train(
    weights,
    biases,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    epochs: int = 3,
    learning_rate: float = LEARNING_RATE,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Params, list[EpochRecord]]:
    """Q4: `epochs` epochs of per-sample SGD; returns final parameters and test figures per epoch."""
    history = [EpochRecord(0, *evaluate(weights, biases, test_images, test_labels))]
    for epoch in range(1, epochs + 1):
        step = None if progress is None else (lambda i, e=epoch: progress(e, i))
        weights, biases = train_epoch(weights, biases, train_images, train_labels, learning_rate, step)
        history.append(EpochRecord(epoch, *evaluate(weights, biases, test_images, test_labels)))
    return (weights, biases), history


def flatten_images(images: np.ndarray) -> np.ndarray:
    """(n, 28, 28) uint8 -> (n, 784) float64 raw pixels, as the handout feeds them."""
    images = np.asarray(images)
    return images.reshape(images.shape[0], -1).astype(np.float64)
