"""The data grading uses: MNIST cut once per process to the rubric's sizes, with the probe digits and a trained
reference point. Every question reads it; nothing here knows a student."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from grader.checks.backprop import BackpropSettings
from grader.checks.training import TrainingSettings
from grader.gradients import probe_samples
from grader.sandbox import SandboxData
from grader.student import Params
from reference import network
from reference.mnist import Mnist, load_mnist

if TYPE_CHECKING:  # the rubric reads the questions, whose Context holds this data: no import at run time
    from grader.rubric import Rubric


@dataclass(frozen=True)
class GradingData:
    """The MNIST arrays grading uses, cut to the rubric's sizes; images flattened to (n, 784) float64."""

    source: str
    toplevel: SandboxData  # raw uint8 images (n, 28, 28) for the student's own top-level code
    train_images: np.ndarray  # (n_train, 784) for Q4
    train_labels: np.ndarray
    test_images: np.ndarray  # (n_test, 784) for Q2's dataset and Q4's evaluation
    test_labels: np.ndarray
    probes: tuple[tuple[np.ndarray, int], ...]  # Q2/Q3 probe digits (784,), of different classes
    trained: Params  # reference parameters after one epoch on 3,000 images: Q2's dataset accuracy is not chance


def prepare_data(rubric: Rubric, mnist: Mnist | None = None, *, full: bool = False) -> GradingData:
    """Cut the loaded MNIST to what the rubric asks for (`full`: Q4 on every image, as the handout does)."""
    mnist = mnist or load_mnist()
    q4 = rubric.questions["Q4"].settings if "Q4" in rubric.questions else TrainingSettings()
    q3 = rubric.questions["Q3"].settings if "Q3" in rubric.questions else BackpropSettings()
    n_train = len(mnist.y_train) if full else min(q4.train_samples, len(mnist.y_train))
    n_test = len(mnist.y_test) if full else min(q4.test_samples, len(mnist.y_test))
    toplevel = SandboxData(
        mnist.x_train[: rubric.data.toplevel_train], mnist.y_train[: rubric.data.toplevel_train],
        mnist.x_test[: rubric.data.toplevel_test], mnist.y_test[: rubric.data.toplevel_test],
    )
    test_images = network.flatten_images(mnist.x_test[:n_test])
    test_labels = mnist.y_test[:n_test].astype(np.int64)
    probes = probe_samples(test_images, test_labels, max(q3.max_samples, 5))
    train_images = network.flatten_images(mnist.x_train[:n_train])
    train_labels = mnist.y_train[:n_train].astype(np.int64)
    trained = network.train_epoch(*network.init_params(), train_images[:3000], train_labels[:3000])
    return GradingData(
        mnist.source, toplevel, train_images, train_labels, test_images, test_labels,
        tuple((np.asarray(x), int(y)) for x, y in probes), trained,
    )


def save_data(data: GradingData, folder: Path) -> None:
    """Write data as .npy files (no pickle) and a JSON index in folder, for worker processes to map read-only."""
    arrays = {**{f"toplevel_{k}": v for k, v in data.toplevel.arrays().items()},
              "train_images": data.train_images, "train_labels": data.train_labels,
              "test_images": data.test_images, "test_labels": data.test_labels,
              **{f"probe_{i}": x for i, (x, _) in enumerate(data.probes)},
              **{f"trained_W{i}": w for i, w in enumerate(data.trained[0])},
              **{f"trained_b{i}": b for i, b in enumerate(data.trained[1])}}
    for name, array in arrays.items():
        np.save(folder / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
    index = {"source": data.source, "probe_labels": [y for _, y in data.probes], "layers": len(data.trained[0])}
    (folder / "index.json").write_text(json.dumps(index), encoding="utf-8")


def load_data(folder: Path) -> GradingData:
    """The GradingData save_data wrote in folder, its MNIST arrays memory-mapped read-only (shared by workers)."""
    index = json.loads((folder / "index.json").read_text(encoding="utf-8"))

    def array(name: str, mapped: bool = True) -> np.ndarray:
        return np.load(folder / f"{name}.npy", mmap_mode="r" if mapped else None, allow_pickle=False)

    toplevel = SandboxData(*(array(f"toplevel_{k}") for k in ("x_train", "y_train", "x_test", "y_test")))
    probes = tuple((array(f"probe_{i}", False), int(y)) for i, y in enumerate(index["probe_labels"]))
    layers = range(int(index["layers"]))
    trained = ([array(f"trained_W{i}", False) for i in layers], [array(f"trained_b{i}", False) for i in layers])
    return GradingData(str(index["source"]), toplevel, array("train_images"), array("train_labels"),
                       array("test_images"), array("test_labels"), probes, trained)


def cached_data(rubric: Rubric, mnist_path: str | None = None, *, full: bool = False) -> GradingData:
    """prepare_data for the MNIST file load_mnist would read, from the prepared-data cache when this file, rubric
    and grader prepared it before (grader.data_cache), else validated and cut now and kept there."""
    from grader import data_cache

    key, entry, source = data_cache.lookup(mnist_path, rubric.sha256, full)
    if entry is not None:
        return replace(load_data(entry), source=source)
    data = prepare_data(rubric, load_mnist(mnist_path), full=full)
    if key is not None:
        with tempfile.TemporaryDirectory(prefix="grader-prepared-") as folder:
            save_data(data, Path(folder))
            data_cache.store_entry(key, Path(folder))
    return data
