"""The student's own running namespace (a Jupyter kernel's globals) behind the Sandbox interface.

`KernelBox(namespace)` answers what grader/adapt/student.py asks a Sandbox (run_cells, namespace, get, call,
limits, protections) without a child process: it is for the in-notebook self-check only, where the code
under test is the student's own, already running in their own kernel. Values cross the boundary exactly as
they would cross the sandbox's (the child runner's encoder, then decoded in memory): arguments and globals
go in as deep copies, values come out as copies, numpy scalars as Python numbers, anything else as Opaque.

Every call restores the namespace's bindings afterwards (names the grader set, and names the student's code
rebound, added or deleted). In-place changes to the student's own objects are undone by `preserved_state`,
which grader/selfcheck.py wraps around the whole check.

Time limits: SIGALRM (setitimer) interrupts a call that runs too long, firing again every 0.25 s until the
call returns, so a single `except BaseException` cannot swallow it. This needs the main thread (where a
Jupyter kernel runs cells); on any other thread calls run without a limit.
"""

from __future__ import annotations

import builtins
import copy
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from typing import Any

import numpy as np

from grader.kernel_state import restore_bindings
from grader.results import RunError
from grader.sandbox import runner
from grader.sandbox.child import _symbol as symbol_from_info
from grader.sandbox.records import CallResult, Limits, NetworkEntry, RunLog, Symbol
from grader.sandbox.values import Fingerprint, Opaque, Ref

THIS_FILE = __file__
REFIRE_S = 0.25  # after the limit, SIGALRM repeats at this interval until the call returns


class CallTimedOut(BaseException):
    """Raised inside the student's code by SIGALRM when a call exceeds its limit."""


# ------------------------------------------------------------------------------------- value trees


class _MemoryExchange(runner.Exchange):
    """The child runner's encoder with arrays kept in memory (as copies) instead of written to .npy files."""

    def __init__(self) -> None:
        super().__init__(inbox=None, outbox=None)

    def _array(self, array: np.ndarray, fingerprints: bool) -> Any:
        if fingerprints or array.dtype.kind not in runner.NUMERIC_KINDS:
            return super()._array(array, fingerprints)  # a fingerprint or an opaque node: no file written
        return {"$": "ndarray", "array": np.array(array, copy=True)}


def _decoded(node: Any) -> Any:
    """An encoded node -> the value the grader would have read from the sandbox (arrays already copies)."""
    if isinstance(node, list):
        return [_decoded(v) for v in node]
    if not isinstance(node, dict):
        return node
    tag = node.get("$")
    if tag == "ndarray":
        return node["array"]
    if tag == "float":
        return float(node["v"])
    if tag == "tuple":
        return tuple(_decoded(v) for v in node["items"])
    if tag == "dict":
        return {_decoded(k): _decoded(v) for k, v in node["items"]}
    if tag == "opaque":
        return Opaque(str(node["type"]), str(node["repr"]))
    if tag == "fingerprint":
        first = node["first_nonzero"]
        return Fingerprint(tuple(node["shape"]), node["dtype"], float(_decoded(node["sum"])),
                           float(_decoded(node["sum_sq"])), None if first is None else int(first))
    return Opaque("?", f"unknown value node {tag!r}")


def value_tree(value: Any, *, fingerprints: bool = False) -> Any:
    """What the grader would receive for `value` from the sandbox: a copied value tree (Opaque elsewhere)."""
    return _decoded(_MemoryExchange().encode(value, fingerprints=fingerprints))


# ----------------------------------------------------------------------------------------- errors


def _student_frames(exc: BaseException) -> traceback.StackSummary:
    """The exception's frames without this module's own (the call wrapper and the alarm handler)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != THIS_FILE]
    return traceback.StackSummary.from_list(frames)


def run_error(exc: BaseException, where: str, timeout_s: float | None = None) -> RunError:
    """A student's exception (or time-out) as the sandbox reports it: kind, message, the student's frames."""
    frames = "".join(_student_frames(exc).format())
    if isinstance(exc, CallTimedOut):
        message = f"{where} was still running after its {timeout_s:g} s limit and was stopped"
        text = f"Traceback (most recent call last):\n{frames}(stopped here after {timeout_s:g} s)\n"
        return RunError("timeout", where, message, text)
    described = runner.error_of(exc)
    only = "".join(traceback.format_exception_only(type(exc), exc))
    text = f"Traceback (most recent call last):\n{frames}{only}" if frames else only
    half = runner.TRACEBACK_CHARS // 2
    text = text if len(text) <= 2 * half else text[:half] + "\n...\n" + text[-half:]
    return RunError(described["kind"], where, described["message"], text)


# ------------------------------------------------------------------------------------- time limits


def alarm_available() -> bool:
    """True when calls can be interrupted by SIGALRM here (Unix, main thread)."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextmanager
def _alarm(seconds: float | None, handler: Callable[..., None]) -> Iterator[bool]:
    """Arm SIGALRM for `seconds` (then every REFIRE_S); restore the previous handler and timer on exit."""
    if seconds is None or seconds <= 0 or not alarm_available():
        yield False
        return
    previous_handler = signal.signal(signal.SIGALRM, handler)
    previous_delay, previous_interval = signal.setitimer(signal.ITIMER_REAL, seconds, REFIRE_S)
    started = time.monotonic()
    try:
        yield True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_delay > 0:  # someone else's timer was running: give it back what is left of it
            left = max(previous_delay - (time.monotonic() - started), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, left, previous_interval)


def run_limited(thunk: Callable[[], Any], seconds: float | None) -> tuple[Any, BaseException | None]:
    """thunk() -> (value, None), or (None, the exception it raised, CallTimedOut after `seconds`)."""
    armed = [False]

    def on_alarm(signum: int, frame: Any) -> None:
        if armed[0]:
            raise CallTimedOut()

    with _alarm(seconds, on_alarm):
        try:
            armed[0] = True
            value = thunk()
            armed[0] = False
            return value, None
        except BaseException as exc:  # student code may raise anything, SystemExit included
            armed[0] = False
            return None, exc


# ------------------------------------------------------------------------------------- the box


