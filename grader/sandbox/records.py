"""What the sandbox reports back: limits, the data it hands the child, cells, calls and the network's arrays."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grader.results import RunError


@dataclass(frozen=True)
class Limits:
    """Per-submission limits; times in seconds, sizes in MB (output in KB, per cell or call)."""

    cell_timeout_s: float = 60.0
    call_timeout_s: float = 30.0
    total_timeout_s: float = 900.0
    memory_mb: int = 2048
    output_kb: int = 64
    file_mb: int = 64
    nproc: int = 64
    max_array_mb: int = 256
    max_answer_mb: int = 64  # per request: the answer line and every array read back, together
    start_timeout_s: float = 30.0
    max_line_mb: int = 16  # one answer line (JSON), checked before it is parsed


@dataclass(frozen=True)
class SandboxData:
    """What `tf.keras.datasets.mnist.load_data()` returns in the child: images (n, 28, 28), labels (n,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        return {"x_train": self.x_train, "y_train": self.y_train,
                "x_test": self.x_test, "y_test": self.y_test}


@dataclass(frozen=True)
class Param:
    """One parameter of a student function: name, inspect kind name, has a default (and its repr)."""

    name: str
    kind: str = "POSITIONAL_OR_KEYWORD"
    has_default: bool = False
    default_repr: str | None = None


@dataclass(frozen=True)
class Symbol:
    """A top-level name in the student's namespace, described without sending its value."""

    name: str
    kind: str  # "function", "ndarray", "list", "tuple", "dict", "int", "float", "module", "class", ...
    type_name: str
    signature: tuple[Param, ...] | None = None
    shape: tuple[int, ...] | None = None
    dtype: str | None = None
    length: int | None = None


@dataclass(frozen=True)
class CellOutcome:
    """What running one cell did; status is "ok" or the RunError kind."""

    index: int
    label: str
    status: str
    stdout: str = ""
    stderr: str = ""
    error: RunError | None = None
    duration_s: float = 0.0


@dataclass(frozen=True)
class NetworkEntry:
    """One network-shaped array of the student's, found by identity: every path that reaches it (as keys
    ["layers", 0, "W"] and as text "layers[0].W"), its value after the run and right after the initialisation."""

    index: int
    paths: tuple[tuple[Any, ...], ...]
    texts: tuple[str, ...]
    value: Any
    initial: Any = None  # None: it did not exist when the network was first complete

    @property
    def holder(self) -> str:
        """The global through which it is first reached."""
        return str(self.paths[0][0]) if self.paths and self.paths[0] else "?"


@dataclass(frozen=True)
class RunLog:
    """The notebook run: outcome per cell, every error, and the network's arrays (at the initialisation and
    after the run) with the global names the student's functions use."""

    outcomes: tuple[CellOutcome, ...]
    errors: tuple[RunError, ...]
    network: tuple[NetworkEntry, ...] = ()
    duration_s: float = 0.0
    used_names: frozenset[str] = frozenset()
    initialised: bool = False  # the network was complete after some statement (its initial values are known)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class CallResult:
    """One call of a student function: its value, the globals asked for, output, and any error."""

    function: str
    ok: bool
    value: Any = None
    globals: dict[str, Any] = field(default_factory=dict)  # only the requested names that exist
    stdout: str = ""
    stderr: str = ""
    error: RunError | None = None
    timed_out: bool = False
    recorded: list[dict[str, Any]] = field(default_factory=list)  # [{"function", "arguments": {...}}]
    duration_s: float = 0.0
    params: dict[int, Any] = field(default_factory=dict)  # network entry -> its value after the call
    rebound: dict[int, tuple[str, ...]] = field(default_factory=dict)  # entry -> paths the student rebound
    trace: tuple[dict[str, Any], ...] | None = None  # call(trace=True): [{name, function, line, file, source, value}]
    watched: dict[str, Any] | None = None  # call(watch=...): {"key", "before": {entry: array}, "after": {...}}
