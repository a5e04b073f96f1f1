"""The student's code as the checks see it: the handout's operations, canonical layout in and out.

Checks (grader/checks/*) take a `Student` and never know whether it is a sandboxed child
(grader/adapt/student.py: SandboxStudent, which converts to the student's own layout and signatures)
or, in the checks' unit tests, plain Python functions (InProcessStudent below, trusted code only).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from grader.results import RunError

Params = tuple[list[np.ndarray], list[np.ndarray]]  # canonical: W (n_in, n_out), b (n_out,)


class StudentCodeError(Exception):
    """The student's code raised, timed out or returned something unusable; `error` says what and where."""

    def __init__(self, error: RunError):
        super().__init__(error.message)
        self.error = error


@dataclass(frozen=True)
class EpochRun:
    """What one call of train_one_epoch did: parameters after it, and the per-sample calls it made."""

    params: Params | None
    recorded: list[dict[str, Any]] = field(default_factory=list)  # [{"x": (784,), "label": int, "lr": float}]
    stdout: str = ""
    watched: WatchedStep | None = None  # train_one_epoch(..., watch_step=k): its k-th step, if it was seen


@dataclass(frozen=True)
class WatchedStep:
    """One step of a real epoch as the student's loop took it: the parameters before and after it (canonical)
    and the sample's key (runner.sample_key: [sum, sum of squares, first non-zero]; None if not an array)."""

    index: int
    before: Params
    after: Params
    key: list[float] | None


class Student(Protocol):
    """The handout's API, in the canonical layout. Every method may raise StudentCodeError."""

    initial_params: Params | None  # the student's Q1 initialisation, canonical, or None

    def has(self, function: str) -> bool: ...

    def call_helper(self, name: str, *args: Any) -> Any: ...

    def feed_forward_sample(self, params: Params, x: np.ndarray, label: int) -> tuple[Any, Any]: ...

    def feed_forward_dataset(self, params: Params, images: np.ndarray, labels: np.ndarray) -> str: ...

    def train_one_sample(self, params: Params, x: np.ndarray, label: int, learning_rate: float) -> Params: ...

    def train_one_epoch(
        self, params: Params, images: np.ndarray, labels: np.ndarray, learning_rate: float, record_steps: bool,
        watch_step: int | None = None,
    ) -> EpochRun: ...


def copy_params(params: Params) -> Params:
    """Deep copy as float64 arrays."""
    weights, biases = params
    return [np.array(w, dtype=np.float64) for w in weights], [np.array(b, dtype=np.float64) for b in biases]


@dataclass
class InProcessStudent:
    """A Student made of trusted Python callables (tests only: student code never runs in-process).

    `step(params, x, label, lr) -> params`, `forward(params, x, label) -> (loss, guess)`,
    `dataset(params, images, labels) -> printed text`; `helpers` maps helper names to callables.
    """

    step: Callable[..., Params] | None = None
    forward: Callable[..., tuple[Any, Any]] | None = None
    dataset: Callable[..., str] | None = None
    epoch: Callable[..., EpochRun] | None = None
    helpers: dict[str, Callable[..., Any]] = field(default_factory=dict)
    initial_params: Params | None = None

    def has(self, function: str) -> bool:
        slots = {
            "train_one_sample": self.step,
            "feed_forward_sample": self.forward,
            "feed_forward_dataset": self.dataset,
            "train_one_epoch": self.epoch,
        }
        return slots.get(function) is not None or function in self.helpers

    def _missing(self, name: str) -> StudentCodeError:
        return StudentCodeError(RunError("exception", f"call {name}", f"{name} is not defined"))

    def call_helper(self, name: str, *args: Any) -> Any:
        if name not in self.helpers:
            raise self._missing(name)
        return self.helpers[name](*args)

    def feed_forward_sample(self, params: Params, x: np.ndarray, label: int) -> tuple[Any, Any]:
        if self.forward is None:
            raise self._missing("feed_forward_sample")
        return self.forward(copy_params(params), x, label)

    def feed_forward_dataset(self, params: Params, images: np.ndarray, labels: np.ndarray) -> str:
        if self.dataset is None:
            raise self._missing("feed_forward_dataset")
        return self.dataset(copy_params(params), images, labels)

    def train_one_sample(self, params: Params, x: np.ndarray, label: int, learning_rate: float) -> Params:
        if self.step is None:
            raise self._missing("train_one_sample")
        return self.step(copy_params(params), x, label, learning_rate)

    def train_one_epoch(self, params, images, labels, learning_rate, record_steps, watch_step=None) -> EpochRun:
        if self.epoch is None:
            raise self._missing("train_one_epoch")
        return self.epoch(copy_params(params), images, labels, learning_rate, record_steps)
