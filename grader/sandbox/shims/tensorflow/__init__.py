"""Grader stand-in for TensorFlow, in numpy: the MNIST loader and the utilities students use beside it.

Offers `tf.keras.datasets.mnist.load_data()` (the grader's images), `tf.keras.utils.to_categorical` and
`normalize` (also under `np_utils`), `tf.one_hot`, `tf.convert_to_tensor`, `tf.constant`, `tf.cast`,
`tf.random.set_seed` (a no-op), the dtypes (`tf.float32`, ...) and `tf.__version__`, with TensorFlow's dtypes
and results (to_categorical and one_hot give float32). Tensors are numpy arrays with a `.numpy()` method.
Anything else fails at once, naming what was asked for: `tf.keras.layers.Dense` raises "AttributeError:
tensorflow.keras.layers.Dense is not available while grading (the grader runs a numpy-only stand-in of
TensorFlow that offers: ...)", and `from tensorflow.keras.layers import Dense` an ImportError saying the same.

This stand-in is used even where real TensorFlow is installed (the product's choice): it imports in
milliseconds instead of seconds, needs no memory budget of its own, and keeps the student's process free of
TensorFlow's threads and caches, which the sandbox's limits would otherwise have to allow for.
"""

import sys

from tensorflow import _standin

_standin.install_import_hook()
_standin.populate(sys.modules[__name__], _standin.tensorflow_members())
