"""MNIST in keras' layout, found offline by default and validated; never unpickled.

Resolution order of `load_mnist`: an explicit path, then $MNIST_PATH, then keras' cache
(~/.keras/datasets/mnist.npz), then TensorFlow's downloader if TensorFlow is installed, then the
small real sample bundled with this package (reference/data/mnist_sample.npz).
"""

from __future__ import annotations

import importlib.util
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reference.network import flatten_images

KEYS: tuple[str, ...] = ("x_train", "y_train", "x_test", "y_test")
ENV_VAR = "MNIST_PATH"
TENSORFLOW_SOURCE = "tensorflow tf.keras.datasets.mnist.load_data()"


class MnistError(ValueError):
    """A file that should hold MNIST does not: says which file and what is wrong with it."""


@dataclass(frozen=True)
class Mnist:
    """The four keras arrays: images (n, 28, 28) uint8 0..255, labels (n,) uint8 0..9, and where from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str

    def __repr__(self) -> str:
        return f"Mnist({len(self.y_train)} train, {len(self.y_test)} test, from {self.source})"


@dataclass(frozen=True)
class FlatMnist:
    """Images as float64 (n, 784) raw pixels 0..255 and labels as int64 (n,), as the network eats them."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str


def sample_path() -> Path:
    """The bundled sample: first 5,000 training and first 1,000 test digits of the full MNIST."""
    return Path(__file__).resolve().parent / "data" / "mnist_sample.npz"


def keras_cache_path() -> Path:
    """Where keras' `mnist.load_data()` caches its download."""
    return Path.home() / ".keras" / "datasets" / "mnist.npz"


def locate_mnist(path: str | Path | None = None, *, use_tensorflow: bool = True) -> tuple[Path | None, str]:
    """(the npz file `load_mnist` reads, its source in words); the file is None when TensorFlow must download it."""
    if path is not None:
        return Path(path), f"explicit path {path}"
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env), f"${ENV_VAR}={env}"
    cache = keras_cache_path()
    if cache.is_file():
        return cache, f"keras cache {cache}"
    if use_tensorflow and importlib.util.find_spec("tensorflow") is not None:
        return None, TENSORFLOW_SOURCE
    return sample_path(), f"bundled sample {sample_path()}"


def load_mnist(path: str | Path | None = None, *, use_tensorflow: bool = True) -> Mnist:
    """Load MNIST from the first available source (see the module docstring) and validate it."""
    file, source = locate_mnist(path, use_tensorflow=use_tensorflow)
    if file is not None:
        return read_npz(file, source=source)
    try:
        return _load_with_tensorflow()
    except MnistError:
        raise
    except Exception as exc:  # offline, or a broken install: the bundled sample still works
        tf_failure = f" (tensorflow's download failed: {type(exc).__name__}: {exc})"
    return read_npz(sample_path(), source=f"bundled sample {sample_path()}{tf_failure}")


def read_npz(path: str | Path, source: str | None = None) -> Mnist:
    """Read and validate a keras-layout mnist.npz; raises MnistError naming the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise MnistError(f"{path}: no such file")
    _check_file_kind(path)
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise MnistError(f"{path}: a single .npy array, expected an .npz archive of {list(KEYS)}")
        with npz:
            missing = [k for k in KEYS if k not in npz.files]
            if missing:
                found = sorted(npz.files)
                raise MnistError(f"{path}: missing key(s) {missing}; found {found}, expected {list(KEYS)}")
            arrays = {k: npz[k] for k in KEYS}
    except MnistError:
        raise
    except ValueError as exc:  # numpy refuses pickled content (object arrays, pickle files) with ValueError
        raise MnistError(f"{path}: not a plain numeric .npz (refusing to unpickle): {exc}") from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise MnistError(f"{path}: a damaged or truncated .npz archive ({type(exc).__name__}: {exc}); "
                         "download it again") from exc
    return validate(arrays, source=source or str(path), where=str(path))


_ZIP, _NPY, _PICKLE = b"PK\x03\x04", b"\x93NUMPY", b"\x80"


def _check_file_kind(path: Path) -> None:
    """Raise MnistError when the file is not a zip archive, naming what it looks like instead."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as exc:
        raise MnistError(f"{path}: cannot read it: {exc.strerror or exc}") from exc
    if head.startswith(_ZIP):
        return
    expected = f"expected keras' mnist.npz (a zip archive of {', '.join(KEYS)})"
    if not head:
        raise MnistError(f"{path}: the file is empty; {expected}")
    if head.startswith(_NPY):
        raise MnistError(f"{path}: a single .npy array, not an .npz archive; {expected}")
    if head.startswith(_PICKLE):
        raise MnistError(f"{path}: pickled Python data (refusing to unpickle it: that would run code); {expected}")
    if head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ")):
        raise MnistError(f"{path}: a compressed file (gzip, bzip2 or xz), not an .npz archive; decompress it "
                         f"or {expected[0].lower()}{expected[1:]}")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise MnistError(f"{path}: not an .npz archive (it starts with bytes {head[:8]!r}); {expected}") from None
    first = text.strip().splitlines()[0][:60] if text.strip() else ""
    raise MnistError(f"{path}: a text file, not an .npz archive (it starts with {first!r}); {expected}")


