"""The parent side of the sandbox: one child per submission, cells run like a notebook, then calls.

Every request has a wall-clock limit enforced from outside the child; a time-out, exit or crash kills the
child's whole process tree, is recorded, and the next request starts a fresh child that replays the cells
which completed before. Student behaviour never raises here; `SandboxFailure` means the grader cannot work.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grader import lifetime
from grader.results import RunError
from grader.sandbox import bwrap, cgroups, isolation
from grader.sandbox.isolation import ChildUser, SandboxFailure
from grader.sandbox.values import ArrayReader, ArrayWriter, Opaque, ReadBudget
from grader.submission import Cell, Submission

PACKAGE_DIR = Path(__file__).resolve().parent
ERROR_KINDS = {"exception", "timeout", "memory", "output_limit", "exit", "crash"}
HELPER_PROCESSES = 3  # bwrap's monitor and init outside the child's uid, the inner bwrap's monitor
PROCESS_MB = 1024  # without a cgroup, each process gets at least this much address space (fewer processes)


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


class _ChildEnded(Exception):
    def __init__(self, kind: str, message: str, detail: str | None = None):
        super().__init__(message)
        self.kind, self.message, self.detail = kind, message, detail


class _TimedOut(Exception):
    pass


class _Child:
    """One running runner process: its pipes, and how to kill all it started."""

    def __init__(self, proc: subprocess.Popen, request_fd: int, answer_fd: int, max_line: int, log: int):
        self.proc, self.request_fd, self.answer_fd, self.max_line, self.log = (
            proc, request_fd, answer_fd, max_line, log)
        self.buffer = bytearray()
        self.init_pid: int | None = None
        self.line_bytes = 0  # the size of the last answer line read
        self.signal_in_status = False  # bwrap exits with 128 + n when the child died of signal n
        os.set_blocking(request_fd, False)
        os.set_blocking(answer_fd, False)

    def request(self, message: dict[str, Any], deadline: float) -> dict[str, Any]:
        self._write((json.dumps(message) + "\n").encode(), deadline)
        return self.read(message["id"], deadline)

    def _write(self, data: bytes, deadline: float) -> None:
        view = memoryview(data)
        while view:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([], [self.request_fd], [], remaining)[1]:
                raise _TimedOut()
            try:
                view = view[os.write(self.request_fd, view):]
            except BrokenPipeError:
                raise self.ended() from None

    def read(self, request_id: str, deadline: float) -> dict[str, Any]:
        """The answer line carrying `request_id`; other lines (a student writing to the pipe) are skipped.

        No line longer than `max_line` is ever held whole, and one is parsed only when it names this request
        and `answer_problem` finds it within bounds: what the child sends cannot grow the grader without bound.
        """
        tag = json.dumps(request_id).encode()
        while True:
            newline = self.buffer.find(b"\n")
            if newline > self.max_line or (newline < 0 and len(self.buffer) > self.max_line):
                self.kill()
                raise _ChildEnded("output_limit", f"an answer line exceeded the grader's limit of "
                                                  f"{_mb(self.max_line)} per line")
            if newline >= 0:
                line = bytes(self.buffer[:newline])
                del self.buffer[:newline + 1]
                if tag not in line:
                    continue
                problem = answer_problem(line)
                if problem is not None:
                    self.kill()
                    raise _ChildEnded("output_limit", problem)
                answer = _parse(line)
                if answer is not None and answer.get("id") == request_id:
                    self.line_bytes = len(line)
                    return answer
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.answer_fd], [], [], remaining)[0]:
                raise _TimedOut()
            chunk = os.read(self.answer_fd, min(1 << 20, self.max_line + 2 - len(self.buffer)))
            if not chunk:
                raise self.ended()
            self.buffer += chunk

    def ended(self) -> _ChildEnded:
        """Why the child went away (its answer pipe closed)."""
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.returncode
        self.kill()
        tail = _tail(self.log)
        if self.signal_in_status and code is not None and code - 128 in signal.valid_signals():
            code = 128 - code
        if code is not None and code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
            return _ChildEnded("crash", f"the process was killed by {name}", tail)
        return _ChildEnded("exit", f"the process exited with status {code} (os._exit() or a fatal error)",
                           tail)

    def kill(self) -> None:
        """SIGKILL the namespace's init (ends every process in it), then the child's process group."""
        if self.init_pid and self.proc.poll() is None:
            try:
                os.kill(self.init_pid, signal.SIGKILL)
                self.proc.wait(timeout=1)  # unshare/bwrap reaps init and exits: no zombie is left behind
            except (ProcessLookupError, PermissionError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def close(self) -> None:
        for fd in (self.request_fd, self.answer_fd):
            try:
                os.close(fd)
            except OSError:
                pass


# One answer line, bounded before json.loads: each container or item costs the parser at most ~100 bytes
# whatever the line holds, so a line within these bounds costs the grader well under 200 MB.
MAX_CONTAINERS = 250_000
MAX_ITEMS = 1_000_000


def answer_problem(line: bytes) -> str | None:
    """Why an answer line is refused before parsing (too many containers or items), or None."""
    containers = line.count(b"[") + line.count(b"{")
    items = line.count(b",") + line.count(b":")
    if containers > MAX_CONTAINERS or items > MAX_ITEMS:
        return (f"an answer holds {containers} lists/objects and {items} items, more than the grader reads "
                f"({MAX_CONTAINERS} and {MAX_ITEMS})")
    return None


def _mb(size: int) -> str:
    return f"{size / 2**20:g} MB"


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        answer = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return answer if isinstance(answer, dict) else None


def _tail(log_fd: int, size: int = 2000) -> str | None:
    """The end of the child's captured stdout/stderr."""
    try:
        end = os.fstat(log_fd).st_size
        text = os.pread(log_fd, size, max(0, end - size)).decode("utf-8", "replace").strip()
    except OSError:
        return None
    return text or None


