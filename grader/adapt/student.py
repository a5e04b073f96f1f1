"""The student's code in the sandbox as a `Student` (grader/student.py): canonical in, canonical out.

`build_student(box, run)` decides which of the student's arrays are the network (network.py) and plans every
handout function's call against the student's own signature (calls.py); `SandboxStudent` then converts each
call: the grader's canonical parameters are written into the student's own arrays in place (and the student's
own objects are passed where their functions take the parameters), a canonical sample (784,) float64 goes in as
the handout's data holds one (x_train[i]: (28, 28) uint8), and the results come back canonical, read from what
the call changed. Every failure becomes a StudentCodeError; nothing the student's code returns can crash this.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from grader.adapt.calls import CallPlan, call_arguments
from grader.adapt.data_form import DataForm
from grader.adapt.marks import index_marks
from grader.adapt.names import HANDOUT
from grader.adapt.network import (
    NetworkLayout,
    from_entries,
    returned_network,
    to_entries,
)
from grader.adapt.returns import read_forward_return, returned_figures
from grader.adapt.shapes import LayoutProblem
from grader.results import RunError
from grader.sandbox import CallResult, Fingerprint, Opaque, Ref, Sandbox
from grader.sandbox.values import Repeated
from grader.student import EpochRun, Params, StudentCodeError, WatchedStep

HANDOUT_FUNCTIONS = tuple(HANDOUT)
PARAMETER_ROLES = ("weights", "biases")


# -------------------------------------------------------------------------------------- the student


SECONDS_PER_SAMPLE = 0.005  # a slow but honest per-sample step in the student's code takes about 1 ms


def _failure(function: str, message: str, kind: str = "exception") -> StudentCodeError:
    return StudentCodeError(RunError(kind, f"call {function}", message))  # type: ignore[arg-type]


def _describe(value: Any) -> str:
    """What a student's value is, for messages: type and shape, never its contents."""
    if isinstance(value, Opaque):
        return f"a {value.type_name} (which the grader cannot read back)"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} ({value.dtype})"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)} items"
    if isinstance(value, dict):
        return f"a dict with keys {', '.join(map(repr, list(value)[:8]))}"
    return "None" if value is None else f"a {type(value).__name__} ({value!r:.60})"


