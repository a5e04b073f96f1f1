"""Autograder for the from-scratch numpy MNIST backpropagation homework."""

import os

__version__ = "0.1.0"

# The grader multiplies small matrices: a multithreaded BLAS costs far more than it gains, especially with
# several grading workers and sandboxed children sharing the cores. Only effective before numpy loads.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


def __getattr__(name: str):
    """`from grader import check`: the in-notebook self-check, imported only when asked for."""
    if name == "check":
        from grader.selfcheck import check

        return check
    raise AttributeError(f"module 'grader' has no attribute {name!r}")
