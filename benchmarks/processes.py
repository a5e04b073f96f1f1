"""Running a command as a child process: wall time, exit code, kernel peak RSS and sampled peaks by role."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.memory import ProcessPeak, TreeSampler


@dataclass(frozen=True)
class Measured:
    """One finished command: seconds, exit code, output tails and memory."""

    argv: tuple[str, ...]
    seconds: float
    returncode: int
    timed_out: bool
    stdout_tail: str
    stderr_tail: str
    maxrss_mib: float  # kernel ru_maxrss (RUSAGE_CHILDREN of a fresh launcher): the largest single process
    peaks: tuple[ProcessPeak, ...]  # psutil samples, per process
    peak_total_mib: float  # largest sampled sum over the whole tree

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def grade_command() -> list[str]:
    """The `grade` console script if installed next to this python, else the same entry point by module."""
    script = Path(sys.executable).parent / "grade"
    if script.is_file():
        return [str(script)]
    found = shutil.which("grade")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from grader.cli import main; sys.exit(main())"]


def tail(path: Path, lines: int = 8) -> str:
    """The last lines of a text file, '' when it does not exist."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# Runs the command and reports the kernel's peak RSS of its tree. A child's ru_maxrss starts at its
# parent's peak RSS (the mm high-water mark is copied at fork and kept at exec), so the command must be
# started from this small, fresh process and not from the benchmark's (hundreds of MiB after the data).
LAUNCHER = """
import json, resource, subprocess, sys
rc = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "w") as f:
    json.dump({"returncode": rc, "maxrss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}, f)
"""


def run_measured(argv: list[str], workdir: Path, env: dict[str, str] | None = None, cwd: Path | None = None,
                 timeout_s: float = 3600.0, interval: float = 0.05) -> Measured:
    """Run argv in its own process group; stdout/stderr go to files in workdir; kill the group on time-out."""
    workdir.mkdir(parents=True, exist_ok=True)
    out_path, err_path, usage_path = workdir / "stdout.txt", workdir / "stderr.txt", workdir / "rusage.json"
    usage_path.unlink(missing_ok=True)
    timed_out = threading.Event()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-S", "-c", LAUNCHER, str(usage_path), *argv], stdout=out,
                                stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=cwd, start_new_session=True)
        timer = threading.Timer(timeout_s, _kill_group, (proc.pid, timed_out))
        timer.start()
        try:
            with TreeSampler(proc.pid, interval) as sampler:
                proc.wait()
        finally:
            timer.cancel()
        seconds = time.perf_counter() - start
    try:
        usage = json.loads(usage_path.read_text())
    except (OSError, ValueError):  # the launcher itself was killed
        usage = {"returncode": proc.returncode, "maxrss_kib": 0}
    return Measured(tuple(argv), seconds, usage["returncode"], timed_out.is_set(), tail(out_path),
                    tail(err_path), usage["maxrss_kib"] / 1024, tuple(sampler.peaks()), sampler.peak_total_mib)


def _kill_group(pid: int, flag: threading.Event) -> None:
    flag.set()
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def own_maxrss_mib() -> float:
    """This process's own peak RSS so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
