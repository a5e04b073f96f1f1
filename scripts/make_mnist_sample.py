"""Build reference/data/mnist_sample.npz, the small real MNIST shipped with the package.

The sample is the FIRST 5,000 training and the FIRST 1,000 test digits of the full MNIST, in their
original order (no shuffling, no stratification): it is exactly what `x_train[:5000]` gives a student,
so training on it is a prefix of the real per-sample SGD run. Class counts stay within about +-15% of
uniform (train 434..563 per class, test 85..126).

The archive is the format np.savez_compressed writes (a deflated zip of .npy files, uint8 arrays),
but written with a fixed timestamp so that the same input gives the same bytes every time.

Usage: python scripts/make_mnist_sample.py [FULL_MNIST_NPZ] [--train 5000] [--test 1000] [--out PATH]
FULL_MNIST_NPZ defaults to $MNIST_PATH.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
import zipfile
from pathlib import Path

import numpy as np

from reference.mnist import Mnist, load_mnist, read_npz, sample_path

FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip can hold


def first_n(data: Mnist, n_train: int, n_test: int) -> dict[str, np.ndarray]:
    """The first n_train training and n_test test digits, uint8, in the keras key order."""
    if n_train > len(data.y_train) or n_test > len(data.y_test):
        raise SystemExit(f"{data.source} has only {len(data.y_train)} train / {len(data.y_test)} test digits")
    return {
        "x_train": np.ascontiguousarray(data.x_train[:n_train], dtype=np.uint8),
        "y_train": np.ascontiguousarray(data.y_train[:n_train], dtype=np.uint8),
        "x_test": np.ascontiguousarray(data.x_test[:n_test], dtype=np.uint8),
        "y_test": np.ascontiguousarray(data.y_test[:n_test], dtype=np.uint8),
    }


def write_npz_reproducibly(arrays: dict[str, np.ndarray], out: Path) -> None:
    """Like np.savez_compressed, but every zip entry gets FIXED_TIME so the bytes are reproducible."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for key, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, array, allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buffer.getvalue(), compresslevel=9)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("full", nargs="?", default=os.environ.get("MNIST_PATH"), help="full keras mnist.npz")
    parser.add_argument("--train", type=int, default=5000)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=sample_path())
    args = parser.parse_args(argv)
    if not args.full:
        parser.error("give the full mnist.npz (or set MNIST_PATH)")
    full = load_mnist(args.full)
    write_npz_reproducibly(first_n(full, args.train, args.test), args.out)
    check = read_npz(args.out)  # what we wrote must pass the loader's own validation
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(f"wrote {args.out}: {args.out.stat().st_size} bytes, sha256 {digest}")
    print(f"  {len(check.y_train)} train (classes {np.bincount(check.y_train, minlength=10).tolist()})")
    print(f"  {len(check.y_test)} test (classes {np.bincount(check.y_test, minlength=10).tolist()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
