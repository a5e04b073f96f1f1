"""The TensorFlow/Keras stand-in (grader/sandbox/shims/) gives TensorFlow's results and fails clearly otherwise.

It is imported in a child process, as the sandbox does, so that no `tensorflow` module or import hook leaks
into the test process. The expected values are TensorFlow 2.15 / Keras semantics, written down here:
- keras.utils.to_categorical(y, num_classes=None, dtype="float32"): numpy float32, shape y.shape + (C,) with a
  trailing axis of length 1 dropped, C = max(y) + 1 by default, a negative label counting from the end.
- keras.utils.normalize(x, axis=-1, order=2): x / ||x|| along axis, a zero norm left as 1; float64 for ints.
- tf.one_hot(indices, depth, on_value=1, off_value=0, axis=-1, dtype=float32): indices outside [0, depth)
  give a row of off_value; integer on/off values without a dtype give int32; floats as indices are refused.
- tf.convert_to_tensor / tf.constant: numpy arrays keep their dtype, Python floats become float32, Python ints
  int32; `.numpy()` is a plain ndarray.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIMS = ROOT / "grader" / "sandbox" / "shims"

CASES = {
    "to_categorical": "tf.keras.utils.to_categorical([0, 2, 1], 3)",
    "to_categorical_default_classes": "tf.keras.utils.to_categorical(np.array([1, 3], np.uint8))",
    "to_categorical_column": "keras.utils.to_categorical(np.array([[2], [0]]), 3)",
    "to_categorical_scalar": "tf.keras.utils.to_categorical(1, 3)",
    "to_categorical_negative": "tf.keras.utils.to_categorical([-1], 3)",
    "to_categorical_np_utils": "np_utils.to_categorical([1], 2)",
    "to_categorical_float64": "tf.keras.utils.to_categorical([1], 2, dtype='float64')",
    "one_hot": "tf.one_hot([0, 2, 3, -1], 3)",
    "one_hot_uint8_labels": "tf.one_hot(np.array([[1, 0]], np.uint8), 2)",
    "one_hot_axis0": "tf.one_hot([0, 1], 3, axis=0)",
    "one_hot_int_values": "tf.one_hot([1], 3, on_value=5, off_value=-1)",
    "one_hot_dtype": "tf.one_hot([1], 2, dtype=tf.float64)",
    "one_hot_numpy": "tf.one_hot([1], 2).numpy()",
    "one_hot_asarray": "np.asarray(tf.one_hot([1], 2))",
    "one_hot_arithmetic": "np.float64(1.0) * np.ones(2) - tf.one_hot([1], 2)[0]",
    "normalize": "tf.keras.utils.normalize(np.array([[3, 4], [0, 0]]))",
    "normalize_axis0": "keras.utils.normalize(np.array([[3.0, 1.0], [4.0, 0.0]]), axis=0)",
    "normalize_order1": "tf.keras.utils.normalize(np.array([1.0, 3.0]), order=1)",
    "convert_float": "tf.convert_to_tensor(1.5)",
    "convert_int_list": "tf.convert_to_tensor([1, 2])",
    "convert_keeps_numpy_dtype": "tf.convert_to_tensor(np.arange(3, dtype=np.uint8))",
    "convert_dtype": "tf.convert_to_tensor([1, 2], dtype=tf.float64)",
    "constant_numpy": "tf.constant([[1.0, 2.0]]).numpy()",
    "constant_shape": "tf.constant(0, shape=(2, 3))",
    "cast_truncates": "tf.cast([1.7, -1.7], tf.int32)",
    "set_seed": "tf.random.set_seed(42)",
    "version": "tf.__version__",
    "keras_version": "keras.__version__",
    "same_function": "tf.keras.utils.to_categorical is keras.utils.to_categorical is to_categorical",
}

EXPECTED = {
    "to_categorical": ("float32", [[1, 0, 0], [0, 0, 1], [0, 1, 0]]),
    "to_categorical_default_classes": ("float32", [[0, 1, 0, 0], [0, 0, 0, 1]]),
    "to_categorical_column": ("float32", [[0, 0, 1], [1, 0, 0]]),
    "to_categorical_scalar": ("float32", [0, 1, 0]),
    "to_categorical_negative": ("float32", [[0, 0, 1]]),
    "to_categorical_np_utils": ("float32", [[0, 1]]),
    "to_categorical_float64": ("float64", [[0, 1]]),
    "one_hot": ("float32", [[1, 0, 0], [0, 0, 1], [0, 0, 0], [0, 0, 0]]),
    "one_hot_uint8_labels": ("float32", [[[0, 1], [1, 0]]]),
    "one_hot_axis0": ("float32", [[1, 0], [0, 1], [0, 0]]),
    "one_hot_int_values": ("int32", [[-1, 5, -1]]),
    "one_hot_dtype": ("float64", [[0, 1]]),
    "one_hot_numpy": ("float32", [[0, 1]]),
    "one_hot_asarray": ("float32", [[0, 1]]),
    "one_hot_arithmetic": ("float64", [1, 0]),
    "normalize": ("float64", [[0.6, 0.8], [0, 0]]),
    "normalize_axis0": ("float64", [[0.6, 1.0], [0.8, 0.0]]),
    "normalize_order1": ("float64", [[0.25, 0.75]]),  # keras: a 1-D x comes back (1, n)
    "convert_float": ("float32", 1.5),
    "convert_int_list": ("int32", [1, 2]),
    "convert_keeps_numpy_dtype": ("uint8", [0, 1, 2]),
    "convert_dtype": ("float64", [1, 2]),
    "constant_numpy": ("float32", [[1, 2]]),
    "constant_shape": ("int32", [[0, 0, 0], [0, 0, 0]]),
    "cast_truncates": ("int32", [1, -1]),
}

CHILD = """
import json, sys
sys.path.insert(0, {shims!r})
import numpy as np
import tensorflow as tf
import keras
from keras.utils import np_utils
from tensorflow.keras.utils import to_categorical

