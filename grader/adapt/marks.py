"""Marks that tell the samples of a handout-length x_train apart cheaply in the child: sample i carries i in
base 128 in its first three pixels (0 in every MNIST digit, and representable in any numeric dtype), so the
child's recorder reads three numbers per step instead of summing 784. Sample 0 stays as it was."""

from __future__ import annotations

from typing import Any

import numpy as np

PIXELS = 3
BASE = 128  # below int8's limit: the marks survive the student's dtype (uint8, int8, float16, ...)
CAPACITY = BASE**PIXELS


def index_marks(n: int) -> np.ndarray:
    """(n, 3) int: row i holds i's base-128 digits, the values sample i's first three pixels get."""
    if n > CAPACITY:
        raise ValueError(f"at most {CAPACITY:,} samples can be marked, got {n:,}")
    i = np.arange(n)[:, None]
    return (i // BASE ** np.arange(PIXELS)) % BASE


def mark_samples(samples: np.ndarray) -> np.ndarray:
    """samples (n, ...) with sample i's first three pixels set to index_marks (in place; returned)."""
    samples.reshape(len(samples), -1)[:, :PIXELS] = index_marks(len(samples))
    return samples


def marked_index(marks: Any) -> int | None:
    """The sample index three recorded pixels [d0, d1, d2] spell, None unless they are marks."""
    if not isinstance(marks, list) or len(marks) != PIXELS:
        return None
    digits = []
    for value in marks:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not float(value).is_integer():
            return None
        if not 0 <= value < BASE:
            return None
        digits.append(int(value))
    return sum(d * BASE**p for p, d in enumerate(digits))
