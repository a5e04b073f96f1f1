"""reference.mnist: the bundled sample, resolution order, validation of bad files, the full data's facts."""

from __future__ import annotations

import importlib
import os
import pickle
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from reference.mnist import MnistError, flattened, keras_cache_path, load_mnist, read_npz, sample_path

FULL = os.environ.get("MNIST_PATH")
needs_full_data = pytest.mark.skipif(
    not (FULL and Path(FULL).is_file()), reason="full MNIST not available: set MNIST_PATH to mnist.npz"
)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No $MNIST_PATH, an empty home (no keras cache), tensorflow not importable."""
    monkeypatch.delenv("MNIST_PATH", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # makes `import tensorflow` fail
    return tmp_path


def tiny_mnist(n_train: int = 6, n_test: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """A valid keras-layout set of arrays; n_train tells sources apart in the tests."""
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test, dtype=np.uint8),
    }


def write(path: Path, **arrays: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


# --- the bundled sample ---------------------------------------------------------------------------------


def test_sample_loads_offline_and_is_the_default(offline):
    data = load_mnist()
    assert data.source.startswith("bundled sample")
    assert data.x_train.shape == (5000, 28, 28) and data.y_train.shape == (5000,)
    assert data.x_test.shape == (1000, 28, 28) and data.y_test.shape == (1000,)
    assert {a.dtype for a in (data.x_train, data.y_train, data.x_test, data.y_test)} == {np.dtype(np.uint8)}


def test_sample_is_small_real_and_balanced_enough():
    assert sample_path().stat().st_size < 3_000_000
    data = read_npz(sample_path())
    assert data.x_train.max() == 255 and data.x_train.min() == 0
    assert data.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]  # MNIST's first training labels
    assert data.y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    counts = np.bincount(data.y_train, minlength=10)
    assert counts.min() > 0.8 * 500 and counts.max() < 1.2 * 500


def test_flattened_gives_float64_rows_of_raw_pixels_and_int_labels():
    data = read_npz(sample_path())
    flat = flattened(data, limit=7)
    assert flat.x_train.shape == (7, 784) and flat.x_train.dtype == np.float64
    assert flat.x_test.shape == (7, 784) and flat.y_test.dtype == np.int64
    np.testing.assert_array_equal(flat.x_train[3], data.x_train[3].reshape(-1))
    assert flat.x_train.max() == 255.0


# --- resolution order -------------------------------------------------------------------------------------


def test_explicit_path_wins_over_environment_and_cache(offline, monkeypatch):
    explicit = write(offline / "explicit.npz", **tiny_mnist(n_train=3))
    monkeypatch.setenv("MNIST_PATH", str(write(offline / "env.npz", **tiny_mnist(n_train=4))))
    write(keras_cache_path(), **tiny_mnist(n_train=5))
    data = load_mnist(explicit)
    assert len(data.y_train) == 3 and "explicit path" in data.source


def test_environment_wins_over_keras_cache(offline, monkeypatch):
    env = write(offline / "env.npz", **tiny_mnist(n_train=4))
    monkeypatch.setenv("MNIST_PATH", str(env))
    write(keras_cache_path(), **tiny_mnist(n_train=5))
    data = load_mnist()
    assert len(data.y_train) == 4 and "$MNIST_PATH" in data.source and str(env) in data.source


def test_keras_cache_wins_over_the_sample(offline):
    cache = write(keras_cache_path(), **tiny_mnist(n_train=5))
    assert cache == offline / "home" / ".keras" / "datasets" / "mnist.npz"
    data = load_mnist()
    assert len(data.y_train) == 5 and "keras cache" in data.source


def test_a_missing_environment_file_is_an_error_not_a_silent_fallback(offline, monkeypatch):
    monkeypatch.setenv("MNIST_PATH", str(offline / "nowhere.npz"))
    with pytest.raises(MnistError, match=r"nowhere\.npz: no such file"):
        load_mnist()


def fake_tensorflow(root: Path, body: str) -> None:
    """A stand-in `tensorflow` package whose keras.datasets.mnist.load_data runs `body`."""
    package = root / "fake_tf" / "tensorflow"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        "import types\nimport numpy as np\n"
        f"def load_data(path='mnist.npz'):\n    {body}\n"
        "mnist = types.SimpleNamespace(load_data=load_data)\n"
        "keras = types.SimpleNamespace(datasets=types.SimpleNamespace(mnist=mnist))\n"
    )


@pytest.mark.parametrize(
    ("body", "starts", "says"),
    [
        ("r = np.random.default_rng(0); x = r.integers(0, 256, (2, 28, 28)); y = np.array([1, 2])\n"
         "    return (x, y), (x, y)", "tensorflow", "load_data()"),
        ("raise OSError('offline')", "bundled sample", "(tensorflow's download failed: OSError: offline)"),
    ],
)
def test_tensorflow_comes_after_the_cache_and_the_sample_after_a_failed_download(
    offline, monkeypatch, body, starts, says
):
    fake_tensorflow(offline, body)
    monkeypatch.delitem(sys.modules, "tensorflow")
    monkeypatch.syspath_prepend(str(offline / "fake_tf"))
    importlib.invalidate_caches()
    data = load_mnist()
    assert data.source.startswith(starts) and says in data.source
    assert load_mnist(use_tensorflow=False).source.startswith("bundled sample")


def test_tensorflow_is_not_needed(offline):
    assert "tensorflow" not in sys.modules or sys.modules["tensorflow"] is None
    assert load_mnist().source.startswith("bundled sample")


# --- bad files ----------------------------------------------------------------------------------------------


def bad(tmp_path: Path, name: str, **changes) -> Path:
    arrays = {**tiny_mnist(), **changes}
    return write(tmp_path / name, **{k: v for k, v in arrays.items() if v is not None})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"y_test": None}, r"missing key\(s\) \['y_test'\]"),
        ({"x_train": np.zeros((6, 784), np.uint8)}, r"x_train: got shape \(6, 784\), expected \(n, 28, 28\)"),
        ({"y_train": np.zeros((6, 1), np.uint8)}, r"y_train: got shape \(6, 1\), expected \(n,\)"),
        ({"y_train": np.array([0, 1, 2, 3, 4, 10])}, r"y_train: values range 0\.\.10, expected 0\.\.9"),
        ({"y_test": np.array([-1, 1, 2, 3])}, r"y_test: values range -1\.\.3, expected 0\.\.9"),
        ({"x_test": np.full((4, 28, 28), 256)}, r"x_test: values range 256\.\.256, expected 0\.\.255"),
        ({"x_test": np.full((4, 28, 28), 0.5)}, r"x_test: got non-integral float64 values"),
        ({"x_test": np.full((4, 28, 28), "a")}, r"x_test: got dtype <U1, expected uint8"),
        ({"y_train": np.arange(5) % 10}, r"x_train has 6 images but y_train has 5 labels"),
        ({"x_train": np.zeros((0, 28, 28), np.uint8), "y_train": np.zeros(0, np.uint8)}, r"n >= 1"),
    ],
)
def test_bad_contents_are_rejected_with_the_file_and_the_problem(tmp_path, changes, message):
    path = bad(tmp_path, "bad.npz", **changes)
    with pytest.raises(MnistError, match=message) as info:
        read_npz(path)
    assert str(path) in str(info.value)


def test_integral_floats_and_wider_ints_are_accepted_as_uint8(tmp_path):
    arrays = tiny_mnist()
    path = write(tmp_path / "floats.npz", **{k: v.astype(np.float32 if k[0] == "x" else np.int64)
                                              for k, v in arrays.items()})
    data = read_npz(path)
    assert data.x_train.dtype == np.uint8 and data.y_train.dtype == np.uint8
    np.testing.assert_array_equal(data.x_train, arrays["x_train"])


class Marker:
    """Unpickling this creates a file: proof that the loader ran pickled code, if it ever does."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_a_pickled_object_array_is_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "unpickled"
    objects = np.empty(6, dtype=object)
    objects[:] = [Marker(marker)] * 6
    path = bad(tmp_path, "pickled.npz", y_train=objects)
    with pytest.raises(MnistError, match="refusing to unpickle") as info:
        read_npz(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


def test_a_plain_pickle_file_is_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "unpickled"
    path = tmp_path / "mnist.npz"
    path.write_bytes(pickle.dumps({"x_train": Marker(marker)}))
    with pytest.raises(MnistError, match="refusing to unpickle"):
        read_npz(path)
    assert not marker.exists()


def test_not_a_zip_is_rejected(tmp_path):
    path = tmp_path / "mnist.npz"
    path.write_text("this is not a zip archive\n")
    with pytest.raises(MnistError, match=r"mnist\.npz: "):
        read_npz(path)


def test_a_truncated_zip_is_rejected(tmp_path):
    good = write(tmp_path / "good.npz", **tiny_mnist())
    path = tmp_path / "truncated.npz"
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(MnistError, match="truncated.npz"):
        read_npz(path)


def test_a_single_npy_is_rejected(tmp_path):
    path = tmp_path / "mnist.npz"
    with path.open("wb") as f:
        np.save(f, np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(MnistError, match="single .npy array"):
        read_npz(path)


def test_a_missing_file_is_rejected(tmp_path):
    with pytest.raises(MnistError, match="no such file"):
        load_mnist(tmp_path / "absent.npz")


def test_a_zip_with_a_corrupt_member_is_rejected(tmp_path):
    path = tmp_path / "mnist.npz"
    with zipfile.ZipFile(path, "w") as zf:
        for key in ("x_train", "y_train", "x_test", "y_test"):
            zf.writestr(f"{key}.npy", b"\x93NUMPY garbage")
    with pytest.raises(MnistError, match=r"mnist\.npz"):
        read_npz(path)


# --- the full data (only where MNIST_PATH points at it) -------------------------------------------------


@pytest.mark.full_data
@needs_full_data
def test_full_data_matches_the_facts_in_its_readme():
    data = load_mnist(FULL)
    assert data.x_train.shape == (60000, 28, 28) and data.x_test.shape == (10000, 28, 28)
    assert data.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert data.y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(data.y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(data.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert int(data.x_train.sum(dtype=np.int64)) == 1567298545
    assert int(data.x_test.sum(dtype=np.int64)) == 264923200


@pytest.mark.full_data
@needs_full_data
def test_sample_is_the_first_digits_of_the_full_data_and_rebuilds_byte_for_byte(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    try:
        import make_mnist_sample
    finally:
        sys.path.pop(0)
    full, sample = load_mnist(FULL), read_npz(sample_path())
    np.testing.assert_array_equal(sample.x_train, full.x_train[:5000])
    np.testing.assert_array_equal(sample.y_test, full.y_test[:1000])
    out = tmp_path / "rebuilt.npz"
    assert make_mnist_sample.main([FULL, "--out", str(out)]) == 0
    assert out.read_bytes() == sample_path().read_bytes()
