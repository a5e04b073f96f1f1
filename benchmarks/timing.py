"""Wall-clock timing helpers: one timed call, and the median of repeats."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    """(seconds, value) of one call of fn, by the monotonic performance counter."""
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def repeated(fn: Callable[[], T], repeats: int) -> tuple[list[float], T]:
    """Seconds of each of `repeats` calls of fn, and the last call's value."""
    times, value = [], None
    for _ in range(max(1, repeats)):
        seconds, value = timed(fn)
        times.append(seconds)
    return times, value


def median(times: list[float]) -> float:
    return float(statistics.median(times))