def validate(arrays: Mapping[str, np.ndarray], source: str, where: str) -> Mnist:
    """Check keys, shapes, dtypes and ranges; return them as uint8 in an Mnist, or raise MnistError."""
    out = {}
    for split in ("train", "test"):
        images = _validated_images(arrays[f"x_{split}"], f"{where}: x_{split}")
        labels = _validated_labels(arrays[f"y_{split}"], f"{where}: y_{split}")
        if len(images) != len(labels):
            raise MnistError(
                f"{where}: x_{split} has {len(images)} images but y_{split} has {len(labels)} labels"
            )
        out[f"x_{split}"], out[f"y_{split}"] = images, labels
    return Mnist(**out, source=source)


def flattened(data: Mnist, limit: int | None = None) -> FlatMnist:
    """Flatten images to float64 (n, 784) and labels to int64; optionally keep only the first `limit`."""
    cut = slice(None, limit)
    return FlatMnist(
        x_train=flatten_images(data.x_train[cut]),
        y_train=data.y_train[cut].astype(np.int64),
        x_test=flatten_images(data.x_test[cut]),
        y_test=data.y_test[cut].astype(np.int64),
        source=data.source,
    )


def _validated_images(images: np.ndarray, what: str) -> np.ndarray:
    """(n, 28, 28) with integral values 0..255 -> uint8 (n, 28, 28)."""
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.shape[0] == 0:
        raise MnistError(f"{what}: got shape {images.shape}, expected (n, 28, 28) with n >= 1")
    return _as_uint8(images, 255, what)


def _validated_labels(labels: np.ndarray, what: str) -> np.ndarray:
    """(n,) with integral values 0..9 -> uint8 (n,)."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise MnistError(f"{what}: got shape {labels.shape}, expected (n,)")
    return _as_uint8(labels, 9, what)


def _as_uint8(values: np.ndarray, top: int, what: str) -> np.ndarray:
    """Integral values in 0..top -> uint8, else MnistError saying what was found."""
    if values.dtype == np.uint8 and top == 255:
        return values
    if values.dtype.kind not in "biuf":
        raise MnistError(f"{what}: got dtype {values.dtype}, expected uint8 (or integral numbers 0..{top})")
    if values.dtype.kind == "f" and not (np.isfinite(values).all() and (values == np.round(values)).all()):
        raise MnistError(f"{what}: got non-integral {values.dtype} values, expected integers 0..{top}")
    low, high = values.min(), values.max()
    if low < 0 or high > top:
        raise MnistError(f"{what}: values range {low}..{high}, expected 0..{top}")
    return values.astype(np.uint8)


def _load_with_tensorflow() -> Mnist:
    """TensorFlow's own loader (downloads to keras' cache); imported lazily, TensorFlow is optional."""
    import tensorflow as tf

    (x_train, y_train), (x_test, y_test) = tf.keras.datasets.mnist.load_data()
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    return validate(arrays, source=TENSORFLOW_SOURCE, where="tensorflow's MNIST")
