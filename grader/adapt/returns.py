"""Read what a student's forward pass returns: the handout's (loss, one_hot_guess), or a dict, the output
probabilities, the list of activations, a class index; `read_forward_return` says how it read it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ForwardReading:
    """What feed_forward_sample returned, read as loss, one-hot guess (10,), output probabilities (10,)."""

    loss: float | None
    guess: np.ndarray | None
    probabilities: np.ndarray | None
    note: str


def _scalar(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, np.ndarray) and v.size == 1 and v.dtype.kind in "fiu":
        return float(v.reshape(()))
    return None


def _class_index(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, np.integer)) and 0 <= int(v) < 10:
        return int(v)
    if isinstance(v, np.ndarray) and v.size == 1 and v.dtype.kind in "iu" and 0 <= int(v.reshape(())) < 10:
        return int(v.reshape(()))
    return None


def _vector10(v: Any) -> np.ndarray | None:
    if isinstance(v, (list, tuple)) and len(v) == 10 and all(_scalar(x) is not None for x in v):
        return np.array([_scalar(x) for x in v])
    if isinstance(v, np.ndarray) and v.size == 10 and v.dtype.kind in "fiub" and max(v.shape) == 10:
        return np.asarray(v, dtype=np.float64).reshape(10)
    return None


def _is_one_hot(v: np.ndarray) -> bool:
    return bool(np.isin(v, (0.0, 1.0)).all() and v.sum() == 1.0)


def _is_distribution(v: np.ndarray) -> bool:
    return bool(np.isfinite(v).all() and (v >= 0).all() and abs(v.sum() - 1.0) < 1e-6)


def _one_hot(index: int) -> np.ndarray:
    return np.eye(10)[index]


def _guess_of(v: Any) -> tuple[np.ndarray | None, np.ndarray | None, str | None]:
    """(one-hot guess, probabilities or None, how it was read) from a class index or a 10-vector."""
    index = _class_index(v)
    if index is not None:
        return _one_hot(index), None, "a class index"
    vec = _vector10(v)
    if vec is None:
        return None, None, None
    if _is_one_hot(vec):
        return vec, None, None
    if _is_distribution(vec):
        return _one_hot(int(np.argmax(vec))), vec, "probabilities (the guess is their argmax)"
    if np.isfinite(vec).all():
        return _one_hot(int(np.argmax(vec))), None, "scores (the guess is their argmax)"
    return None, None, None


_OUTPUT_KEYS = (
    "a3",
    "out",
    "output",
    "y_hat",
    "yhat",
    "probs",
    "probabilities",
    "softmax",
    "a_out",
    "h3",
    "prediction",
    "pred",
    "guess",
    "a",
)
_LOSS_KEYS = ("loss", "cost", "ce", "cross_entropy", "error", "l")


def _from_activations(values: Sequence[Any], what: str) -> ForwardReading:
    for v in reversed(values):
        vec = _vector10(v)
        if vec is not None and _is_distribution(vec):
            guess = _one_hot(int(np.argmax(vec)))
            return ForwardReading(
                None,
                guess,
                vec,
                f"returned {what}; the output layer's probabilities give the guess, and there is no loss",
            )
    return ForwardReading(None, None, None, f"returned {what} with no 10-class probability vector")


def _from_dict(value: Mapping[Any, Any]) -> ForwardReading:
    lower = {str(k).lower(): v for k, v in value.items()}
    loss = next((_scalar(lower[k]) for k in _LOSS_KEYS if k in lower and _scalar(lower[k]) is not None), None)
    for key in _OUTPUT_KEYS:
        if key in lower:
            guess, probs, how = _guess_of(lower[key])
            if guess is not None:
                note = f"returned a dict; read {key!r} as the output" + (f" ({how})" if how else "")
                return ForwardReading(loss, guess, probs, note + ("" if loss is not None else ", no loss"))
    reading = _from_activations(list(value.values()), f"a dict of activations ({', '.join(map(str, value))})")
    return ForwardReading(loss, reading.guess, reading.probabilities, reading.note)


def _from_sequence(value: Sequence[Any]) -> ForwardReading:
    if len(value) >= 2:
        first, second = value[0], value[1]
        loss = _scalar(first)
        guess, probs, how = _guess_of(second)
        extra = (
            "" if len(value) == 2 else f"; returned {len(value)} values, the first two read as (loss, guess)"
        )
        if loss is not None and guess is not None:
            return ForwardReading(loss, guess, probs, (f"the guess is {how}" if how else "") + extra)
        loss, (guess, probs, how) = _scalar(second), _guess_of(first)
        if loss is not None and guess is not None and len(value) == 2:
            return ForwardReading(
                loss,
                guess,
                probs,
                "returned (guess, loss), the handout's order reversed"
                + (f"; the guess is {how}" if how else ""),
            )
    return _from_activations(value, f"a {type(value).__name__} of {len(value)} values")


def read_forward_return(value: Any) -> ForwardReading:
    """Read feed_forward_sample's return: (loss, guess) as the handout, or the other shapes students use."""
    if value is None:
        return ForwardReading(None, None, None, "returned None")
    if isinstance(value, Mapping):
        return _from_dict(value)
    if isinstance(value, (list, tuple)) and _vector10(value) is None:
        return _from_sequence(value)
    loss = _scalar(value) if _class_index(value) is None else None
    if loss is not None:
        return ForwardReading(loss, None, None, "returned only a loss")
    guess, probs, how = _guess_of(value)
    if guess is not None:
        return ForwardReading(None, guess, probs, "returned only a guess" + (f" ({how})" if how else ""))
    return ForwardReading(
        None, None, None, f"returned a {type(value).__name__} that is neither a loss nor a guess"
    )


RETURNED_FIGURES = "feed_forward_dataset returned:"  # starts the line returned_figures makes


def returned_figures(value: Any) -> str | None:
    """What a feed_forward_dataset that returns its figures instead of printing them returned, as a line the
    dataset checks read like a printed one; None unless it is two finite numbers (average loss, accuracy), in a
    tuple or list or a dict with a loss key and an accuracy key."""
    if isinstance(value, Mapping):
        lower = {str(k).lower(): v for k, v in value.items()}
        loss = next((_scalar(v) for k, v in lower.items() if "loss" in k), None)
        accuracy = next((_scalar(v) for k, v in lower.items() if "acc" in k), None)
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        loss, accuracy = _scalar(value[0]), _scalar(value[1])
    else:
        return None
    if loss is None or accuracy is None or not np.isfinite([loss, accuracy]).all():
        return None
    return f"{RETURNED_FIGURES} average loss {loss!r}, accuracy {accuracy!r}"