def describe(value):
    if isinstance(value, (np.ndarray, np.generic)):
        return {{"type": type(value).__name__, "plain": type(value) is np.ndarray, "dtype": str(value.dtype),
                 "values": np.asarray(value).tolist()}}
    return {{"type": type(value).__name__, "value": value}}

def attempt(source):
    try:
        exec(source, globals())
        return {{"ok": True}}
    except BaseException as exc:
        return {{"error": type(exc).__name__, "message": str(exc)}}

out = {{}}
for name, expression in {cases!r}.items():
    try:
        out[name] = describe(eval(expression))
    except BaseException as exc:
        out[name] = {{"error": type(exc).__name__, "message": str(exc)}}
{extra}
print(json.dumps(out))
"""


def run_standin(cases: dict[str, str], extra: str = "") -> dict:
    """Evaluate expressions against the stand-in in a fresh child; `extra` may add entries to `out`."""
    code = CHILD.format(shims=str(SHIMS), cases=cases, extra=textwrap.dedent(extra))
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def results():
    return run_standin(CASES)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_utilities_give_tensorflows_dtype_and_values(results, case):
    dtype, values = EXPECTED[case]
    got = results[case]
    assert "error" not in got, got
    assert got["dtype"] == dtype
    assert np.shape(got["values"]) == np.shape(values) and np.allclose(got["values"], values), got


def test_to_categorical_and_normalize_return_plain_numpy_arrays_as_keras_does(results):
    assert results["to_categorical"]["plain"] and results["normalize"]["plain"]


def test_tensors_have_numpy_and_everything_computed_from_them_is_plain_numpy(results):
    assert results["one_hot"]["type"] == "Tensor" and results["constant_shape"]["type"] == "Tensor"
    assert results["one_hot_numpy"]["plain"] and results["one_hot_asarray"]["plain"]
    assert results["one_hot_arithmetic"]["plain"], "a student's arrays must never turn into the stand-in's type"


def test_set_seed_version_and_the_three_import_styles(results):
    assert results["set_seed"] == {"type": "NoneType", "value": None}
    assert results["version"]["value"].startswith("2.15.")
    assert results["version"]["value"] == results["keras_version"]["value"]
    assert results["same_function"]["value"] is True


def test_float_indices_are_refused_by_one_hot_as_tensorflow_does():
    got = run_standin({"floats": "tf.one_hot(np.array([1.0]), 3)"})["floats"]
    assert got["error"] == "TypeError" and "integers" in got["message"]


UNAVAILABLE = {
    "attribute_chain": ("tf.keras.layers.Dense(32)", "AttributeError", "tensorflow.keras.layers.Dense"),
    "method_call": ("tf.reduce_sum(np.ones(2))", "AttributeError", "tensorflow.reduce_sum"),
    "keras_attribute": ("keras.models.Sequential()", "AttributeError", "keras.models.Sequential"),
    "from_import_missing_module": ("from tensorflow.keras.layers import Dense", "ModuleNotFoundError",
                                   "tensorflow.keras.layers.Dense"),
    "from_import_missing_name": ("from tensorflow.keras.utils import plot_model", "ImportError",
                                 "tensorflow.keras.utils.plot_model"),
    "import_module": ("import keras.layers as L", "ModuleNotFoundError", "keras.layers"),
    "deep_import": ("from tensorflow.python.keras.utils import np_utils", "ModuleNotFoundError",
                    "tensorflow.python.keras.utils.np_utils"),
}


@pytest.fixture(scope="module")
def failures():
    extra = "".join(f"out[{name!r}] = attempt({source!r})\n" for name, (source, _, _) in UNAVAILABLE.items())
    extra += "out['getattr_default'] = describe(getattr(tf, 'reduce_sum', 7))\n"
    extra += "out['hasattr'] = describe(hasattr(tf.keras, 'layers'))\n"
    return run_standin({}, extra)


@pytest.mark.parametrize("case", sorted(UNAVAILABLE))
def test_anything_else_fails_at_once_naming_the_call_and_what_is_offered(failures, case):
    _, error, named = UNAVAILABLE[case]
    got = failures[case]
    assert got.get("error") == error, got
    assert got["message"].startswith(f"{named} is not available while grading (the grader runs a numpy-only")
    product = "TensorFlow" if named.startswith("tensorflow") else "Keras"
    assert f"stand-in of {product} that offers: " in got["message"] and "to_categorical" in got["message"]


def test_probing_for_an_attribute_still_works(failures):
    assert failures["getattr_default"]["value"] == 7 and failures["hasattr"]["value"] is False


def test_mnist_loader_reads_the_graders_arrays(tmp_path):
    for name, array in {"x_train": np.zeros((2, 28, 28), np.uint8), "y_train": np.array([3, 4], np.uint8),
                        "x_test": np.ones((1, 28, 28), np.uint8), "y_test": np.array([5], np.uint8)}.items():
        np.save(tmp_path / f"{name}.npy", array)
    extra = f"""
    import os
    os.environ["GRADER_SANDBOX_DATA"] = {str(tmp_path)!r}
    from tensorflow.keras.datasets import mnist
    (a, b), (c, d) = mnist.load_data(path="mnist.npz")
    (e, f), _ = keras.datasets.mnist.load_data()
    out["shapes"] = [list(a.shape), b.tolist(), list(c.shape), d.tolist(), str(a.dtype), f.tolist()]
    """
    assert run_standin({}, extra)["shapes"] == [[2, 28, 28], [3, 4], [1, 28, 28], [5], "uint8", [3, 4]]
