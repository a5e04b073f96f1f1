"""Point at the line: the first quantity of a student's step that goes wrong, and where their code computes it.

The sandbox traces one probe call of train_one_sample and records every numeric array the submission's own
frames compute (`TracedArray`: variable, function, line, value). Here those arrays are compared with the
reference's intermediates at the same point, in computation order (z1, a1, z2, a2, z3, p, delta3, delta2,
delta1, dW3, db3, dW2, db2, dW1, db1), in any layout the grader adapts to (transposed, (n, 1) or (1, n),
float32, inputs scaled by 255 or 256 where the student scales them, deltas of either sign).

From a wrong tensor's implied gradient the search walks back through the computation: a wrong quantity whose
value the student's computation explains from a wrong input (some traced array standing for that input, where
the student has no right array for it) is blamed on that input; the quantity whose inputs the student has
right, but which is still wrong, is the first wrong one, named by the array that holds it. Nothing is named
where no traced array holds the wrong value (a step computed in one expression): the verdict stays as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations, product
from typing import Any

import numpy as np

from grader.gradients import relative_error, tensor
from grader.results import FirstWrong
from reference import network

Params = tuple[list[np.ndarray], list[np.ndarray]]

QUANTITIES = ("z1", "a1", "z2", "a2", "z3", "p", "delta3", "delta2", "delta1",
              "dW3", "db3", "dW2", "db2", "dW1", "db1")
SIGNED = frozenset(QUANTITIES[6:])  # deltas and gradients: a student may carry -delta and add the update
INPUTS: Mapping[str, tuple[str, ...]] = {
    "z1": ("x",), "a1": ("z1",), "z2": ("a1",), "a2": ("z2",), "z3": ("a2",), "p": ("z3",), "delta3": ("p",),
    "delta2": ("delta3", "a2"), "delta1": ("delta2", "a1"),
    "dW3": ("a2", "delta3"), "db3": ("delta3",), "dW2": ("a1", "delta2"), "db2": ("delta2",),
    "dW1": ("x", "delta1"), "db1": ("delta1",),
}
MEANING = {
    "z1": "the first hidden layer's pre-activation", "a1": "the first hidden layer's activation",
    "z2": "the second hidden layer's pre-activation", "a2": "the second hidden layer's activation",
    "z3": "the output logits", "p": "the softmax output", "delta3": "dL/dz3, the output delta",
    "delta2": "dL/dz2, the second hidden layer's delta", "delta1": "dL/dz1, the first hidden layer's delta",
    "dW3": "the W3 gradient", "db3": "the b3 gradient", "dW2": "the W2 gradient", "db2": "the b2 gradient",
    "dW1": "the W1 gradient", "db1": "the b1 gradient",
}
TENSOR_QUANTITY = {"W1": "dW1", "b1": "db1", "W2": "dW2", "b2": "db2", "W3": "dW3", "b3": "db3"}
INPUT_SCALES = (1.0, 255.0, 256.0)
TOLERANCE = 1e-4  # float32 students agree to ~1e-7, the mildest real bug differs by ~0.1
MAX_CANDIDATES = 40  # traced arrays tried per wrong input


@dataclass(frozen=True)
class TracedArray:
    """One array the student's code computed: variable (or 'return'), function, line, that line's source."""

    variable: str
    function: str
    line: int
    source: str
    value: np.ndarray
    file: str = ""  # the submission's file name ("hw.py", or "hw.ipynb cell 4")

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> TracedArray:
        return cls(str(record["name"]), str(record["function"]), int(record["line"]), str(record["source"]),
                   np.asarray(record["value"]), str(record.get("file", "")))


def intermediates(params: Params, x: np.ndarray, label: int) -> dict[str, np.ndarray]:
    """The reference step's quantities at (params, x (784,), label), plus the right values that are not steps
    of their own (the one-hot label, sigma'(z), the back-propagated sums and the parameters)."""
    (w1, w2, w3), (b1, b2, b3) = params
    values: dict[str, np.ndarray] = {"x": np.asarray(x, dtype=np.float64)}
    for name in QUANTITIES:
        values[name] = compute(name, params, label, values)
    extra = {"y": network.one_hot(label), "sigma'(z1)": values["a1"] * (1 - values["a1"]),
             "sigma'(z2)": values["a2"] * (1 - values["a2"]), "W3 delta3": w3 @ values["delta3"],
             "W2 delta2": w2 @ values["delta2"], "W1": w1, "W2": w2, "W3": w3, "b1": b1, "b2": b2, "b3": b3}
    return {**values, **extra}


def compute(name: str, params: Params, label: int, values: Mapping[str, np.ndarray]) -> np.ndarray:
    """Quantity `name` from its inputs in `values` (canonical shapes), as the reference computes it."""
    (w1, w2, w3), (b1, b2, b3) = params
    v = values
    steps: dict[str, Callable[[], np.ndarray]] = {
        "z1": lambda: v["x"] @ w1 + b1, "a1": lambda: network.sigmoid(v["z1"]),
        "z2": lambda: v["a1"] @ w2 + b2, "a2": lambda: network.sigmoid(v["z2"]),
        "z3": lambda: v["a2"] @ w3 + b3, "p": lambda: network.softmax(v["z3"]),
        "delta3": lambda: v["p"] - network.one_hot(label),
        "delta2": lambda: (w3 @ v["delta3"]) * v["a2"] * (1 - v["a2"]),
        "delta1": lambda: (w2 @ v["delta2"]) * v["a1"] * (1 - v["a1"]),
        "dW3": lambda: np.outer(v["a2"], v["delta3"]), "db3": lambda: v["delta3"],
        "dW2": lambda: np.outer(v["a1"], v["delta2"]), "db2": lambda: v["delta2"],
        "dW1": lambda: np.outer(v["x"], v["delta1"]), "db1": lambda: v["delta1"],
    }
    return steps[name]()


def as_shape(value: np.ndarray, shape: tuple[int, ...], square_transposed: bool = False) -> np.ndarray | None:
    """A traced array in a canonical shape, float64: (n,) from any array of n numbers (one number broadcast, as
    a bias update broadcasts it), (a, b) from (a, b) or (b, a); a square one as the student's W2 is held."""
    value = np.asarray(value)
    if value.dtype.kind not in "biuf":
        return None
    if len(shape) == 1:
        if value.size == shape[0]:
            return value.reshape(shape).astype(np.float64)
        return np.full(shape, float(value.reshape(-1)[0])) if value.size == 1 and shape[0] > 1 else None
    if value.ndim != 2:
        return None
    if shape[0] == shape[1]:
        return (value.T if square_transposed else value).astype(np.float64) if value.shape == shape else None
    if value.shape == shape:
        return value.astype(np.float64)
    return value.T.astype(np.float64) if value.shape == shape[::-1] else None


def close(student: np.ndarray, expected: np.ndarray, signed: bool) -> bool:
    """Equal to within float32 rounding (up to the sign, for a delta or gradient)."""
    return error(student, expected, signed) <= TOLERANCE


def error(student: np.ndarray, expected: np.ndarray, signed: bool) -> float:
    """e = ||s - f|| / max(||s||, ||f||), of -s too where the sign is a convention; inf if not finite."""
    if not (np.isfinite(student).all() and np.isfinite(expected).all()):
        return float("inf")
    e = relative_error(student, expected)
    return min(e, relative_error(-student, expected)) if signed else e


class Pinpoint:
    """The traced arrays of one step matched against the reference's intermediates at the same point."""

    def __init__(self, traced: Sequence[TracedArray], params: Params, x: np.ndarray, label: int,
                 square_transposed: bool = False):
        self.traced, self.params, self.label = list(traced), params, int(label)
        self.square_transposed = square_transposed
        self.scale, self.expected = self._reference(np.asarray(x, dtype=np.float64).ravel())
        self.right = [self._right_for(t) for t in self.traced]  # per traced array, the quantities it holds
        self.observed = set().union(*self.right) if self.right else set()
        self._found: dict[str, FirstWrong | None] | None = None

    def _reference(self, x: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        """The input scale the student's own forward pass uses (1, 255 or 256) and the intermediates there."""
        best = (-1, 1.0, {})
        for scale in INPUT_SCALES:
            expected = intermediates(self.params, x / scale, self.label)
            hits = sum(self._holds(t.value, expected, q) for t in self.traced for q in ("x", "z1", "a1"))
            if hits > best[0]:
                best = (hits, scale, expected)
        return best[1], best[2]

    def _holds(self, value: np.ndarray, expected: Mapping[str, np.ndarray], name: str) -> bool:
        canonical = as_shape(value, expected[name].shape, self.square_transposed)
        return canonical is not None and close(canonical, expected[name], name in SIGNED)

    def _right_for(self, traced: TracedArray) -> set[str]:
        return {name for name in self.expected if self._holds(traced.value, self.expected, name)}

    def first_wrong(self, tensor_name: str, implied: Params) -> FirstWrong | None:
        """The first wrong quantity behind the student's gradient of tensor_name ('W1'..'b3'): the earliest one
        found wrong upstream of it, from this tensor or another; None when it is right or nothing holds it."""
        if self._found is None:
            self._found = {name: self._walk(name, implied) for name in TENSOR_QUANTITY}
        own = self._found[tensor_name]
        if own is None:
            return None
        upstream = [f for f in self._found.values() if f is not None and f.quantity in ancestors(own.quantity)]
        return min(upstream + [own], key=lambda f: order(f.quantity))

    def _walk(self, tensor_name: str, implied: Params) -> FirstWrong | None:
        """Walk back from the student's gradient of tensor_name to the wrong quantity it follows from."""
        quantity = TENSOR_QUANTITY[tensor_name]
        student = np.asarray(tensor(implied, tensor_name), dtype=np.float64).reshape(self.expected[quantity].shape)
        if close(student, self.expected[quantity], quantity in SIGNED):
            return None
        return self._explain(quantity, student, None, depth=0)

    def _explain(self, quantity: str, student: np.ndarray, holder: TracedArray | None,
                 depth: int) -> FirstWrong | None:
        """quantity is wrong (student's value `student`): blame its wrong input if the student's value follows
        from it, else name quantity itself, by the traced array holding it."""
        if depth < len(QUANTITIES):
            for name, value, traced in self._wrong_inputs(quantity, student):
                return self._explain(name, value, traced, depth + 1)
        holder = holder or self._holder(quantity, student)
        if holder is None:
            return None
        e = error(student, self.expected[quantity], quantity in SIGNED)
        return FirstWrong(quantity, holder.variable, holder.function, holder.line, float(e), holder.source,
                          holder.file)

    def _wrong_inputs(self, quantity: str, student: np.ndarray) -> Iterable[tuple[str, np.ndarray, TracedArray]]:
        """(input, its wrong value, the traced array) for the fewest wrong inputs that explain `student`."""
        inputs = INPUTS[quantity]
        options = {name: self._candidates(name) for name in inputs if name not in self.observed}
        for count in range(1, len(options) + 1):
            for wrong in combinations(options, count):
                for chosen in product(*(options[n] for n in wrong)):
                    values = {**self.expected, **{n: value for n, (value, _) in zip(wrong, chosen, strict=True)}}
                    if close(compute(quantity, self.params, self.label, values), student, quantity in SIGNED):
                        first = wrong[0]
                        value, traced = chosen[0]
                        yield first, value, traced
                        return

    def _candidates(self, quantity: str) -> list[tuple[np.ndarray, TracedArray]]:
        """Traced arrays that could be the student's (wrong) value of quantity: of its shape, holding no right
        value, one per distinct value (its first assignment)."""
        shape, found, seen = self.expected[quantity].shape, [], set()
        for traced, right in zip(self.traced, self.right, strict=True):
            value = None if right or traced.value.size == 1 else as_shape(traced.value, shape, self.square_transposed)
            if value is None or not np.any(value) or value.tobytes() in seen:
                continue
            seen.add(value.tobytes())
            found.append((value, traced))
            if len(found) >= MAX_CANDIDATES:
                break
        return found

    def _holder(self, quantity: str, student: np.ndarray) -> TracedArray | None:
        """The traced array holding the student's wrong value of quantity: where it is first computed, or, when
        that computes another quantity right (W3 delta3, say), where it is next taken up (db2 = that)."""
        shape = self.expected[quantity].shape
        if not np.any(student):
            return None  # any array of zeros would hold it: nothing to point at
        holders = [(traced, bool(right)) for traced, right in zip(self.traced, self.right, strict=True)
                   if (value := as_shape(traced.value, shape, self.square_transposed)) is not None
                   and close(value, student, quantity in SIGNED)]
        if not holders:
            return None
        (first, claimed), later = holders[0], holders[1:]
        return later[0][0] if claimed and later else first


def order(quantity: str) -> int:
    """Position of a quantity in the step's computation order."""
    return QUANTITIES.index(quantity)


def ancestors(quantity: str) -> set[str]:
    """Every quantity `quantity` is computed from, directly or not."""
    found: set[str] = set()
    stack = list(INPUTS.get(quantity, ()))
    while stack:
        name = stack.pop()
        if name not in found:
            found.add(name)
            stack.extend(INPUTS.get(name, ()))
    return found
