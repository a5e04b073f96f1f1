"""Grader stand-in for keras: only `keras.datasets.mnist.load_data()` works (it returns the grader's data)."""

import sys

__version__ = "0.0 (grader stand-in: only keras.datasets.mnist.load_data is available)"
ONLY_MNIST = ("this assignment allows TensorFlow/Keras only for loading MNIST "
              "(tf.keras.datasets.mnist.load_data)")
PROVIDED = {"keras", "keras.datasets", "keras.datasets.mnist", "tensorflow", "tensorflow.keras",
            "tensorflow.keras.datasets", "tensorflow.keras.datasets.mnist"}


class _OnlyMnist:
    """Import hook: any other tensorflow/keras module fails with a message saying why."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf_keras") and name not in PROVIDED:
            raise ImportError(f"{name} is not available while grading: {ONLY_MNIST}")
        return None


if not any(isinstance(finder, _OnlyMnist) for finder in sys.meta_path):
    sys.meta_path.insert(0, _OnlyMnist())

from keras import datasets as datasets  # noqa: E402  (after the hook, so submodules resolve here)


def __getattr__(name):
    raise AttributeError(f"keras.{name} is not available while grading: {ONLY_MNIST}")
