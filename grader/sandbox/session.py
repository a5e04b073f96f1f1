"""The parent side of the sandbox: one child per submission, cells run like a notebook, then calls.

Every request has a wall-clock limit enforced from outside the child; a time-out, exit or crash kills the
child's whole process tree, is recorded, and the next request starts a fresh child that replays the cells
which completed before. Student behaviour never raises here; `SandboxFailure` means the grader cannot work.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from grader import lifetime
from grader.results import RunError
from grader.sandbox import cgroups, isolation
from grader.sandbox.child import (
    _Child,
    _ChildEnded,
    _output_log,
    _student_error,
    _symbol,
    _TimedOut,
    _traced,
    _watched,
    _with_note,
)
from grader.sandbox.isolation import ChildUser, SandboxFailure
from grader.sandbox.records import (
    CallResult,
    CellOutcome,
    Limits,
    NetworkEntry,
    RunLog,
    SandboxData,
    Symbol,
)
from grader.sandbox.start import HELPER_PROCESSES, BoxStart
from grader.sandbox.values import ArrayReader, ArrayWriter, ReadBudget
from grader.submission import Cell, Submission


class Sandbox(BoxStart):
    """Runs one submission in a child process; the grader's only way to touch student code.

    `hide` names extra paths the child must not see (reports dir, other submissions, the MNIST file); with
    bubblewrap the child sees nothing it is not given anyway, and the probe checks these too.
    `require_isolation` (default: where bubblewrap works or as root) makes a missing protection fatal;
    `engine` forces "bwrap" or "namespaces" (the root-only fallback) instead of the best one available.
    `while_starting()` runs once in the grader while the first child boots (e.g. imports the checks need).
    """

    def __init__(self, submission: Submission, data: SandboxData | None = None, limits: Limits | None = None,
                 *, hide: Sequence[str | Path] = (), require_isolation: bool | None = None,
                 child_user: ChildUser | None = None, engine: str | None = None,
                 while_starting: Callable[[], None] | None = None):
        self.submission = submission
        self.while_starting = while_starting  # called once, in the parent, while the first child boots
        self.data = data
        self.limits = limits or Limits()
        self.engine = isolation.choose_engine(require_isolation, engine)
        self.isolated = self.engine != "none"
        self.user = child_user or (isolation.default_child_user() if isolation.is_root()
                                   else ChildUser(os.getuid(), os.getgid()))
        self.hide = [Path(p) for p in hide]
        self._child: _Child | None = None
        self._base: Path | None = None
        self._completed: list[Cell] = []
        self._replay_errors: list[RunError] = []
        self._initial_entries: dict[int, Any] | None = None  # the network's arrays when first complete
        self._network_mapped = False  # the child's network map was completed after the run (redo on restart)
        self._run_log: RunLog | None = None
        self._deadline = float("inf")
        self._requests = 0
        self._protections: tuple[str, ...] = ()
        self._inbox_fd: int | None = None
        self._outbox_fd: int | None = None
        self._cgroup: cgroups.Cgroup | None = None
        self._cgroup_note = "no cgroup (not isolated)"
        self._budget = ReadBudget(self.limits.max_answer_mb * 2**20)
        self._log_fd: int | None = None

    # ----- lifecycle -----

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Lay out the sandbox directory and start the child (verifying its protections)."""
        self._deadline = time.monotonic() + self.limits.total_timeout_s
        self._base = Path(tempfile.mkdtemp(prefix=lifetime.box_prefix()))  # names its owner: see lifetime
        try:
            self._layout()
            self._log_fd = _output_log(self._base)
            if self.isolated:
                self._cgroup, self._cgroup_note = cgroups.Cgroup.make(
                    self.limits.memory_mb * 2**20, self.limits.nproc + HELPER_PROCESSES)
            self._child = self._spawn()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """End the child (politely, then by SIGKILL) and delete the sandbox directory."""
        if self._child is not None:
            try:
                self._child.request({"op": "exit", "id": self._next_id()}, time.monotonic() + 2)
            except (_TimedOut, _ChildEnded, OSError):
                pass
            self._child.kill()
            self._child.close()
            self._child = None
        for fd_name in ("_inbox_fd", "_outbox_fd", "_log_fd"):
            fd = getattr(self, fd_name, None)
            if fd is not None:
                os.close(fd)
                setattr(self, fd_name, None)
        if self._cgroup is not None:
            self._cgroup.remove()
            self._cgroup = None
        if self._base is not None:
            shutil.rmtree(self._base, ignore_errors=True)
            self._base = None

    def protections(self) -> tuple[str, ...]:
        """The protections in force for this submission (verified when the child started, as root)."""
        return self._protections

    # ----- the grader's requests -----

    def run_cells(self) -> RunLog:
        """Run every cell in order, continuing past errors; the second call returns the same log."""
        if self._run_log is not None:
            return self._run_log
        started = time.monotonic()
        outcomes = [self._run_cell(cell) for cell in self.submission.cells]
        network, used = self._map_network()
        errors = tuple(o.error for o in outcomes if o.error is not None) + tuple(self._replay_errors)
        self._run_log = RunLog(tuple(outcomes), errors, network, time.monotonic() - started, used,
                               self._initial_entries is not None)
        return self._run_log

    def _map_network(self) -> tuple[tuple[NetworkEntry, ...], frozenset[str]]:
        """The network's arrays after the run, merged with those recorded at the initialisation."""
        answer, _, _ = self._request({"op": "network"}, self.limits.call_timeout_s, "finding the network")
        self._network_mapped = answer is not None
        if answer is None:
            return (), frozenset()
        reader = self._reader()
        initial = self._initial_entries or {}
        entries = []
        for raw in answer.get("entries") or []:
            if not isinstance(raw, dict) or not isinstance(raw.get("index"), int):
                continue
            paths = tuple(tuple(p) for p in raw.get("paths") or [] if isinstance(p, list))
            texts = tuple(str(t) for t in raw.get("texts") or [])
            entries.append(NetworkEntry(raw["index"], paths, texts, reader.decode(raw.get("value")),
                                        initial.get(raw["index"])))
        self._sweep_outbox()
        used = frozenset(str(n) for n in answer.get("used_names") or [] if isinstance(n, str))
        return tuple(entries), used

    def namespace(self) -> dict[str, Symbol]:
        """The student's top-level names (dunders excluded), described."""
        answer, _, _ = self._request({"op": "namespace"}, self.limits.call_timeout_s, "namespace")
        if answer is None or not isinstance(answer.get("symbols"), dict):
            return {}
        return {str(name): _symbol(str(name), info) for name, info in answer["symbols"].items()
                if isinstance(info, dict)}

    def get(self, names: Iterable[str]) -> dict[str, Any]:
        """Current values of the named globals that exist (value trees; Opaque where not encodable)."""
        answer, _, _ = self._request({"op": "get", "names": list(names)}, self.limits.call_timeout_s, "get")
        if answer is None:
            return {}
        return self._decode_mapping(answer.get("values"))

    def call(self, function: str, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None, *,
             set_globals: dict[str, Any] | None = None, get_globals: Sequence[str] = (),
             set_params: dict[int, np.ndarray] | None = None, get_params: Sequence[int] = (),
             record: Sequence[str] = (), compact: bool = False, timeout_s: float | None = None,
             trace: bool = False, watch: tuple[Any, ...] | None = None) -> CallResult:
        """Set globals, write `set_params` into the network's own arrays (entry -> value, in place), call
        `function(*args, **kwargs)` in the child (a `Ref` argument is the student's own object), and read back
        its value, the globals and the network entries asked for; `trace`: also the arrays the call computed in
        the submission's own frames (runner.StepTracer), as `CallResult.trace`; `watch` (name, k[, sample
        parameter]): the `get_params` entries before and after the k-th call (from 0) of the global `name`, its
        other arguments and its return, as `CallResult.watched`."""
        self._require_started()
        where = f"call {function}"
        started = time.monotonic()
        writer = ArrayWriter(self._inbox_fd, prefix=f"r{self._requests + 1}_")
        message = {"op": "call", "function": function, "args": writer.encode(list(args)),
                   "kwargs": writer.encode(dict(kwargs or {})),
                   "set_globals": writer.encode(dict(set_globals or {})),
                   "set_params": writer.encode({str(i): v for i, v in (set_params or {}).items()}),
                   "get_params": [int(i) for i in get_params],
                   "get_globals": list(get_globals), "record": list(record), "compact": compact, "trace": trace}
        if watch is not None:
            message["watch"] = {"function": str(watch[0]), "call": int(watch[1]),
                                **({"sample": str(watch[2])} if len(watch) > 2 and watch[2] else {})}
        try:
            answer, error, timed_out = self._request(message, timeout_s or self.limits.call_timeout_s, where)
        finally:
            writer.remove_written()
        elapsed = time.monotonic() - started
        if answer is None:
            return CallResult(function, False, error=error, timed_out=timed_out, duration_s=elapsed)
        error = _student_error(answer.get("error"), where)
        reader = self._reader()
        if compact:  # [sum, sum of squares, first non-zero] per step, or None
            recorded = [r if isinstance(r, list) and len(r) == 3 else None for r in answer.get("recorded") or []]
        else:
            recorded = [{"function": str(r.get("function")),
                         "arguments": self._decode_mapping(r.get("arguments"))}
                        for r in answer.get("recorded") or [] if isinstance(r, dict)]
        params, rebound = {}, {}
        raw_params = answer.get("params") if isinstance(answer.get("params"), dict) else {}
        for key, item in raw_params.items():
            if str(key).isdigit() and isinstance(item, dict) and int(key) in get_params:
                params[int(key)] = reader.decode(item.get("value"))
                rebound[int(key)] = tuple(str(t) for t in item.get("rebound") or [])
        result = CallResult(
            function, error is None, value=reader.decode(answer.get("value")),
            globals=self._decode_mapping(answer.get("globals")),
            stdout=_with_note(answer, "stdout", self._output_chars),
            stderr=_with_note(answer, "stderr", self._output_chars), error=error,
            recorded=recorded, duration_s=elapsed, params=params, rebound=rebound,
            trace=_traced(answer.get("trace"), reader) if trace else None,
            watched=_watched(answer.get("watched"), reader, get_params) if watch is not None else None)
        self._sweep_outbox()
        if self._budget.refused:
            return CallResult(function, False, error=self._over_budget(where), stdout=result.stdout,
                              stderr=result.stderr, duration_s=elapsed)
        return result

    # ----- internals -----

    def _run_cell(self, cell: Cell) -> CellOutcome:
        started = time.monotonic()
        answer, error, _ = self._request(self._cell_message(cell), self.limits.cell_timeout_s, cell.label)
        stdout = stderr = ""
        if answer is not None:
            self._completed.append(cell)
            error = _student_error(answer.get("error"), cell.label)
            stdout, stderr = _with_note(answer, "stdout", self._output_chars), _with_note(answer, "stderr",
                                                                                        self._output_chars)
            snapshot = answer.get("snapshot")
            # a later snapshot replaces the first when the child saw zero weights drawn (runner: filled weights)
            if (self._initial_entries is None or answer.get("snapshot_replaces") is True) and isinstance(snapshot,
                                                                                                         list):
                reader = self._reader()
                self._initial_entries = {raw["index"]: reader.decode(raw.get("value")) for raw in snapshot
                                         if isinstance(raw, dict) and isinstance(raw.get("index"), int)}
            self._sweep_outbox()
        status = "ok" if error is None else error.kind
        return CellOutcome(cell.index, cell.label, status, stdout, stderr, error, time.monotonic() - started)

    def _cell_message(self, cell: Cell) -> dict[str, Any]:
        return {"op": "run_cell", "index": cell.index, "source": cell.source, "first_line": cell.first_line,
                "filename": self.submission.filename_for(cell)}

    def _request(self, message: dict[str, Any], timeout_s: float, where: str
                 ) -> tuple[dict[str, Any] | None, RunError | None, bool]:
        """Send one request (restarting the child first if needed) -> (answer, error, timed_out)."""
        self._require_started()
        if self._child is None:
            self._restart()
        if self._child is None or self._remaining() <= 0:
            total = self.limits.total_timeout_s
            return None, RunError("timeout", where, f"not run: the submission used up its total time limit "
                                                    f"of {total:g} s"), True
        return self._exchange(message, timeout_s, where)

    def _exchange(self, message: dict[str, Any], timeout_s: float, where: str
                  ) -> tuple[dict[str, Any] | None, RunError | None, bool]:
        assert self._child is not None
        budget = min(timeout_s, self._remaining())
        message = {**message, "id": self._next_id()}
        try:
            answer = self._child.request(message, time.monotonic() + budget)
        except _TimedOut:
            self._discard_child()
            which = f"its {timeout_s:g} s limit" if budget >= timeout_s else (
                f"the submission's total limit of {self.limits.total_timeout_s:g} s")
            message = (f"{where} was still running after {which} and was stopped "
                       "(it and every process it started were killed)")
            return None, RunError("timeout", where, message), True
        except _ChildEnded as ended:
            self._discard_child()
            return None, RunError(ended.kind, where, f"{where}: {ended.message}", ended.detail), False
        if "protocol_error" in answer:
            full = self._outbox_full()
            self._discard_child()
            if full:
                return None, self._over_budget(where, "the answer folder is full"), False
            message = (f"{where}: the sandbox's runner failed, probably because the code changed its "
                       f"environment: {answer['protocol_error']}")
            return None, RunError("crash", where, message), False
        self._budget = ReadBudget(max(0, self.limits.max_answer_mb * 2**20 - self._child.line_bytes))
        return answer, None, False

    def _over_budget(self, where: str, why: str = "") -> RunError:
        return RunError("output_limit", where, f"{where}: the values sent back exceed the grader's limit of "
                                               f"{self.limits.max_answer_mb} MB per request" + (f" ({why})" if why
                                                                                                else ""))

    def _outbox_full(self) -> bool:
        """True when the child's answer folder (a tmpfs of max_answer_mb) has under 1 MB left."""
        try:
            info = os.fstatvfs(self._outbox_fd) if self._outbox_fd is not None else None
        except OSError:
            return False
        return info is not None and info.f_bavail * info.f_frsize < 2**20 < info.f_blocks * info.f_frsize

    def _restart(self) -> None:
        """Start a fresh child and replay the cells that completed; drop a cell whose replay fails."""
        while self._child is None and self._remaining() > 0:
            self._child = self._spawn()
            for cell in list(self._completed):
                answer, error, _ = self._exchange(self._cell_message(cell), self.limits.cell_timeout_s,
                                                  f"replay of {cell.label}")
                self._sweep_outbox()
                if answer is None:
                    self._completed.remove(cell)
                    if error is not None:
                        message = f"{error.message}; after a restart this cell was skipped"
                        replay_error = RunError(error.kind, error.where, message, error.traceback)
                        self._replay_errors.append(replay_error)
                    break
            if self._child is not None and self._network_mapped:  # the same entries as before the restart
                self._exchange({"op": "network"}, self.limits.call_timeout_s, "finding the network")
                self._sweep_outbox()

    def _require_started(self) -> None:
        if self._base is None or self._inbox_fd is None:
            raise SandboxFailure("the sandbox is not started (use it as a context manager)")

    def _discard_child(self) -> None:
        if self._child is not None:
            self._child.kill()
            self._child.close()
            self._child = None

    def _remaining(self) -> float:
        return self._deadline - time.monotonic()

    def _next_id(self) -> str:
        self._requests += 1
        return f"r{self._requests}-{os.urandom(4).hex()}"

    @property
    def _output_chars(self) -> int:
        """The most of a call's stdout (or stderr) the grader keeps: the child's own limit, held here too."""
        return self.limits.output_kb * 1024

    def _reader(self) -> ArrayReader:
        return ArrayReader(self._outbox_fd, self.limits.max_array_mb * 2**20, budget=self._budget)

    def _decode_mapping(self, node: Any) -> dict[str, Any]:
        if not isinstance(node, dict):
            return {}
        reader = self._reader()
        items = node.get("items") if node.get("$") == "dict" else list(node.items())
        return {str(k): reader.decode(v) for k, v in items or [] if isinstance(k, str)}

    def _sweep_outbox(self) -> None:
        """Delete whatever the child left in the outbox (files the grader did not ask for), one entry at a time:
        a flood of names never becomes a list in the grader."""
        if self._outbox_fd is None:
            return
        with os.scandir(self._outbox_fd) as entries:
            for entry in entries:
                try:
                    os.unlink(entry.name, dir_fd=self._outbox_fd)
                except OSError:
                    pass

    # ----- starting the child -----
