"""Grader stand-in: load_data() returns the grader's MNIST subset ((x_train, y_train), (x_test, y_test))."""

import os

import numpy as np


def load_data(path="mnist.npz"):
    """The grader's chosen images (n, 28, 28) uint8 and labels (n,), fresh copies on every call."""
    folder = os.environ.get("GRADER_SANDBOX_DATA", "")
    try:
        x_train, y_train, x_test, y_test = (
            np.load(os.path.join(folder, f"{name}.npy"), allow_pickle=False)
            for name in ("x_train", "y_train", "x_test", "y_test"))
    except OSError:
        raise RuntimeError("the grader supplied no MNIST data to this run") from None
    return (x_train, y_train), (x_test, y_test)


def __getattr__(name):
    from keras import ONLY_MNIST

    raise AttributeError(f"keras.datasets.mnist.{name} is not available while grading: {ONLY_MNIST}")
