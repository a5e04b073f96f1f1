"""Limits on the whole sandbox: a memory and a pids cgroup holding every process the child starts, and a cpu
cgroup giving all of them together at most one CPU's time where the cpu controller is there.

cgroup v1 (the `memory` and `pids` hierarchies, writable by root; `cpu` when mounted) or v2 (a delegated group
whose `cgroup.subtree_control` enables `memory` and `pids`; `cpu` when enabled too). Without the CPU limit, each
of a submission's processes counts apart for the scheduler (one that calls setsid() even escapes its per-session
fairness): 60 spinning processes made another submission graded beside it 17 times slower. Each sandbox's group
is made under the grader's own group, so whatever limits the grader itself runs under still apply. Where neither
can be made, `Cgroup.make` returns None with the reason, and the session falls back to rlimits (processes x
address space).
"""

from __future__ import annotations

import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PREFIX = "grader-box-"
_OWNER = re.compile(rf"{PREFIX}(\d+)-[0-9a-f]+$")


@dataclass(frozen=True)
class Cgroup:
    """One sandbox's group(s): the directories holding the memory and the pids limit (the same dir in v2)."""

    version: int
    memory_dir: Path
    pids_dir: Path
    cpu_dir: Path | None = None  # None: no CPU limit here (no cpu controller)

    @staticmethod
    def make(memory_bytes: int, pids: int, cpus: float = 1.0) -> tuple[Cgroup | None, str]:
        """A fresh group with these limits (`cpus`: CPU time for all its processes, in CPUs), or (None, why not)."""
        name = f"{PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
        v1 = _v1_parents()
        if v1 is not None:
            cpu = _v1_parent("cpu")
            for parent in (v1[0], v1[1], cpu):
                if parent is not None:
                    _sweep_dead(1, parent)
            return _made(1, v1[0] / name, v1[1] / name, memory_bytes, pids, cpu / name if cpu else None, cpus)
        v2 = _v2_parent()
        if v2 is not None:
            _sweep_dead(2, v2)
            cpu = v2 / name if "cpu" in _subtree_controllers(v2) else None
            return _made(2, v2 / name, v2 / name, memory_bytes, pids, cpu, cpus)
        return None, why_unavailable()

    def dirs(self) -> list[Path]:
        """Its directories, each once."""
        return list(dict.fromkeys(d for d in (self.memory_dir, self.pids_dir, self.cpu_dir) if d is not None))

    def procs_files(self) -> list[Path]:
        return sorted(d / "cgroup.procs" for d in self.dirs())

    def members(self) -> set[int]:
        """The pids in the group now."""
        try:
            return {int(p) for p in (self.memory_dir / "cgroup.procs").read_text().split()}
        except (OSError, ValueError):
            return set()

    def peak_memory(self) -> int | None:
        """The most memory (bytes) the group has held (v1: max_usage; v2: memory.peak where the kernel has it)."""
        name = "memory.max_usage_in_bytes" if self.version == 1 else "memory.peak"
        try:
            return int((self.memory_dir / name).read_text())
        except (OSError, ValueError):
            return None

    def limit(self) -> tuple[int | None, int | None]:
        """(memory bytes, pids) as the kernel holds them."""
        memory = "memory.limit_in_bytes" if self.version == 1 else "memory.max"
        return _read_int(self.memory_dir / memory), _read_int(self.pids_dir / "pids.max")

    def remove(self) -> None:
        """Kill anything left in the group and delete it (retrying while the kernel reaps the processes)."""
        for _ in range(100):
            pids = self.members()
            for pid in pids:
                try:
                    os.kill(pid, 9)
                except OSError:
                    pass
            removed = True
            for d in self.dirs():
                try:
                    d.rmdir()
                except FileNotFoundError:
                    pass
                except OSError:
                    removed = False
            if removed:
                return
            time.sleep(0.02)


