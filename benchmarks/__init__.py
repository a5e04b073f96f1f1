"""Benchmarks of the grader, run side by side on this machine: `python -m benchmarks [--quick]`.

Not timed tests: each section measures the fast path and its baseline in the same run and prints one
row per figure (what, measured, baseline, speed-up, goal, met). BLAS is pinned to one thread before
numpy loads (as the sandbox does for student code): on a shared 2-core machine a multithreaded BLAS
call on these tiny matrices is slower, for the fast path and the baselines alike.
"""

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
