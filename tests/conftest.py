"""Shared test fixtures."""

import copy
import os

# Before numpy loads: one BLAS thread, as the grader's CLI and sandbox use. With several threads per process,
# tests that run Dask workers and sandboxed children beside the grader can make tiny matrix products crawl.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import pytest  # noqa: E402 - after the BLAS settings above


@pytest.fixture(autouse=True)
def _restore_reference_solution_globals():
    """Some tests drive reference/solution.py through its module globals, as a student's kernel would:
    put them back afterwards so that no test sees another's trained weights."""
    import reference.solution as solution

    names = ("weights", "biases", "x_train", "y_train", "x_test", "y_test", "train_one_sample")
    saved = {n: copy.deepcopy(getattr(solution, n)) if n != "train_one_sample" else getattr(solution, n)
             for n in names if hasattr(solution, n)}
    yield
    for name, value in saved.items():
        setattr(solution, name, value)


@pytest.fixture(scope="session")
def rubric():
    """The shipped rubric."""
    from grader.rubric import load_rubric

    return load_rubric()


@pytest.fixture(scope="session")
def data(rubric):
    """Grading data cut from the shipped MNIST sample (the same whatever MNIST_PATH says)."""
    from pathlib import Path

    from grader.grading import prepare_data
    from reference.mnist import load_mnist

    sample = Path(__file__).resolve().parents[1] / "reference" / "data" / "mnist_sample.npz"
    return prepare_data(rubric, load_mnist(sample))