def _sweep_dead(version: int, parent: Path) -> None:
    """Remove the groups a grader that died without closing its sandboxes (SIGKILL) left beside ours in one
    hierarchy: a leftover would keep our own group from being removed."""
    try:
        names = [p.name for p in parent.iterdir()]
    except OSError:
        return
    for name in names:
        match = _OWNER.match(name)
        if match and not _alive(int(match[1])):
            Cgroup(version, parent / name, parent / name).remove()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _made(version: int, memory_dir: Path, pids_dir: Path, memory_bytes: int, pids: int, cpu_dir: Path | None,
          cpus: float) -> tuple[Cgroup | None, str]:
    group = Cgroup(version, memory_dir, pids_dir)
    try:
        for d in group.dirs():
            d.mkdir()
        if version == 1:
            (memory_dir / "memory.limit_in_bytes").write_text(str(memory_bytes))
            swap = memory_dir / "memory.memsw.limit_in_bytes"
            if swap.exists():  # with swap accounting, memory + swap together
                swap.write_text(str(memory_bytes))
        else:
            (memory_dir / "memory.max").write_text(str(memory_bytes))
            if (memory_dir / "memory.swap.max").exists():
                (memory_dir / "memory.swap.max").write_text("0")
        (pids_dir / "pids.max").write_text(str(pids))
    except OSError as exc:
        group.remove()
        return None, f"cannot make a cgroup ({exc.strerror}: {exc.filename})"
    cpu = _cpu_limited(version, cpu_dir, cpus)
    if cpu is None:
        return group, f"cgroup v{version}; no CPU limit (no cpu controller here)"
    return Cgroup(version, memory_dir, pids_dir, cpu), f"cgroup v{version}; at most {cpus:g} CPU for all its processes"


def _cpu_limited(version: int, cpu_dir: Path | None, cpus: float, period_us: int = 100_000) -> Path | None:
    """cpu_dir made with a quota of `cpus` CPUs' time per period; None where it cannot be (no CPU limit then)."""
    if cpu_dir is None:
        return None
    quota = max(1000, int(cpus * period_us))
    try:
        if version == 1:
            cpu_dir.mkdir()
            (cpu_dir / "cpu.cfs_period_us").write_text(str(period_us))
            (cpu_dir / "cpu.cfs_quota_us").write_text(str(quota))
        else:  # the same directory as memory and pids, made above
            (cpu_dir / "cpu.max").write_text(f"{quota} {period_us}")
    except OSError:
        if version == 1:
            try:
                cpu_dir.rmdir()
            except OSError:
                pass
        return None
    return cpu_dir


def _own_path(controller: str) -> str | None:
    """This process's group in a v1 hierarchy (controller name) or in v2 (controller '')."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(",") if controller else controllers == "":
            return path
    return None


def _v1_parent(controller: str) -> Path | None:
    """This process's group in the v1 hierarchy of `controller`, if it is there and writable."""
    own = _own_path(controller)
    base = ROOT / controller
    if own is None or not (base / "cgroup.procs").exists():
        return None
    parent = base / own.lstrip("/")
    return parent if os.access(parent, os.W_OK) else None


def _v1_parents() -> tuple[Path, Path] | None:
    memory, pids = _v1_parent("memory"), _v1_parent("pids")
    return (memory, pids) if memory is not None and pids is not None else None


def _subtree_controllers(group: Path) -> set[str]:
    try:
        return set((group / "cgroup.subtree_control").read_text().split())
    except OSError:
        return set()


def _v2_parent() -> Path | None:
    own = _own_path("")
    if own is None:
        return None
    for mount in (ROOT, ROOT / "unified"):
        if not (mount / "cgroup.controllers").exists():
            continue
        group = mount / own.lstrip("/")
        for candidate in (group, group.parent):
            try:
                enabled = (candidate / "cgroup.subtree_control").read_text().split()
            except OSError:
                continue
            if {"memory", "pids"} <= set(enabled) and os.access(candidate, os.W_OK):
                return candidate
    return None


def why_unavailable() -> str:
    if _own_path("memory") is not None or _own_path("pids") is not None:
        return "cgroup v1 memory/pids hierarchies are not writable here (not root?)"
    return "no writable cgroup with the memory and pids controllers (cgroup v2 not delegated here)"


def available() -> str | None:
    """'cgroup v1' / 'cgroup v2' (and whether it can limit the CPU) when a group could be made here now, else
    None."""
    v2 = _v2_parent() if _v1_parents() is None else None
    if _v1_parents() is None and v2 is None:
        return None
    cpu = _v1_parent("cpu") is not None if v2 is None else "cpu" in _subtree_controllers(v2)
    return f"cgroup v{1 if v2 is None else 2}" + ("; at most 1 CPU for all its processes" if cpu else
                                                  "; no CPU limit (no cpu controller here)")


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
        return None if text == "max" else int(text)
    except (OSError, ValueError):
        return None
