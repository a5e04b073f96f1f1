"""The numpy-only stand-in of TensorFlow/Keras that student code imports while it is graded.

Offers the MNIST loader and the utilities students use beside it, with TensorFlow's dtypes and results:
`to_categorical` and `normalize` (keras.utils, also as keras.utils.np_utils), `one_hot`, `convert_to_tensor`,
`constant`, `cast`, `random.set_seed` (a no-op), the common dtypes and `__version__`. Anything else fails at
once with one error that names what the student's code asked for (`tensorflow.keras.layers.Dense`), as an
AttributeError on attribute access and as an ImportError on import.
"""

from __future__ import annotations

import dis
import os
import sys
import types
from typing import Any

import numpy as np

__version__ = "2.15.0+grader.numpy.standin"
_ROOTS = ("tensorflow", "keras", "tf_keras")


class Tensor(np.ndarray):
    """What tf.one_hot / tf.constant give here: a numpy array that also has TensorFlow's `.numpy()`.

    numpy functions and arithmetic on it return plain ndarrays, so nothing of the stand-in spreads into a
    student's weights.
    """

    def numpy(self) -> np.ndarray:
        """A plain ndarray copy, as EagerTensor.numpy() returns."""
        return np.array(self)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if "out" in kwargs:
            kwargs["out"] = tuple(_plain(o) for o in kwargs["out"])
        return getattr(ufunc, method)(*(_plain(i) for i in inputs), **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return func(*_plain(args), **_plain(kwargs))


def _plain(value: Any) -> Any:
    """`value` with every Tensor inside (tuples, lists, dicts) viewed as a plain ndarray."""
    if isinstance(value, Tensor):
        return value.view(np.ndarray)
    if isinstance(value, (tuple, list)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _tensor(array: np.ndarray) -> Tensor:
    return np.asarray(array).view(Tensor)


# ----------------------------------------------------------------------------------------------- dtypes

float16, float32, float64 = np.dtype("float16"), np.dtype("float32"), np.dtype("float64")
int8, int16, int32, int64 = np.dtype("int8"), np.dtype("int16"), np.dtype("int32"), np.dtype("int64")
uint8, bool_ = np.dtype("uint8"), np.dtype("bool")
DTYPES = {"float16": float16, "float32": float32, "float64": float64, "double": float64, "half": float16,
          "int8": int8, "int16": int16, "int32": int32, "int64": int64, "uint8": uint8, "bool": bool_}


def _dtype(dtype: Any) -> np.dtype:
    return np.dtype(DTYPES.get(dtype, dtype) if isinstance(dtype, str) else dtype)


def _python_value_dtype(value: Any) -> np.dtype:
    """TensorFlow's dtype for a Python value: floats become float32, ints int32 (int64 if they do not fit)."""
    array = np.asarray(value)
    if array.dtype == np.float64:
        return float32
    if array.dtype.kind in "iu" and array.size and (array.min() < -2**31 or array.max() >= 2**31):
        return int64
    if array.dtype.kind in "iu":
        return int32
    return array.dtype


# ----------------------------------------------------------------------------------------------- tf.*

def convert_to_tensor(value, dtype=None, dtype_hint=None, name=None) -> Tensor:
    """Value as a Tensor: numpy arrays keep their dtype, Python floats -> float32, ints -> int32."""
    if dtype is not None:
        return _tensor(np.array(_plain(value), dtype=_dtype(dtype)))
    if isinstance(value, (np.ndarray, np.generic)):
        return _tensor(np.array(_plain(value)))
    wanted = _dtype(dtype_hint) if dtype_hint is not None else _python_value_dtype(value)
    return _tensor(np.array(value, dtype=wanted))


def constant(value, dtype=None, shape=None, name=None) -> Tensor:
    """tf.constant: convert_to_tensor, then broadcast a scalar (or reshape) to `shape` if given."""
    tensor = convert_to_tensor(value, dtype)
    if shape is None:
        return tensor
    shape = tuple(shape)
    if tensor.size == 1:
        return _tensor(np.full(shape, tensor.reshape(()), dtype=tensor.dtype))
    return _tensor(np.reshape(tensor.view(np.ndarray), shape))


def cast(x, dtype, name=None) -> Tensor:
    """x converted to dtype (floats to ints truncate toward zero, as TensorFlow does)."""
    return _tensor(np.asarray(_plain(x)).astype(_dtype(dtype)))


def one_hot(indices, depth, on_value=None, off_value=None, axis=None, dtype=None, name=None) -> Tensor:
    """indices (...) -> (..., depth) one-hot, float32 by default; an index outside [0, depth) gives a row of
    off_value; `axis` places the new axis elsewhere, as tf.one_hot does."""
    index = np.asarray(_plain(indices))
    if index.dtype.kind not in "iu":
        raise TypeError(f"tf.one_hot: indices must be integers (uint8, int32, int64), got {index.dtype}")
    depth = int(depth)
    if depth < 0:
        raise ValueError(f"tf.one_hot: depth must be non-negative, got {depth}")
    if dtype is not None:
        dtype = _dtype(dtype)
    elif on_value is not None or off_value is not None:
        dtype = _python_value_dtype(on_value if on_value is not None else off_value)
    else:
        dtype = float32
    on = 1 if on_value is None else on_value
    off = 0 if off_value is None else off_value
    hot = index[..., np.newaxis] == np.arange(depth)
    result = np.where(hot, np.asarray(on, dtype=dtype), np.asarray(off, dtype=dtype)).astype(dtype)
    if axis is not None and axis != -1:
        result = np.moveaxis(result, -1, axis)
    return _tensor(result)


def set_seed(seed) -> None:
    """tf.random.set_seed: nothing here is random, so there is nothing to seed."""


# ----------------------------------------------------------------------------------------------- keras.*

def to_categorical(y, num_classes=None, dtype="float32") -> np.ndarray:
    """Class vector (...) -> one-hot matrix (..., num_classes), float32, as keras.utils.to_categorical.

    A trailing axis of length 1 is dropped first ((n, 1) -> (n, num_classes)); num_classes defaults to
    max(y) + 1; a negative label counts from the end, as numpy indexing (and keras) does.
    """
    y = np.array(_plain(y), dtype="int")
    input_shape = y.shape
    if input_shape and input_shape[-1] == 1 and len(input_shape) > 1:
        input_shape = tuple(input_shape[:-1])
    y = y.ravel()
    if not num_classes:
        num_classes = int(np.max(y)) + 1
    categorical = np.zeros((y.shape[0], num_classes), dtype=dtype)
    categorical[np.arange(y.shape[0]), y] = 1
    return np.reshape(categorical, input_shape + (num_classes,))


def normalize(x, axis=-1, order=2) -> np.ndarray:
    """x divided by its `order`-norm along `axis` (a zero norm is left as 1), as keras.utils.normalize."""
    x = np.asarray(_plain(x))
    norm = np.atleast_1d(np.linalg.norm(x, order, axis))
    norm[norm == 0] = 1
    return x / np.expand_dims(norm, axis)


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


# ----------------------------------------------------------------------------------------------- modules

def _unavailable_message(names: list[str], root: str) -> str:
    what = ", ".join(names)
    verb = "are" if len(names) > 1 else "is"
    product = "TensorFlow" if root == "tensorflow" else "Keras"
    return (f"{what} {verb} not available while grading (the grader runs a numpy-only stand-in of "
            f"{product} that offers: {', '.join(offers(root))})")


def _caller_asks(fullname: str, frame: types.FrameType | None) -> tuple[list[str], bool]:
    """What the student's expression asks for from `fullname`, read from the instructions at the frame's
    current one: (['tensorflow.keras.layers.Dense'], False) for `tf.keras.layers.Dense(...)`,
    (['keras.utils.plot_model'], True) for `from keras.utils import plot_model`."""
    try:
        instructions = list(dis.get_instructions(frame.f_code))
        at = next(i for i, ins in enumerate(instructions) if ins.offset == frame.f_lasti)
        if instructions[at].opname == "IMPORT_FROM":
            return [fullname], True
        if instructions[at].opname == "IMPORT_NAME":  # preceded by LOAD_CONST fromlist
            module = instructions[at].argval if instructions[at].argval.startswith(fullname) else fullname
            fromlist = instructions[at - 1].argval if instructions[at - 1].opname == "LOAD_CONST" else None
            names = [n for n in fromlist or () if n != "*"]
            return [f"{module}.{n}" for n in names] or [module], True
        chain = [ins.argval for ins in _run(instructions[at + 1:], ("LOAD_ATTR", "LOAD_METHOD"))]
        return [".".join([fullname, *chain])], False
    except Exception:  # noqa: BLE001 - only the wording depends on it
        return [fullname], False


def _run(instructions: list[dis.Instruction], opnames: tuple[str, ...]) -> list[dis.Instruction]:
    """The leading instructions whose opname is one of `opnames`."""
    run = []
    for ins in instructions:
        if ins.opname not in opnames:
            break
        run.append(ins)
    return run


def _root_of(fullname: str) -> str:
    return "tensorflow" if fullname.split(".")[0] == "tensorflow" else "keras"


def _missing_attribute(fullname: str):
    """A module-level __getattr__ for `fullname` that fails with one clear error naming what was asked for."""

    def __getattr__(name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(f"module {fullname!r} has no attribute {name!r}")
        names, importing = _caller_asks(f"{fullname}.{name}", sys._getframe(1))
        message = _unavailable_message(names, _root_of(fullname))
        if importing:  # an AttributeError here would become "cannot import name ..." and lose the message
            raise ImportError(message, name=fullname)
        raise AttributeError(message, name=name, obj=sys.modules.get(fullname))

    return __getattr__


def populate(module: types.ModuleType, members: dict[str, Any]) -> types.ModuleType:
    """Give `module` these members, a __path__ (so that missing submodules reach the import hook) and the
    failing __getattr__; registers it in sys.modules."""
    module.__dict__.update(members)
    module.__path__ = getattr(module, "__path__", [])
    module.__getattr__ = _missing_attribute(module.__name__)
    sys.modules[module.__name__] = module
    return module


def virtual(fullname: str, doc: str, members: dict[str, Any]) -> types.ModuleType:
    """A new stand-in module `fullname` (registered in sys.modules)."""
    return populate(types.ModuleType(fullname, doc), members)


def keras_tree(root: str) -> dict[str, Any]:
    """The members of a keras stand-in rooted at `root` ('keras' or 'tensorflow.keras'); registers its
    submodules datasets, datasets.mnist, utils and utils.np_utils."""
    mnist = virtual(f"{root}.datasets.mnist", "Grader stand-in: load_data() returns the grader's MNIST subset.",
                    {"load_data": load_data})
    datasets = virtual(f"{root}.datasets", "Grader stand-in: keras.datasets has only mnist.", {"mnist": mnist})
    helpers = {"to_categorical": to_categorical, "normalize": normalize}
    np_utils = virtual(f"{root}.utils.np_utils", "Grader stand-in of keras.utils.np_utils.", dict(helpers))
    utils = virtual(f"{root}.utils", "Grader stand-in of keras.utils.", {**helpers, "np_utils": np_utils})
    return {"datasets": datasets, "utils": utils, "__version__": __version__}


def tensorflow_members() -> dict[str, Any]:
    """The members of the tensorflow stand-in, with tensorflow.keras and tensorflow.random registered."""
    keras = virtual("tensorflow.keras", "Grader stand-in of tf.keras.", keras_tree("tensorflow.keras"))
    random = virtual("tensorflow.random", "Grader stand-in of tf.random.", {"set_seed": set_seed})
    functions = {f.__name__: f for f in (one_hot, convert_to_tensor, constant, cast)}
    return {"keras": keras, "random": random, "Tensor": Tensor, "__version__": __version__,
            **functions, **DTYPES}


def offers(root: str) -> list[str]:
    """What the stand-in under `root` offers, as the student would write it ('tf.one_hot', ...)."""
    short = {"tensorflow": "tf"}
    seen: set[int] = set()
    names: list[str] = []
    modules = [(n, m) for n, m in sys.modules.items() if n.split(".")[0] == root and n != __name__]
    for fullname, module in sorted(modules, key=lambda item: item[0].count(".")):  # utils before utils.np_utils
        for name, value in vars(module).items():
            if isinstance(value, types.FunctionType) and not name.startswith("_") and id(value) not in seen:
                seen.add(id(value))
                names.append(".".join([short.get(root, root), *fullname.split(".")[1:], name]))
    names.append(f"{short.get(root, root)}.__version__")
    if root == "tensorflow":
        names.append("the dtypes (tf.float32, ...)")
    return names


class UnavailableImports:
    """Import hook: a tensorflow/keras module the stand-in does not offer fails with the stand-in's message."""

    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top not in _ROOTS or name in ("tensorflow", "keras") or name == __name__:
            return None
        names, _ = _caller_asks(name, _importing_frame())
        raise ModuleNotFoundError(_unavailable_message(names, "tensorflow" if top == "tensorflow" else "keras"),
                                  name=name)


def _importing_frame() -> types.FrameType | None:
    """The first frame outside importlib: the statement doing the import."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith("<frozen importlib"):
        frame = frame.f_back
    return frame


def install_import_hook() -> None:
    """Put the hook first on sys.meta_path, once."""
    if not any(isinstance(finder, UnavailableImports) for finder in sys.meta_path):
        sys.meta_path.insert(0, UnavailableImports())
