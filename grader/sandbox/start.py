"""Starting a child: the box folder laid out, the command of the isolation engine built, the child spawned
and every protection it reports verified before any student code runs (fail closed)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from grader import lifetime
from grader.sandbox import bwrap, isolation
from grader.sandbox.child import _Child, _ChildEnded, _tail, _TimedOut
from grader.sandbox.isolation import SandboxFailure

PACKAGE_DIR = Path(__file__).resolve().parent
HELPER_PROCESSES = 3  # bwrap's monitor and init outside the child's uid, the inner bwrap's monitor
PROCESS_MB = 1024  # without a cgroup, each process gets at least this much address space (fewer processes)


class BoxStart:
    """The part of `Sandbox` that lays out its folder and starts and verifies its child."""

    def _layout(self) -> None:
        """base (root, 711): runner.py, inside/, shims/, data/, inbox/, passwd, group (grader's); outbox/, scratch/
        (the child's: with isolation, fresh size-limited tmpfs mounted over them in its own namespace)."""
        base = self._base
        assert base is not None
        os.chmod(base, 0o711)
        shutil.copy(PACKAGE_DIR / "runner.py", base / "runner.py")
        shutil.copytree(PACKAGE_DIR / "inside", base / "inside", ignore=shutil.ignore_patterns("__pycache__"))
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
            files = bwrap.BoxFiles(base / "runner.py", base / "inside", base / "shims", base / "data", base / "inbox",
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
                          writable=bwrap.writable_mounts(sizes), nproc=processes,
                          box_entries=sorted({Path(dest).name for dest in kept if Path(dest).parent == box}))
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
        if self.while_starting is not None:  # the child boots Python and numpy meanwhile (0.1 to 0.2 s)
            self.while_starting()
            self.while_starting = None
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
        if probe.get("own_code_writable") != []:
            problems.append(f"the child can change the grader's code in its box: {probe.get('own_code_writable')}")
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
    if probe.get("box_entries") != config["box_entries"]:
        problems.append(f"the child's /box holds {probe.get('box_entries')}, expected {config['box_entries']}")
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
        _FONT_CACHE = _font_list_on_disk() or _font_list_built()
    return _FONT_CACHE  # type: ignore[return-value]


def _font_cache_folder() -> Path:
    """Where matplotlib keeps its font list when it can write there ($MPLCONFIGDIR, else the XDG cache)."""
    return Path(os.environ.get("MPLCONFIGDIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "matplotlib"))


def _font_list_on_disk() -> Path | None:
    """The one font list in matplotlib's cache folder, found without importing matplotlib (0.1-0.6 s)."""
    folder = _font_cache_folder()
    found = sorted(folder.glob("fontlist-*.json")) if folder.is_dir() else []
    return found[0] if len(found) == 1 else None  # several versions: let matplotlib say which is current


def _font_list_built() -> Path | None:
    try:
        import matplotlib
        import matplotlib.font_manager  # noqa: F401  (builds the cache once, in the trusted parent)

        found = sorted(Path(matplotlib.get_cachedir()).glob("fontlist-*.json"))
        return found[-1] if found else None
    except Exception:  # no matplotlib in the grader: children build their own
        return None


_FONT_CACHE: Path | None | bool = False