class SandboxStudent:
    """The `Student` protocol over a running Sandbox, in the student's layout and signatures."""

    def __init__(
        self,
        box: Sandbox,
        layout: NetworkLayout | None,
        initial_params: Params | None,
        functions: Mapping[str, tuple[Any, ...]],
        plans: Mapping[str, CallPlan],
        problems: Mapping[str, str],
        form: DataForm,
        adaptations: Sequence[str],
        layout_problem: str | None = None,
        rate_global: str | None = None,
    ):
        self.box = box
        self.layout = layout
        self.initial_params = initial_params
        self.functions = dict(functions)  # name -> signature (tuple of sandbox Params)
        self.plans = dict(plans)
        self.form = form
        self._problems = dict(problems)  # function -> why it cannot be called
        self._layout_problem = layout_problem
        self._adaptations = list(adaptations)
        self.rate_global = rate_global  # a global learning rate the grader sets, for a step that takes none

    # ----- what the report shows

    @property
    def adaptations(self) -> tuple[str, ...]:
        """Every assumption the grader made to talk to this student's code, in plain sentences."""
        return tuple(self._adaptations)

    @property
    def problems(self) -> tuple[str, ...]:
        """Why some functions cannot be called (a function or parameter that matches nothing), one each."""
        problems = list(self._problems.values())
        if self._layout_problem is not None:
            problems.insert(0, f"the network's parameters cannot be read: {self._layout_problem}")
        return tuple(dict.fromkeys(problems))

    def _adapt(self, *notes: str) -> None:
        self._adaptations += [n for n in notes if n and n not in self._adaptations]

    # ----- the Student protocol

    def has(self, function: str) -> bool:
        return function in self.functions

    def _rate_global(self, learning_rate: float) -> dict[str, float]:
        return {self.rate_global: float(learning_rate)} if self.rate_global else {}

    def problem_for(self, function: str) -> str | None:
        """Why `function` cannot be called with the grader's values, or None."""
        return self._problems.get(function)

    def call_helper(self, name: str, *args: Any) -> Any:
        """The student's helper `name(*args)` (e.g. sigmoid), its return value decoded."""
        result = self._call(name, list(args), {}, timeout=self._timeout(name))
        if isinstance(result.value, Opaque):
            raise _failure(name, f"{name} returned {_describe(result.value)}: expected numbers or arrays")
        return result.value

    def feed_forward_sample(self, params: Params, x: np.ndarray, label: int) -> tuple[Any, Any]:
        """(loss, guess) as returned; dicts or activations read as (loss or None, one-hot guess (10,))."""
        function = "feed_forward_sample"
        values = {"sample": self.form.sample(x), "label": self.form.label(label)}
        result = self._call_planned(function, params, values)
        return self._forward_pair(function, result.value)

    def feed_forward_dataset(self, params: Params, images: np.ndarray, labels: np.ndarray) -> str:
        """What feed_forward_dataset printed for images (n, 784), labels (n,), passed as x_test is held; when
        it returns its two figures (average loss, accuracy) instead, a last line saying so (returns.py)."""
        values = {"images": self.form.samples(images), "labels": self.form.labels(labels)}
        result = self._call_planned("feed_forward_dataset", params, values)
        returned = returned_figures(result.value)
        if returned is None:
            return result.stdout
        self._adapt("feed_forward_dataset returns (average loss, accuracy): the dataset checks read those")
        return f"{result.stdout}\n{returned}\n"

    def train_one_sample(self, params: Params, x: np.ndarray, label: int, learning_rate: float) -> Params:
        """Canonical parameters after one step of the student's train_one_sample on x (784,)."""
        return self.traced_train_one_sample(params, x, label, learning_rate, trace=False)[0]

    def traced_train_one_sample(self, params: Params, x: np.ndarray, label: int, learning_rate: float,
                                trace: bool = True) -> tuple[Params, tuple[dict[str, Any], ...]]:
        """(train_one_sample's parameters after the step, the arrays it computed in the submission's frames)."""
        function = "train_one_sample"
        values = {"sample": self.form.sample(x), "label": self.form.label(label),
                  "learning_rate": float(learning_rate)}
        result, positions = self._call_planned(function, params, values, with_positions=True,
                                               extra_globals=self._rate_global(learning_rate), trace=trace)
        found = self._updated(function, params, result, positions)
        if isinstance(found, LayoutProblem):
            raise _failure(function, found.message)
        return found.params, result.trace or ()

    def train_one_epoch(
        self, params: Params, images: np.ndarray, labels: np.ndarray, learning_rate: float, record_steps: bool,
        watch_step: int | None = None,
    ) -> EpochRun:
        """One epoch over images (n, 784) set as x_train/y_train; with record_steps, the per-sample calls
        are recorded as [{"x", "label", "lr"}] (the student's step still runs; if it raises, the loop goes on);
        with watch_step k, the network before and after the loop's k-th train_one_sample call (EpochRun.watched)."""
        function = "train_one_epoch"
        x_student, y_student = self.form.samples(images), self.form.labels(labels)
        values = {"images": x_student, "labels": y_student, "learning_rate": float(learning_rate)}
        record = ("train_one_sample",) if record_steps and self.has("train_one_sample") else ()
        watch = ("train_one_sample", int(watch_step)) if watch_step is not None and self.has("train_one_sample") \
            else None
        result, positions = self._call_planned(
            function,
            params,
            values,
            extra_globals={"x_train": x_student, "y_train": y_student, **self._rate_global(learning_rate)},
            record=record,
            with_positions=True,
            watch=watch,
        )
        recorded = self._recorded_steps(result.recorded) if record else []
        watched = self._watched_step(watch, result.watched)
        found = self._updated(function, params, result, positions)
        if isinstance(found, LayoutProblem):
            if not record_steps:
                raise _failure(function, found.message)
            return EpochRun(None, recorded, result.stdout, watched)
        after = None if record_steps and found.source == "none" else found.params
        return EpochRun(after, recorded, result.stdout, watched)

    def _watched_step(self, watch: tuple[str, int] | None, watched: dict[str, Any] | None) -> WatchedStep | None:
        """The watched step in the canonical layout; None if it was not seen or cannot be read."""
        if watch is None or not watched or self.layout is None:
            return None
        before = from_entries(watched["before"], self.layout, "before the watched step")
        after = from_entries(watched["after"], self.layout, "after the watched step")
        if isinstance(before, LayoutProblem) or isinstance(after, LayoutProblem):
            return None
        return WatchedStep(watch[1], before.params, after.params, watched["key"])

    def count_epoch_steps(self, params: Params, images: np.ndarray, labels: np.ndarray, n: int,
                          learning_rate: float, timeout_s: float) -> tuple[list[Any], Params | None]:
        """(the samples one epoch over a handout-length x_train steps through: the first train_one_sample call's
        runner.sample_key, then each later call's marks (adapt/marks.py); the parameters after it, None if
        unreadable). The step itself runs only for the first call (cheap for n = 60,000), so the parameters are
        those after the loop's first step. x_train is images (m, 784) repeated to n samples, each marked."""
        function = "train_one_epoch"
        small, y_small = self.form.samples(images), self.form.labels(labels)
        # Built in the child from the m images: n samples would cost the grader n x 784 values to write.
        x_student = Repeated(small, n, index_marks(n).astype(small.dtype))
        y_student = Repeated(np.asarray(y_small), n)
        result = self._call_planned(
            function, params, {"images": x_student, "labels": y_student, "learning_rate": float(learning_rate)},
            extra_globals={"x_train": x_student, "y_train": y_student, **self._rate_global(learning_rate)},
            record=("train_one_sample",), compact=True, timeout_s=timeout_s,
        )
        found = self._updated(function, params, result, {})
        return result.recorded, None if isinstance(found, LayoutProblem) else found.params

    # ----- calling

    def _timeout(self, function: str, samples: int = 0) -> float:
        """Per-sample calls get the call limit; a pass over n samples the cell limit, or 5 ms a sample if longer."""
        limits = self.box.limits
        if function in ("feed_forward_dataset", "train_one_epoch"):
            return max(limits.call_timeout_s, limits.cell_timeout_s, SECONDS_PER_SAMPLE * samples)
        return limits.call_timeout_s

    def _call(self, function: str, args: list[Any], kwargs: dict[str, Any], **options: Any) -> CallResult:
        if function in self._problems:
            raise _failure(function, self._problems[function], "not_gradable")
        if function not in self.functions:
            raise _failure(function, f"{function} is not defined at top level (as a function)")
        timeout = options.pop("timeout")
        result = self.box.call(function, args, kwargs, timeout_s=timeout, **options)
        if not result.ok:
            raise StudentCodeError(
                result.error or RunError("crash", f"call {function}", f"{function} did not answer")
            )
        return result

    def _call_planned(
        self,
        function: str,
        params: Params,
        values: dict[str, Any],
        *,
        extra_globals: Mapping[str, Any] | None = None,
        record: Sequence[str] = (),
        with_positions: bool = False,
        trace: bool = False,
        compact: bool = False,
        timeout_s: float | None = None,
        watch: tuple[str, int] | None = None,
    ):
        """Call a handout function as planned: parameters written into the student's arrays, and passed where it
        takes them; `compact` recording and `timeout_s` as Sandbox.call takes them (default: by the data's size)."""
        if self.layout is None and function in self.functions:
            message = f"{function} cannot be called with the grader's parameters: {self._layout_problem}"
            raise _failure(function, message, "not_gradable")
        if function in self._problems:
            raise _failure(function, self._problems[function], "not_gradable")
        if function not in self.functions or self.layout is None:
            raise _failure(function, f"{function} is not defined at top level (as a function)")
        plan = self.plans[function]
        values = {**values, **{role: self._reference(role) for role in PARAMETER_ROLES}}
        args, kwargs, positions = call_arguments(plan, self.functions[function], values)
        result = self._call(
            function,
            args,
            kwargs,
            set_globals=dict(extra_globals or {}),
            set_params=to_entries(params, self.layout),
            get_params=self.layout.entries,
            record=tuple(record),
            timeout=timeout_s or self._timeout(function, len(values.get("labels", ()))),
            **({"trace": True} if trace else {}),
            **({"compact": True} if compact else {}),
            **({"watch": watch} if watch is not None else {}),
        )
        return (result, positions) if with_positions else result

    def _reference(self, role: str) -> Any:
        """The student's own object for a parameter role: the global holding the weights (or biases), else a
        list of the very arrays, so that a function mutating its arguments mutates the network."""
        assert self.layout is not None
        holder = self.layout.holder_of(role)
        if holder is not None:
            return Ref(global_name=holder)
        entries = self.layout.w_entries if role == "weights" else self.layout.b_entries
        return [Ref(entry=i) for i in entries]

    # ----- reading results

    def _forward_pair(self, function: str, value: Any) -> tuple[Any, Any]:
        reading = read_forward_return(value)
        if reading.note == "" and isinstance(value, (tuple, list)) and len(value) == 2:
            return value[0], value[1]  # the handout's (loss, guess): the checks judge it as returned
        if reading.loss is None and reading.guess is None:
            raise _failure(
                function,
                f"{function} returned {_describe(value)} ({reading.note}): "
                f"expected (loss, one_hot_guess) or the network's output",
            )
        self._adapt(f"{function}: {reading.note}")
        return reading.loss, reading.guess

    def _updated(
        self, function: str, sent: Params, result: CallResult, positions: Mapping[str, int]
    ) -> UpdatedParams | LayoutProblem:
        """The parameters after the call: the network's own arrays if the call changed them (in place or by
        rebinding); otherwise the parameters it returned, if it returned a network; otherwise unchanged."""
        assert self.layout is not None
        context = f"after {function}"
        state = from_entries(result.params, self.layout, context)
        rebound = sorted({t for texts in result.rebound.values() for t in texts})
        if isinstance(state, LayoutProblem):
            return state
        if rebound or not _same(state.params, sent):
            self._adapt(*state.notes)
            return UpdatedParams("state", state.params, state.notes)
        returned = returned_network(result.value, context)
        if returned is not None and not _same(returned.params, sent):
            note = f"{function} returns the updated parameters instead of updating the globals"
            self._adapt(*returned.notes, note)
            return UpdatedParams("return", returned.params, returned.notes + (note,))
        return UpdatedParams("none", sent, (f"{function} changed no weight or bias",))

    def _recorded_steps(self, recorded: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The recorded train_one_sample calls as [{"x", "label", "lr"}], read with its CallPlan."""
        plan = self.plans.get("train_one_sample")
        names = {a.role: a.parameter for a in plan.arguments} if plan else {}
        positional = list(names.get(r, r) for r in ("sample", "label", "learning_rate"))
        steps = []
        for call in recorded:
            arguments = call.get("arguments") or {}
            if "*args" in arguments:  # the recorder could not bind the call to the signature
                given = list(arguments.get("*args") or ()) + [None] * 3
                arguments = {
                    **dict(zip(positional, given[:3], strict=True)),
                    **(arguments.get("**kwargs") or {}),
                }
            steps.append(
                {
                    "x": _plain(arguments.get(names.get("sample", "sample"))),
                    "label": _plain(arguments.get(names.get("label", "y"))),
                    "lr": _plain(arguments.get(names.get("learning_rate", "learning_rate"))),
                }
            )
        return steps


@dataclass(frozen=True)
class UpdatedParams:
    """Canonical parameters after a training call and where they were found (state, return, none)."""

    source: str
    params: Params
    notes: tuple[str, ...] = ()


def _same(a: Params, b: Params) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a[0] + a[1], b[0] + b[1], strict=True))


def _plain(value: Any) -> Any:
    """A recorded value; a fingerprint (of a one-hot label, say) as a dict {"shape", "sum", "sumsq", ...}."""
    if isinstance(value, Fingerprint):
        return {
            "shape": value.shape,
            "sum": value.sum,
            "sumsq": value.sum_sq,
            "first_nonzero": value.first_nonzero,
        }
    return value
