"""One child process as the parent talks to it: requests out, bounded answer lines in, its end and its kill;
and reading what its answers say (errors, output notes, symbols, traced arrays)."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from grader.results import RunError
from grader.sandbox.records import Param, Symbol
from grader.sandbox.runner import TRACEBACK_CHARS
from grader.sandbox.values import ArrayReader

ERROR_KINDS = {"exception", "timeout", "memory", "output_limit", "exit", "crash"}


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


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        answer = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(answer, dict):
        return None
    return _without_lone_surrogates(answer) if _SURROGATE_ESCAPE.search(line) else answer


def _without_lone_surrogates(tree: dict[str, Any]) -> dict[str, Any]:
    """The answer with every lone surrogate in its strings (and keys) replaced by U+FFFD: JSON can carry one
    (`"\\ud800"`), UTF-8 cannot, and a report holding one could not be written (a 'grader failure' in place of
    the student's grade). Iterative: the tree may be as deep as json.loads allows."""
    def clean(value: Any) -> Any:
        return _SURROGATE.sub("\ufffd", value) if isinstance(value, str) else value

    root = {"": tree}
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            items = [(clean(k), v) for k, v in node.items()]
            node.clear()
            node.update((k, clean(v)) for k, v in items)
            stack.extend(v for v in node.values() if isinstance(v, (dict, list)))
        else:
            node[:] = [clean(v) for v in node]
            stack.extend(v for v in node if isinstance(v, (dict, list)))
    return root[""]


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


def _bounded(text: str, limit: int) -> tuple[str, int]:
    """(text cut to its first and last limit/2 characters, how many were cut): the child's own bounds live in
    the student's process, which can lift them."""
    if len(text) <= limit:
        return text, 0
    half = limit // 2
    return text[:half] + "\n...\n" + text[len(text) - half:], len(text) - 2 * half


def _student_error(error: Any, where: str) -> RunError | None:
    if not isinstance(error, dict):
        return None
    kind = error.get("kind") if error.get("kind") in ERROR_KINDS else "exception"
    traceback = error.get("traceback")
    return RunError(kind, where, str(error.get("message", ""))[:2000],
                    _bounded(str(traceback), TRACEBACK_CHARS)[0] if traceback is not None else None)


def _with_note(answer: dict[str, Any], stream: str, limit: int) -> str:
    """The child's stdout or stderr, at most `limit` characters (Limits.output_kb), saying what was dropped."""
    text = answer.get(stream)
    text, cut = _bounded(text if isinstance(text, str) else "", limit)
    dropped = answer.get(f"{stream}_dropped")
    dropped = cut + (dropped if isinstance(dropped, int) and dropped > 0 else 0)
    if dropped:
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


def _watched(node: Any, reader: ArrayReader, entries: Sequence[int]) -> dict[str, Any] | None:
    """The watched step as {"key": [sum, sum of squares, first non-zero] | None, "before": {entry: array},
    "after": {entry: array}, "arguments": {name: value}, "value": what the step returned}: only the entries asked
    for and numeric arrays; None if it is malformed."""
    if not isinstance(node, dict):
        return None
    key = reader.decode(node.get("key"))
    key = key if isinstance(key, list) and len(key) == 3 and all(isinstance(k, (int, float)) for k in key) else None
    states = {}
    for when in ("before", "after"):
        arrays = reader.decode(node.get(when))
        if not isinstance(arrays, dict):
            return None
        states[when] = {int(k): v for k, v in arrays.items()
                        if str(k).isdigit() and int(k) in entries and isinstance(v, np.ndarray)}
    arguments = reader.decode(node.get("arguments"))
    return {"key": key, **states, "arguments": arguments if isinstance(arguments, dict) else {},
            "value": reader.decode(node.get("value"))}
