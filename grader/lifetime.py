"""What must not outlive the grader: sandbox children die with their parent, and a dead grader's box folders,
cgroups and processes are swept away by the next one.

A sandbox's folder is `<tmp>/grader-box-<pid>-<random>` (its cgroup is named the same way), <pid> being the
grading process that made it, so a leftover can be told from one a live grader (another `grade` run on the same
machine) is using.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

BOX_PREFIX = "grader-box-"
_BOX_NAME = re.compile(rf"{BOX_PREFIX}(\d+)-")
_PR_SET_PDEATHSIG = 1
CGROUPS = Path("/sys/fs/cgroup")


def box_prefix() -> str:
    """The mkdtemp prefix of a sandbox folder made by this process."""
    return f"{BOX_PREFIX}{os.getpid()}-"


def _prctl() -> Callable[..., int] | None:
    if not hasattr(os, "fork") or not os.path.exists("/proc/self"):
        return None  # not Linux: nothing to set
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def die_with_parent(then: Callable[[], None] | None = None, sig: int = signal.SIGKILL) -> Callable[[], None]:
    """A preexec function: the new process gets `sig` when the process that started it dies, then `then()`.

    Made before the fork (libc is looked up here, not in the child); if the parent is already gone when the
    child gets here, the child exits at once instead of running on as an orphan.
    """
    prctl, parent = _prctl(), os.getpid()

    def apply() -> None:
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
            if os.getppid() != parent:
                os._exit(1)
        if then is not None:
            then()

    return apply


def end_with_parent(parent: int, sig: int = signal.SIGTERM) -> None:
    """In a grading worker: get `sig` when the `grade` process (pid `parent`) dies, or exit now if it has."""
    prctl = _prctl()
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


class Terminated(BaseException):
    """SIGTERM, raised like KeyboardInterrupt so that every `with Sandbox` and `finally` runs."""

    def __init__(self, signum: int = signal.SIGTERM):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def raise_on_sigterm() -> None:
    """Make SIGTERM raise Terminated in the main thread (the default would end the process with no clean-up)."""

    def handler(signum: int, frame: object) -> None:
        raise Terminated(signum)

    signal.signal(signal.SIGTERM, handler)


def is_alive(pid: int) -> bool:
    """True when a process with this pid exists (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def box_owner(path: Path) -> int | None:
    """The pid of the grading process that made this sandbox folder, or None for another name."""
    match = _BOX_NAME.match(path.name)
    return int(match[1]) if match else None


def leftover_boxes(owners: Iterable[int] | None = None, tmp: Path | None = None) -> list[Path]:
    """Sandbox folders in tmp whose owner is dead (or, given `owners`, made by one of those processes)."""
    tmp = tmp or Path(tempfile.gettempdir())
    wanted = set(owners) if owners is not None else None
    found = []
    for path in sorted(tmp.glob(f"{BOX_PREFIX}*")):
        owner = box_owner(path)
        if owner is None or not path.is_dir() or path.is_symlink():
            continue
        if (owner in wanted) if wanted is not None else not is_alive(owner):
            found.append(path)
    return found


def processes_in(boxes: Iterable[Path]) -> list[int]:
    """Pids whose command line runs something inside one of these folders (a sandbox child, its `unshare`)."""
    marks = [str(b).encode() for b in boxes]
    if not marks:
        return []
    pids = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if any(m in cmdline for m in marks):
            pids.append(int(entry))
    return pids


def _cgroup_parents() -> list[Path]:
    """The cgroup folders this process's sandboxes make their groups in (v1 memory, pids and cpu, v2)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return []
    parents = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            if name in ("memory", "pids", "cpu", ""):
                for mount in ([CGROUPS / name] if name else [CGROUPS, CGROUPS / "unified"]):
                    if (mount / path.lstrip("/")).is_dir():
                        parents.append(mount / path.lstrip("/"))
    return list(dict.fromkeys(parents))


def leftover_cgroups(owners: Iterable[int] | None = None) -> list[Path]:
    """Sandbox cgroups (`grader-box-<pid>-...`) whose owner is dead, or made by one of `owners`."""
    found: list[Path] = []
    for parent in _cgroup_parents():
        found += leftover_boxes(owners, parent)
    return found


def _remove_cgroup(group: Path) -> None:
    for _ in range(50):
        try:
            members = [int(p) for p in (group / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            members = []
        for pid in members:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            group.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)  # the kernel is still reaping its processes


def sweep(owners: Iterable[int] | None = None) -> list[Path]:
    """Kill the processes still running in leftover sandbox folders and cgroups, then delete them; returns them.

    Without `owners`, the leftovers of every dead grader on this machine; with them, those of these processes
    (grading workers known to be dead or stopped).
    """
    owners = list(owners) if owners is not None else None
    boxes = leftover_boxes(owners)
    for pid in processes_in(boxes):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    for box in boxes:
        shutil.rmtree(box, ignore_errors=True)
    groups = leftover_cgroups(owners)
    for group in groups:
        _remove_cgroup(group)
    return boxes + groups
