"""The data in the student's form: one sample as their x_train holds one (the handout's (28, 28) uint8, or
what their top level made of it), labels as their y_train holds them (integers, or one-hot rows)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from grader.sandbox import Symbol

HANDOUT_SAMPLE = ((28, 28), "uint8")  # x_train[i] as tf.keras.datasets.mnist.load_data() gives it
PIXELS = 784


@dataclass(frozen=True)
class DataForm:
    """How the student's top level holds the data: one sample's shape and dtype, the labels' dtype."""

    sample_shape: tuple[int, ...] = HANDOUT_SAMPLE[0]
    sample_dtype: str = HANDOUT_SAMPLE[1]
    label_dtype: str = "uint8"
    note: str | None = None
    one_hot_labels: bool = False  # the student's y_train holds one-hot rows (n, 10), and their code expects them

    def sample(self, x: np.ndarray) -> np.ndarray:
        """Canonical (784,) raw pixels -> one sample in the student's form (float64 if not exact in it)."""
        return self.samples(np.asarray(x).reshape(1, -1))[0]

    def samples(self, images: np.ndarray) -> np.ndarray:
        """Canonical (n, 784) raw pixels -> (n, *sample_shape) in the student's dtype where that is exact."""
        flat = np.asarray(images, dtype=np.float64)
        if flat.ndim != 2 or flat.shape[1] != PIXELS:
            raise ValueError(f"canonical images must be (n, {PIXELS}), got {flat.shape}")
        shaped = flat.reshape((len(flat), *self.sample_shape))
        dtype = np.dtype(self.sample_dtype)
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            exact = np.isfinite(flat).all() and (flat == np.round(flat)).all()
            if exact and flat.min(initial=0) >= info.min and flat.max(initial=0) <= info.max:
                return shaped.astype(dtype)
            return shaped
        return shaped.astype(dtype) if dtype.kind == "f" else shaped

    def labels(self, labels: np.ndarray) -> np.ndarray:
        """Canonical int labels (n,) -> the student's y_train form: the dtype of its integers (uint8 from keras),
        or one-hot rows (n, 10) in its dtype."""
        labels = np.asarray(labels).reshape(-1).astype(np.int64)
        dtype = np.dtype(self.label_dtype)
        if self.one_hot_labels:
            return np.eye(10, dtype=dtype)[labels]
        return labels.astype(dtype) if dtype.kind in "iu" else labels

    def label(self, label: int) -> Any:
        """One canonical int label -> as the student's y_train[i] holds it (an int, or a one-hot row (10,))."""
        return self.labels(np.array([label]))[0] if self.one_hot_labels else int(label)


def data_form(namespace: Mapping[str, Symbol]) -> DataForm:
    """The sample form of the student's x_train (if it holds images of 784 pixels), else the handout's; the
    label form of their y_train (integers, or one-hot rows (n, 10))."""
    images, labels = namespace.get("x_train"), namespace.get("y_train")
    label_dtype, one_hot, notes = "uint8", False, []
    if labels is not None and labels.kind == "ndarray" and labels.dtype and labels.shape:
        kind = np.dtype(labels.dtype).kind
        if len(labels.shape) == 2 and labels.shape[1] == 10 and kind in "iuf":
            label_dtype, one_hot = labels.dtype, True
            notes.append(f"labels are passed as one-hot rows ({labels.dtype}, shape (10,)), like the y_train your "
                         "code holds (the handout passes integer labels)")
        elif kind in "iu":
            label_dtype = labels.dtype
    form = DataForm(label_dtype=label_dtype, one_hot_labels=one_hot)
    if images is None or images.kind != "ndarray" or not images.shape or images.dtype is None:
        return replace(form, note="; ".join(notes) or None)
    shape, dtype = tuple(images.shape[1:]), images.dtype
    if math.prod(shape) == PIXELS and np.dtype(dtype).kind in "iuf" and (shape, dtype) != HANDOUT_SAMPLE:
        notes.insert(0, f"samples are passed as {dtype} arrays of shape {shape}, like the x_train your code "
                        f"holds (the handout's are {HANDOUT_SAMPLE[1]} {HANDOUT_SAMPLE[0]}); pixel values stay 0..255")
        form = replace(form, sample_shape=shape, sample_dtype=dtype)
    return replace(form, note="; ".join(notes) or None)


