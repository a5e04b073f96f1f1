"""Grader stand-in for Keras, in numpy: `keras.datasets.mnist.load_data()` (the grader's images) and
`keras.utils.to_categorical` / `normalize` (also under `keras.utils.np_utils`), as in tensorflow's stand-in.

Anything else fails at once, naming what was asked for (see tensorflow/__init__.py there).
"""

import sys

from tensorflow import _standin

_standin.install_import_hook()
_standin.populate(sys.modules[__name__], _standin.keras_tree("keras"))
