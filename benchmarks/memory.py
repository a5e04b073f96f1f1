"""Peak resident memory of a process tree, by role, sampled with psutil while it runs.

The tree is rooted at a small launcher (see processes.py) whose one child is the measured command.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import psutil

MIB = 1024 * 1024
STUDENT_MARK = "runner.py"  # the sandbox child that runs student code: python -I .../runner.py


@dataclass(frozen=True)
class ProcessPeak:
    """The largest RSS seen for one process, and what it was."""

    pid: int
    role: str  # "grader" (the command itself), "worker" (grader-side python), "student" (sandbox), "helper"
    name: str
    peak_mib: float


def role_of(proc: psutil.Process, command_pid: int) -> str:
    """Classify a process of the measured command's tree by what it runs."""
    if proc.pid == command_pid:
        return "grader"
    argv = proc.cmdline()
    if any(arg.endswith(STUDENT_MARK) for arg in argv):
        return "student"
    # a console script's process is named after the script ("grade"): look at the interpreter instead
    return "worker" if argv and os.path.basename(argv[0]).startswith("python") else "helper"


class TreeSampler:
    """Samples the RSS of every descendant of a launcher every `interval` seconds until stopped."""

    def __init__(self, launcher_pid: int, interval: float = 0.05):
        self.launcher = psutil.Process(launcher_pid)
        self.interval = interval
        self.samples = 0
        self.peak_total_mib = 0.0
        self._command_pid: int | None = None
        self._peaks: dict[int, ProcessPeak] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def _sample(self) -> None:
        try:
            procs = self.launcher.children(recursive=True)
        except psutil.Error:
            return
        if self._command_pid is None and procs:
            self._command_pid = procs[0].pid  # the launcher's only child, listed first
        total = 0.0
        for proc in procs:
            try:
                rss = proc.memory_info().rss / MIB
                known = self._peaks.get(proc.pid)
                if known is None or known.role == "helper":  # sh/setpriv may since have exec'd python
                    known = ProcessPeak(proc.pid, role_of(proc, self._command_pid or -1), proc.name(),
                                        0.0 if known is None else known.peak_mib)
            except psutil.Error:  # it ended, or we may not look at it
                continue
            total += rss
            if rss > known.peak_mib:
                known = ProcessPeak(known.pid, known.role, known.name, rss)
            self._peaks[proc.pid] = known
        self.samples += 1
        self.peak_total_mib = max(self.peak_total_mib, total)

    def peaks(self) -> list[ProcessPeak]:
        return sorted(self._peaks.values(), key=lambda p: p.pid)


def peak_by_role(peaks: list[ProcessPeak]) -> dict[str, dict[str, float]]:
    """{role: {"processes": n, "max_mib": largest peak, "median_mib": median peak}}."""
    out: dict[str, dict[str, float]] = {}
    for role in sorted({p.role for p in peaks}):
        values = sorted(p.peak_mib for p in peaks if p.role == role)
        out[role] = {"processes": len(values), "max_mib": round(values[-1], 1),
                     "median_mib": round(values[len(values) // 2], 1)}
    return out