class KernelBox:
    """A Sandbox look-alike over a live namespace dict: the student's code runs in this process.

    Never raises on the student's behaviour (errors become CallResult.error) except KeyboardInterrupt,
    which is re-raised after the namespace is restored, so that a student can still stop a check.
    """

    def __init__(self, namespace: MutableMapping[str, Any], limits: Limits | None = None):
        self.ns = namespace
        self.limits = limits or Limits()
        self._run_log: RunLog | None = None
        self._deadline = time.monotonic() + self.limits.total_timeout_s
        self._network = runner.NetworkMap(runner.network_arrays(namespace))

    def protections(self) -> tuple[str, ...]:
        """What guards the student's kernel during the check (in-process: no isolation, by design)."""
        timing = ("time limits by SIGALRM (main thread)" if alarm_available()
                  else "no time limits (not on the main thread)")
        return ("in-process self-check: no isolation (the student's own kernel)", timing,
                "globals, arguments and random states restored after every check")

    def run_cells(self) -> RunLog:
        """The kernel already ran the cells: an empty log whose network is the current one (its initial values
        are the current values)."""
        if self._run_log is None:
            entries = []
            for entry in self._network.describe(self.ns, lambda a: np.array(a)):
                value = entry["value"]
                entries.append(NetworkEntry(entry["index"], tuple(tuple(p) for p in entry["paths"]),
                                            tuple(entry["texts"]), value, value))
            used = frozenset(runner.names_used_by_functions(self.ns))
            self._run_log = RunLog((), (), tuple(entries), 0.0, used, True)
        return self._run_log

    def namespace(self) -> dict[str, Symbol]:
        """The namespace's names (dunders excluded), described as the sandbox describes them."""
        return {str(name): symbol_from_info(str(name), runner.describe(value))
                for name, value in list(self.ns.items())
                if isinstance(name, str) and not name.startswith("__")}

    def get(self, names: Iterable[str]) -> dict[str, Any]:
        """Copies of the named globals that exist (value trees; Opaque where not encodable)."""
        return {n: value_tree(self.ns[n]) for n in names if n in self.ns}

    def call(self, function: str, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None, *,
             set_globals: dict[str, Any] | None = None, get_globals: Sequence[str] = (),
             set_params: dict[int, np.ndarray] | None = None, get_params: Sequence[int] = (),
             record: Sequence[str] = (), compact: bool = False, timeout_s: float | None = None,
             trace: bool = False, watch: tuple[str, int] | None = None) -> CallResult:
        """Set globals (copies) and the network's arrays (in place), call `function(*args, **kwargs)`, read
        back copies, restore the bindings (the arrays' contents are restored by `preserved_state`). `trace` and
        `watch` are accepted and ignored: in the student's own kernel nothing is traced or watched
        (CallResult.trace and .watched stay None)."""
        where = f"call {function}"
        started = time.monotonic()
        remaining = self._deadline - started
        if remaining <= 0:
            total = self.limits.total_timeout_s
            error = RunError("timeout", where, f"not run: the check used up its total time limit of {total:g} s")
            return CallResult(function, False, error=error, timed_out=True)
        args, kwargs = copy.deepcopy(list(args)), copy.deepcopy(dict(kwargs or {}))
        bindings = dict(self.ns)
        limit = min(timeout_s or self.limits.call_timeout_s, remaining)
        raw: list[dict[str, Any]] = []
        try:
            self.ns.update(copy.deepcopy(dict(set_globals or {})))
            for index, value in (set_params or {}).items():
                self._network.write(self.ns, int(index), np.array(value))
            args, kwargs = self._resolved(args), self._resolved(kwargs)
            target = self.ns.get(function)
            for name in record:
                if callable(self.ns.get(name)):
                    self.ns[name] = runner.Runner.recorder(_RECORDING, name, self.ns[name], raw, compact)

            def thunk() -> Any:
                if not callable(target):
                    raise NameError(f"name {function!r} is not defined as a function")
                return target(*args, **kwargs)

            value, exc, out, err = self._guarded(thunk, limit)
            for name in record:
                if name in bindings:
                    self.ns[name] = bindings[name]
            if isinstance(exc, KeyboardInterrupt):
                raise exc
            error = None if exc is None else run_error(exc, where, limit)
            params, rebound = {}, {}
            for index in get_params:
                after, paths = self._network.read(self.ns, int(index))
                params[int(index)], rebound[int(index)] = value_tree(after), tuple(paths)
            result = CallResult(
                function, error is None, value=None if error else value_tree(value),
                globals={n: value_tree(self.ns[n]) for n in get_globals if n in self.ns},
                stdout=out, stderr=err, error=error, timed_out=isinstance(exc, CallTimedOut),
                recorded=raw if compact else _recorded(raw), duration_s=time.monotonic() - started,
                params=params, rebound=rebound)
        finally:
            restore_bindings(self.ns, bindings)
        return result

    def _resolved(self, value: Any) -> Any:
        """Arguments with every Ref replaced by the student's own object (a global, a network array)."""
        if isinstance(value, Ref):
            if value.entry is None:
                return self.ns[value.global_name]
            now = self._network.current(self.ns, value.entry)
            return now[0] if now else self._network.entries[value.entry]["objects"][0]
        if isinstance(value, list):
            return [self._resolved(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self._resolved(v) for v in value)
        if isinstance(value, dict):
            return {k: self._resolved(v) for k, v in value.items()}
        return value

    def _guarded(self, thunk: Callable[[], Any], limit: float) -> tuple[Any, BaseException | None, str, str]:
        """Run student code with bounded, captured stdout/stderr and its own warning filters."""
        size = self.limits.output_kb * 1024
        out, err = runner.BoundedWriter(size), runner.BoundedWriter(size)
        with warnings.catch_warnings(), redirect_stdout(out), redirect_stderr(err), _no_input():
            value, exc = run_limited(thunk, limit)
        return value, exc, _text(out, "stdout"), _text(err, "stderr")



class _FingerprintRecorder:
    """What runner.Runner.recorder needs of its `self`: an exchange that encodes arguments (arrays as
    fingerprints); the recorder binds each call to the original's signature and returns None."""

    exchange = _MemoryExchange()


_RECORDING = _FingerprintRecorder()


def _recorded(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runner's recorded calls as the sandbox's parent reads them ({"function", "arguments"})."""
    return [{"function": str(r["function"]), "arguments": {str(k): _decoded(v) for k, v in r["arguments"].items()}}
            for r in raw]


@contextmanager
def _no_input() -> Iterator[None]:
    """input() raises EOFError during a call (as in the sandbox) instead of waiting for the student to type."""
    previous = builtins.input
    builtins.input = runner._no_input
    try:
        yield
    finally:
        builtins.input = previous


def _text(writer: runner.BoundedWriter, stream: str) -> str:
    text, dropped = writer.take()
    return text + (f"\n[... {dropped} more characters of {stream} were dropped (output limit)]" if dropped else "")


def caller_namespace(depth: int = 1) -> dict[str, Any]:
    """The globals of the first calling frame outside the grader package (a notebook's: its user namespace)."""
    frame = sys._getframe(depth + 1)
    while frame.f_back is not None and str(frame.f_globals.get("__name__", "")).split(".")[0] == "grader":
        frame = frame.f_back
    return frame.f_globals