def _output_log(base: Path) -> int:
    """Where the child's own stdout/stderr go: a memfd (in memory, gone with its last fd; RLIMIT_FSIZE bounds it)
    or, where there is none, a file in the sandbox directory."""
    if hasattr(os, "memfd_create"):
        return os.memfd_create("grader-child-output", os.MFD_CLOEXEC)
    return os.open(base / "child-output.log", os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)


class Sandbox:
    """Runs one submission in a child process; the grader's only way to touch student code.

    `hide` names extra paths the child must not see (reports dir, other submissions, the MNIST file); with
    bubblewrap the child sees nothing it is not given anyway, and the probe checks these too.
    `require_isolation` (default: where bubblewrap works or as root) makes a missing protection fatal;
    `engine` forces "bwrap" or "namespaces" (the root-only fallback) instead of the best one available.
    """

    def __init__(self, submission: Submission, data: SandboxData | None = None, limits: Limits | None = None,
                 *, hide: Sequence[str | Path] = (), require_isolation: bool | None = None,
                 child_user: ChildUser | None = None, engine: str | None = None):
        self.submission = submission
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
             trace: bool = False) -> CallResult:
        """Set globals, write `set_params` into the network's own arrays (entry -> value, in place), call
        `function(*args, **kwargs)` in the child (a `Ref` argument is the student's own object), and read back
        its value, the globals and the network entries asked for; `trace`: also the arrays the call computed in
        the submission's own frames (runner.StepTracer), as `CallResult.trace`."""
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
            stdout=_with_note(answer, "stdout"), stderr=_with_note(answer, "stderr"), error=error,
            recorded=recorded, duration_s=elapsed, params=params, rebound=rebound,
            trace=_traced(answer.get("trace"), reader) if trace else None)
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
            stdout, stderr = _with_note(answer, "stdout"), _with_note(answer, "stderr")
            snapshot = answer.get("snapshot")
            if self._initial_entries is None and isinstance(snapshot, list):
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

    def _layout(self) -> None:
        """base (root, 711): runner.py, shims/, data/, inbox/, passwd, group (grader's); outbox/, scratch/
        (the child's: with isolation, fresh size-limited tmpfs mounted over them in its own namespace)."""
        base = self._base
        assert base is not None
        os.chmod(base, 0o711)
        shutil.copy(PACKAGE_DIR / "runner.py", base / "runner.py")
        shutil.copytree(PACKAGE_DIR / "shims", base / "shims", ignore=shutil.ignore_patterns("__pycache__"))
        (base / "data").mkdir()
        if self.data is not None:
            for name, array in self.data.arrays().items():
                np.save(base / "data" / f"{name}.npy", np.asarray(array), allow_pickle=False)
            _npz_of(base / "data", self.data.arrays(), base / "data" / "mnist.npz")
        cache = _matplotlib_font_cache()
        if cache is not None:
            (base / "mplcache").mkdir()
            shutil.copy(cache, base / "mplcache" / cache.name)
        for name in ("inbox", "outbox", "scratch"):
            (base / name).mkdir()
        (base / "passwd").write_text(f"student:x:{self.user.uid}:{self.user.gid}::{bwrap.BOX}/scratch:/bin/false\n")
        (base / "group").write_text(f"student:x:{self.user.gid}:\n")
        (base / "probe-secret").write_text("only root may read this\n")
        os.chmod(base / "probe-secret", 0o600)
        _make_readable(base, skip={"outbox", "scratch", "probe-secret"})
        for name in ("outbox", "scratch"):
            os.chmod(base / name, 0o700)
            if self.isolated and isolation.is_root():
                os.chown(base / name, self.user.uid, self.user.gid)
        self._inbox_fd = os.open(base / "inbox", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        self._outbox_fd = os.open(base / "outbox", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)

    def _hidden(self) -> list[Path]:
        """Always hidden, the grader, the caller's paths, the submission's folder (its neighbours) and
        $MNIST_PATH; the child gets its cells through the pipe, so it needs none of them."""
        defaults = [Path(self.submission.path).resolve().parent]
        if os.environ.get("MNIST_PATH"):
            defaults.append(Path(os.environ["MNIST_PATH"]))
        kept = self._kept()
        defaults = [d for d in defaults if not any(k == d or d in k.parents for k in kept)]
        return [*map(Path, isolation.ALWAYS_HIDDEN), *isolation.grader_paths(), *defaults, *self.hide]

    def _kept(self) -> list[Path]:
        assert self._base is not None
        return [*isolation.python_paths(), self._base]

    def _process_limits(self) -> tuple[int, int]:
        """(address space MB per process, processes): with a cgroup the whole limit holds for all processes
        together; without one, processes x address space stays within memory_mb."""
        limits = self.limits
        if self._cgroup is not None:
            return limits.memory_mb, limits.nproc
        processes = max(1, min(limits.nproc, limits.memory_mb // PROCESS_MB))
        return limits.memory_mb // processes, processes

    def _command(self, argv_tail: list[str], config: dict[str, Any]) -> tuple[list[str], dict[str, str], int]:
        """(command line, environment, RLIMIT_NPROC) for the engine; fills the engine's paths into config."""
        base = self._base
        assert base is not None
        memory_mb, processes = self._process_limits()
        if self.engine == "bwrap":
            box = bwrap.BOX
            files = bwrap.BoxFiles(base / "runner.py", base / "shims", base / "data", base / "inbox",
                                   base / "mplcache" if (base / "mplcache").is_dir() else None,
                                   base / "probe-secret", base / "passwd", base / "group")
            sizes = bwrap.Sizes(self.limits.file_mb, self.limits.max_answer_mb)
            try:
                view = bwrap.view(files, sizes, self._hidden())
            except ValueError as exc:
                raise SandboxFailure(str(exc)) from None
            kept = [Path(dest) for dest, kind, _ in bwrap.mounts(view) if kind != "--dir"]
            config.update(inbox=str(box / "inbox"), outbox=str(box / "outbox"), scratch=str(box / "scratch"),
                          shims=str(box / "shims"), mpl_cache=str(box / "mplcache"),
                          probe_secret=str(box / "probe-secret"),
                          hidden=isolation.hidden_allowances(self._hidden(), kept),
                          writable=bwrap.writable_mounts(sizes), nproc=processes)
            argv = [sys.executable, "-I", str(box / "runner.py"), json.dumps(config), *argv_tail]
            as_root = isolation.is_root()
            command = bwrap.wrap(argv, view, (self.user.uid, self.user.gid) if as_root else None)
            # as root the child's uid is its own: RLIMIT_NPROC counts only its processes (+ the inner monitor)
            nproc = processes + 1 if as_root else isolation.processes_of_current_user() + processes + 8
            return command, isolation.child_env(box / "scratch", box / "data"), nproc
        config.update(inbox=str(base / "inbox"), outbox=str(base / "outbox"), scratch=str(base / "scratch"),
                      shims=str(base / "shims"), mpl_cache=str(base / "mplcache"),
                      probe_secret=str(base / "probe-secret"),
                      hidden=isolation.hidden_allowances(self._hidden(), self._kept()) if self.isolated else {})
        argv = [sys.executable, "-I", str(base / "runner.py"), json.dumps(config), *argv_tail]
        env = isolation.child_env(base / "scratch", base / "data")
        if self.engine == "namespaces":
            script = isolation.mount_script(self._hidden(), self._kept(), self.limits.file_mb, base / "scratch",
                                            self.user, base / "outbox", self.limits.max_answer_mb)
            return isolation.isolated_command(argv, script, self.user), env, processes
        return argv, env, isolation.processes_of_current_user() + self.limits.nproc

    def _spawn(self) -> _Child:
        base = self._base
        assert base is not None
        request_r, request_w = os.pipe()
        answer_r, answer_w = os.pipe()
        config = {"request_fd": request_r, "answer_fd": answer_w, "output_chars": self.limits.output_kb * 1024,
                  "max_array_bytes": min(self.limits.max_array_mb, self.limits.file_mb) * 2**20,
                  "argv0": self.submission.path.name, "snapshot": self._initial_entries is None,
                  "grader_pid": os.getpid()}
        command, env, nproc = self._command([], config)
        memory_mb, _ = self._process_limits()
        log = self._log_fd
        assert log is not None
        joins: list[int] = []
        try:
            joins += [os.open(p, os.O_WRONLY) for p in self._cgroup.procs_files()] if self._cgroup else []
            proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=(request_r, answer_w),
                env=env, cwd=base, start_new_session=True,
                preexec_fn=lifetime.die_with_parent(isolation.rlimit_setter(
                    memory_mb, self.limits.file_mb, nproc, strict=self.isolated, join=joins)))
        except (OSError, subprocess.SubprocessError) as exc:  # e.g. the cgroup refused the child
            for fd in (request_w, answer_r):
                os.close(fd)
            raise SandboxFailure(f"the sandbox child could not be started: {exc}") from None
        finally:
            for fd in (request_r, answer_w, *joins):
                os.close(fd)
        child = _Child(proc, request_w, answer_r, self.limits.max_line_mb * 2**20, log)
        child.signal_in_status = self.engine == "bwrap"
        try:
            hello = child.read("hello", time.monotonic() + self.limits.start_timeout_s)
        except (_TimedOut, _ChildEnded) as exc:
            child.kill()
            child.close()
            detail = getattr(exc, "detail", None) or _tail(log) or "no output"
            raise SandboxFailure(f"the sandbox child did not start: {detail}") from None
        if self.isolated:
            child.init_pid = _first_child_pid(proc.pid)
            probe = hello.get("probe") or {}
            problems = self._probe_problems(probe, config) + self._parent_problems(child, probe, config)
            if problems or child.init_pid is None:
                child.kill()
                child.close()
                problems = problems or ["cannot find the namespace's init process"]
                raise SandboxFailure("the sandbox's isolation does not hold: " + "; ".join(problems))
        self._protections = self._describe_protections()
        return child

    def _parent_problems(self, child: _Child, probe: dict[str, Any], config: dict[str, Any]) -> list[str]:
        """What the grader checks from outside: the child is in its cgroup; its outbox is the tmpfs it reported
        (opened here through the child's root, so the grader reads the very tmpfs the child writes)."""
        problems = []
        if self._cgroup is not None and child.init_pid not in self._cgroup.members():
            problems.append("the child is not in its cgroup (whole-sandbox memory and process limits)")
        try:
            fd = os.open(f"/proc/{child.init_pid}/root{config['outbox']}",
                         os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError as exc:
            return [*problems, f"cannot open the child's outbox from outside ({exc.strerror})"]
        info = os.fstat(fd)
        if [info.st_dev, info.st_ino] != probe.get("outbox_id"):
            os.close(fd)
            return [*problems, "the outbox the grader opened is not the one the child writes"]
        if self._outbox_fd is not None:
            os.close(self._outbox_fd)
        self._outbox_fd = fd
        return problems

    def _probe_problems(self, probe: dict[str, Any], config: dict[str, Any]) -> list[str]:
        problems = []
        if (probe.get("uid"), probe.get("gid")) != (self.user.uid, self.user.gid) or probe.get("groups"):
            problems.append(f"the child runs as uid {probe.get('uid')} gid {probe.get('gid')} groups "
                            f"{probe.get('groups')}, expected {self.user.uid}/{self.user.gid} and no groups")
        if isolation.is_root() and probe.get("secret_readable") is not False:
            problems.append("the child can read a root-only file")
        capabilities = {k: probe.get(k) for k in ("capprm", "capeff", "capinh", "capamb")}
        if set(capabilities.values()) != {0} or probe.get("no_new_privs") is not True:
            problems.append(f"the child has capabilities or may gain privileges ({capabilities}, no_new_privs "
                            f"{probe.get('no_new_privs')})")
        fresh_pids = probe.get("pid") == 1 if self.engine == "namespaces" else len(probe.get("pids") or "?" * 9) <= 4
        if not fresh_pids or probe.get("grader_visible") is not False:
            problems.append("the child is not in a fresh PID namespace (it can see the grader)")
        if probe.get("network_route") is not False or set(probe.get("interfaces") or ["?"]) - {"lo"}:
            problems.append(f"the child has a network (interfaces {probe.get('interfaces')})")
        if probe.get("hidden_visible"):
            problems.append(f"the child can see hidden paths: {probe.get('hidden_visible')}")
        if self.engine == "bwrap":
            problems += _view_problems(probe, config)
        return problems

    def _describe_protections(self) -> tuple[str, ...]:
        limits = self.limits
        memory_mb, processes = self._process_limits()
        described = isolation.protections(limits.memory_mb, limits.file_mb, limits.nproc, self.isolated,
                                          engine=self.engine, cgroup=self._cgroup_note if self._cgroup else None,
                                          per_process_mb=memory_mb, processes=processes,
                                          outbox_mb=limits.max_answer_mb, line_mb=limits.max_line_mb)
        checked = self._cgroup is not None  # the grader saw the child in its cgroup; the rlimits are inherited
        return tuple(p + (" (verified)" if self.isolated and (i > 0 or checked) and not p.startswith("NOT") else "")
                     for i, p in enumerate(described))


def _view_problems(probe: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """Deny by default, as the child sees it: only the expected top-level names, every writable mount one of
    the size-limited tmpfs (or /proc, /dev's nodes), no user namespaces, the process limit in force."""
    problems = []
    allowed_top = {Path(p).parts[1] for p in config["writable"]} | {
        "usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc", "proc", "dev", "box",
        *(Path(p).parts[1] for p in isolation.python_paths() if len(Path(p).parts) > 1)}
    extra = sorted(set(probe.get("root_entries") or ["?"]) - allowed_top)
    if extra or not probe.get("root_entries"):
        problems.append(f"the child's / holds more than it was given: {extra}")
    if set(probe.get("etc_entries") or ["?"]) - {"ld.so.cache", "passwd", "group"}:
        problems.append(f"the child's /etc holds {probe.get('etc_entries')}")
    writable = {m[0]: m for m in probe.get("mounts") or [] if isinstance(m, list) and len(m) == 4}
    for point, size in config["writable"].items():
        found = writable.pop(point, None)
        if found is None or found[1] != "tmpfs" or f"size={size // 1024}k" not in found[3]:
            problems.append(f"{point} is not a fresh tmpfs of {size // 2**20} MB in the child ({found})")
    for point, (_, fstype, _, _) in writable.items():
        if not (fstype in ("proc", "devpts") or (point.startswith("/dev/") and fstype == "devtmpfs")):
            problems.append(f"the child has a writable mount at {point} ({fstype})")
    if probe.get("userns_blocked") is not True:
        problems.append("the child can create user namespaces")
    if probe.get("nproc") != config.get("nproc"):
        problems.append(f"the child's process limit is {probe.get('nproc')}, expected {config.get('nproc')}")
    return problems


def _first_child_pid(pid: int) -> int | None:
    """The process `unshare --fork` started (the PID namespace's init), seen from the grader."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


def _npz_of(folder: Path, arrays: dict[str, np.ndarray], target: Path) -> None:
    """The .npy files already in `folder`, stored (not compressed) in one .npz: what np.savez would write."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED, allowZip64=True) as npz:
        for name in arrays:
            npz.write(folder / f"{name}.npy", f"{name}.npy")


def _make_readable(base: Path, skip: set[str]) -> None:
    for root, dirs, files in os.walk(base):
        if Path(root) == base:
            dirs[:] = [d for d in dirs if d not in skip]
            files = [f for f in files if f not in skip]
        for d in dirs:
            os.chmod(Path(root) / d, 0o755)
        for f in files:
            os.chmod(Path(root) / f, 0o644)


def _matplotlib_font_cache() -> Path | None:
    """The parent's matplotlib font list (copied to children so they do not rebuild it), if any."""
    global _FONT_CACHE
    if _FONT_CACHE is False:
        try:
            import matplotlib
            import matplotlib.font_manager  # noqa: F401  (builds the cache once, in the trusted parent)

            found = sorted(Path(matplotlib.get_cachedir()).glob("fontlist-*.json"))
            _FONT_CACHE = found[-1] if found else None
        except Exception:  # no matplotlib in the grader: children build their own
            _FONT_CACHE = None
    return _FONT_CACHE  # type: ignore[return-value]


_FONT_CACHE: Path | None | bool = False


def _student_error(error: Any, where: str) -> RunError | None:
    if not isinstance(error, dict):
        return None
    kind = error.get("kind") if error.get("kind") in ERROR_KINDS else "exception"
    traceback = error.get("traceback")
    return RunError(kind, where, str(error.get("message", ""))[:2000],
                    str(traceback) if traceback is not None else None)


def _with_note(answer: dict[str, Any], stream: str) -> str:
    text = answer.get(stream)
    text = text if isinstance(text, str) else ""
    dropped = answer.get(f"{stream}_dropped")
    if isinstance(dropped, int) and dropped > 0:
        text += f"\n[... {dropped} more characters of {stream} were dropped (output limit)]"
    return text


def _symbol(name: str, info: dict[str, Any]) -> Symbol:
    signature = info.get("signature")
    params = None
    if isinstance(signature, list):
        params = tuple(Param(str(p.get("name")), str(p.get("kind")), bool(p.get("has_default")),
                             None if p.get("default_repr") is None else str(p.get("default_repr")))
                       for p in signature if isinstance(p, dict))
    shape = info.get("shape")
    return Symbol(name, str(info.get("kind", "object")), str(info.get("type_name", "?")), params,
                  tuple(int(n) for n in shape) if isinstance(shape, list) else None,
                  str(info["dtype"]) if info.get("dtype") is not None else None,
                  int(info["length"]) if isinstance(info.get("length"), int) else None)


__all__ = ["CallResult", "CellOutcome", "Limits", "Opaque", "Param", "RunLog", "Sandbox", "SandboxData",
           "SandboxFailure", "Symbol"]


def _traced(node: Any, reader: ArrayReader) -> tuple[dict[str, Any], ...]:
    """The child's trace records with a readable numeric array each; anything malformed is dropped."""
    records = node.get("records") if isinstance(node, dict) else None
    traced = []
    for raw in records if isinstance(records, list) else []:
        if not isinstance(raw, dict) or not isinstance(raw.get("line"), int):
            continue
        value = reader.decode(raw.get("value"))
        if isinstance(value, np.ndarray):
            traced.append({"name": str(raw.get("name"))[:100], "function": str(raw.get("function"))[:100],
                           "line": raw["line"], "file": str(raw.get("file"))[:200],
                           "source": str(raw.get("source"))[:300], "value": value})
    return tuple(traced)
