"""How the child is started: which engine, command line, environment, rlimits, namespaces, privilege drop.

Engines, best first: "bwrap" (grader/sandbox/bwrap.py: a filesystem view built from nothing, as root or, where
user namespaces are allowed, without); "namespaces", the fallback as root when bubblewrap is missing or cannot
run (below: the machine's filesystem with named paths hidden); "none", rlimits only, said plainly.

The "namespaces" engine, as root: `unshare` gives the child fresh PID, network, mount, IPC and UTS
namespaces; inside, still root, a small sh script hides the grader's files under empty tmpfs mounts (keeping
the Python installation and the sandbox directory reachable at their own paths), then `setpriv` drops to an
unprivileged uid/gid with no supplementary groups and no new privileges, and execs `python -I runner.py`.
"""

from __future__ import annotations

import grp
import importlib.util
import os
import resource
import secrets
import shlex
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS")
ALWAYS_HIDDEN = ("/root", "/home", "/tmp", "/var/tmp")
STAGING_CANDIDATES = ("/dev/shm", "/mnt", "/media")
FRESH_UID_BASE, FRESH_UID_SPAN = 1 << 20, 1 << 20


class SandboxFailure(RuntimeError):
    """The grader cannot run student code safely (a required protection is missing or broken)."""


@dataclass(frozen=True)
class ChildUser:
    """The unprivileged identity the child runs as (root mode only)."""

    uid: int
    gid: int


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def default_child_user() -> ChildUser:
    """A fresh unprivileged uid for one sandbox (so RLIMIT_NPROC, which counts per uid, is its own), with
    the nogroup/nobody group. The uid has no account: nothing on the machine belongs to it."""
    uid = FRESH_UID_BASE + secrets.randbelow(FRESH_UID_SPAN)
    for group in ("nogroup", "nobody"):
        try:
            return ChildUser(uid, grp.getgrnam(group).gr_gid)
        except KeyError:
            continue
    return ChildUser(uid, 65534)


def isolation_tools() -> dict[str, str | None]:
    return {tool: shutil.which(tool) for tool in ("unshare", "setpriv", "mount", "umount", "sh")}


def grader_paths() -> list[Path]:
    """The grader's own package dirs (grader/, reference/), the project dir holding them, if separate, and the
    prepared-data cache."""
    import grader
    import reference
    from grader.data_cache import cache_root

    packages = [Path(grader.__file__).resolve().parent, Path(reference.__file__).resolve().parent]
    paths = list(packages)
    project = packages[0].parent
    if not any(_within(k, project) for k in python_paths()):
        paths.append(project)
    cache = cache_root()
    if cache is not None and not any(_within(k, cache) for k in python_paths()):
        paths.append(cache)
    return paths


def python_paths() -> list[Path]:
    """What the child's interpreter needs at its own path: prefixes, the executable, numpy, matplotlib."""
    paths = {Path(sys.base_prefix), Path(sys.prefix), Path(os.path.realpath(sys.executable)).parent}
    for module in ("numpy", "matplotlib"):
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.origin:
            paths.add(Path(spec.origin).resolve().parent.parent)
    return sorted(paths)


def _within(path: Path, ancestor: Path) -> bool:
    return path == ancestor or ancestor in path.parents


def _outermost(paths: Sequence[Path]) -> list[Path]:
    unique = sorted(set(paths), key=lambda p: len(p.parts))
    kept: list[Path] = []
    for p in unique:
        if not any(_within(p, k) for k in kept):
            kept.append(p)
    return kept


def mount_script(hide: Sequence[Path], keep: Sequence[Path], tmp_mb: int, scratch: Path,
                 user: ChildUser, outbox: Path | None = None, outbox_mb: int = 0) -> str:
    """The sh script run as root inside the new namespaces: hide `hide`, keep `keep` at their paths.

    The scratch (and outbox) directory becomes a private tmpfs of `tmp_mb` (`outbox_mb`) owned by `user`:
    bounded, and gone with the namespace.
    """
    hide = [Path(os.path.realpath(p)) for p in hide if os.path.lexists(p)]
    keep = _outermost([Path(os.path.realpath(p)) for p in keep])
    for h in hide:
        if h in keep:
            raise SandboxFailure(f"cannot hide {h}: the sandboxed Python needs it")
    outer = _outermost([h for h in hide if not any(_within(h, k) for k in keep)])
    inner = _outermost([h for h in hide if any(_within(h, k) for k in keep)])
    staged = [k for k in keep if any(_within(k, h) for h in outer)]
    stage = _staging_dir(outer + keep)
    q = shlex.quote
    lines = ["set -e", f"mount -t tmpfs -o mode=700,size=1m grader-stage {q(stage)}"]
    for i, k in enumerate(staged):
        lines.append(f"mkdir {q(stage)}/k{i} && mount --rbind {q(str(k))} {q(stage)}/k{i}")
    lines += [_hide_command(h, tmp_mb) for h in outer]
    for i, k in enumerate(staged):
        lines.append(f"mkdir -p {q(str(k))} && mount --move {q(stage)}/k{i} {q(str(k))}")
    lines += [_hide_command(h, tmp_mb) for h in inner]
    lines.append(f"mount -t tmpfs -o mode=700,uid={user.uid},gid={user.gid},size={tmp_mb}m grader-scratch "
                 f"{q(str(scratch))}")
    if outbox is not None:
        lines.append(f"mount -t tmpfs -o mode=700,uid={user.uid},gid={user.gid},size={outbox_mb}m grader-outbox "
                     f"{q(str(outbox))}")
    lines += [f"umount {q(stage)}", f"mount -t tmpfs -o mode=1777,size={tmp_mb}m grader-shm {q(stage)}"]
    return "\n".join(lines)


def _staging_dir(taken: Sequence[Path]) -> str:
    for candidate in STAGING_CANDIDATES:
        path = Path(candidate)
        clashes = any(_within(path, t) or _within(t, path) for t in taken)
        if path.is_dir() and not path.is_symlink() and not clashes:
            return candidate
    raise SandboxFailure(f"no directory to stage mounts in (tried {', '.join(STAGING_CANDIDATES)})")


def _hide_command(path: Path, tmp_mb: int) -> str:
    q = shlex.quote(str(path))
    if not path.is_dir():
        return f"mount --bind /dev/null {q}"
    if str(path) in ("/tmp", "/var/tmp"):
        return f"mount -t tmpfs -o mode=1777,size={tmp_mb}m grader-tmp {q}"
    return f"mount -t tmpfs -o mode=755,size=1m grader-hidden {q}"


def isolated_command(python_argv: Sequence[str], script: str, user: ChildUser) -> list[str]:
    """unshare (pid, net, mount, ipc, uts) -> sh mount script -> setpriv (drop to `user`) -> python."""
    tools = isolation_tools()
    missing = [name for name, path in tools.items() if path is None]
    if missing:
        raise SandboxFailure(f"cannot isolate the child: {', '.join(missing)} not found on PATH")
    drop = [tools["setpriv"], f"--reuid={user.uid}", f"--regid={user.gid}", "--clear-groups",
            "--no-new-privs", "--bounding-set=-all", "--inh-caps=-all", "--pdeathsig=SIGKILL", "--"]
    body = script + "\nexec " + " ".join(shlex.quote(a) for a in [*drop, *python_argv])
    return [tools["unshare"], "--pid", "--net", "--mount", "--ipc", "--uts", "--fork", "--kill-child",
            "--mount-proc", tools["sh"], "-c", body]


def child_env(scratch: Path, data_dir: Path) -> dict[str, str]:
    """A minimal environment: no grader variables, one BLAS thread, Agg backend, HOME in scratch."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(scratch), "TMPDIR": str(scratch),
           "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "MPLBACKEND": "Agg",
           "MPLCONFIGDIR": str(scratch / ".matplotlib"), "GRADER_SANDBOX_DATA": str(data_dir)}
    env.update({name: "1" for name in THREAD_VARS})
    return env


def choose_engine(require_isolation: bool | None, wanted: str | None = None) -> str:
    """"bwrap", "namespaces" or "none" (see the module doc); raises SandboxFailure if what is asked cannot run."""
    from grader.sandbox import bwrap

    if require_isolation is False:
        return "none"
    root = is_root()
    if wanted not in (None, "bwrap", "namespaces"):
        raise SandboxFailure(f"unknown sandbox engine {wanted!r} (bwrap or namespaces)")
    status = bwrap.status(root)
    if wanted in (None, "bwrap") and status.works:
        return "bwrap"
    if wanted == "bwrap":
        raise SandboxFailure(f"the bubblewrap sandbox was asked for but cannot run: {status.reason}")
    if root:
        return "namespaces"
    if require_isolation or wanted == "namespaces":
        raise SandboxFailure(f"isolation is required but {status.reason} and the grader is not running as root")
    return "none"


def rlimit_setter(memory_mb: int, file_mb: int, nproc: int | None, strict: bool = True,
                  join: Sequence[int] = ()) -> Callable[[], None]:
    """A preexec function putting the child in its cgroup(s) (`join`: open cgroup.procs files) and setting its
    rlimits (inherited through bwrap, unshare and setpriv).

    Not strict (no isolation anyway, e.g. macOS refusing RLIMIT_AS): a limit the OS refuses is skipped.
    """
    limits = [(resource.RLIMIT_AS, memory_mb * 1024 * 1024), (resource.RLIMIT_FSIZE, file_mb * 1024 * 1024),
              (resource.RLIMIT_CORE, 0)]
    if nproc is not None:
        limits.append((resource.RLIMIT_NPROC, nproc))

    def apply() -> None:
        for fd in join:
            os.write(fd, str(os.getpid()).encode())
        for which, value in limits:
            try:
                resource.setrlimit(which, (value, value))
            except (ValueError, OSError):
                if strict:
                    raise

    return apply


def processes_of_current_user() -> int:
    """How many processes this uid runs now (RLIMIT_NPROC counts them all); 0 where /proc is missing."""
    uid, count = os.getuid(), 0
    try:
        entries = os.listdir("/proc")
    except OSError:
        return 0
    for entry in entries:
        if entry.isdigit():
            try:
                count += os.stat(f"/proc/{entry}").st_uid == uid
            except OSError:
                continue
    return count


def protections(memory_mb: int = 2048, file_mb: int = 64, nproc: int = 64,
                require_isolation: bool | None = None, *, engine: str | None = None, cgroup: str | None = None,
                per_process_mb: int | None = None, processes: int | None = None, outbox_mb: int = 64,
                line_mb: int = 16) -> tuple[str, ...]:
    """What a sandbox started now would enforce (Sandbox.protections reports the verified ones).

    With `engine` given (a started sandbox) the rest describes it; without, what this machine offers now.
    """
    from grader.sandbox import bwrap, cgroups

    if engine is None:
        try:
            engine = choose_engine(require_isolation)
        except SandboxFailure as exc:
            return (f"UNAVAILABLE: {exc}; grading would fail closed",)
        if engine != "none":
            cgroup = cgroups.available()
    if cgroup is None:
        processes = processes or max(1, min(nproc, memory_mb // 1024))
        per_process_mb = per_process_mb or memory_mb // processes
    reads = (f"the grader reads at most {line_mb} MB per answer line and {outbox_mb} MB per request "
             "(answer and arrays together), each size checked before reading")
    if engine == "none":
        return (f"rlimits: address space {memory_mb} MB, file size {file_mb} MB, {nproc} processes, no core "
                "dumps; one BLAS/OpenMP thread; stdin is /dev/null; output captured and bounded", reads,
                "own session and process group: a time-out kills the group (SIGKILL)",
                "NOT isolated (" + ("bubblewrap cannot run here and the grader is not root" if not is_root()
                                    else "isolation switched off") + "): the child runs as this user, has "
                "the network, can read this user's files, writes to the disk, and a grandchild that calls "
                "setsid() can outlive a time-out")
    if cgroup is not None:
        limits = (f"whole-sandbox limits ({cgroup}): {memory_mb} MB of memory and {nproc} processes for all the "
                  f"child's processes together; per process: address space {memory_mb} MB, file size "
                  f"{file_mb} MB, no core dumps; one BLAS/OpenMP thread; stdin is /dev/null; output bounded")
    else:
        limits = (f"no cgroup here ({cgroups.why_unavailable()}): at most {processes} process(es) of "
                  f"{per_process_mb} MB address space each, so {processes * per_process_mb} MB in all; file "
                  f"size {file_mb} MB, no core dumps; one BLAS/OpenMP thread; stdin is /dev/null; output bounded")
    common = ("fresh PID namespace: the grader's processes are invisible; a time-out kills every process the "
              "submission started, setsid() grandchildren included",
              "fresh network namespace: no network" + (", and no unix socket of the machine is reachable (none "
                                                         "is in its filesystem)" if engine == "bwrap" else ""))
    if engine == "bwrap":
        who = ("child runs as its own unprivileged uid (no account), no supplementary groups, no capabilities, "
               "no new privileges" if is_root() else
               "child runs as the grader's own uid inside a user namespace (no root here), no capabilities")
        return (limits, reads, who, *common,
                "filesystem built from nothing (bubblewrap): read-only /usr, the interpreter and only the "
                "packages a student may import (" + ", ".join(bwrap.STUDENT_DISTRIBUTIONS) + " and their "
                "requirements), the runner, shims and data; nothing else of the machine (no /srv, /home, /root, "
                "/work, /etc beyond the loader cache)",
                f"the child writes only to fresh tmpfs ({file_mb} MB each for /tmp, /dev/shm and its working "
                f"folder, {outbox_mb} MB for its answers, 1 MB for /run and /var/tmp), all gone when it ends, "
                "even after a kill",
                "no user namespaces can be created inside the sandbox")
    missing = [name for name, path in isolation_tools().items() if path is None]
    if missing:
        return (limits, f"UNAVAILABLE: isolation needs {', '.join(missing)}; grading would fail closed")
    return (limits, reads,
            "child runs as its own unprivileged uid (no account), no supplementary groups, no capabilities, "
            "no new privileges", *common,
            "private mount namespace (fallback: bubblewrap cannot run here): the grader's source, /root, /home, "
            "/tmp and named paths are hidden; the child writes only tmpfs (its scratch and answer folders, "
            "/tmp), gone when it ends",
            "NOT blocked here (no bubblewrap): the rest of the machine's filesystem is readable where its "
            "permissions allow, world-writable places such as /run/lock and /dev/shm are shared, and user "
            "namespaces can be created")


ENGINE_NAMES = {"bwrap": "bubblewrap: a filesystem built from nothing, own namespaces, no user namespaces",
                "namespaces": "fallback: own namespaces, the machine's filesystem with named paths hidden",
                "none": "none: rlimits only, the child runs as this user"}


def lacking() -> list[str]:
    """What this machine lacks for the full protection, in plain words (empty: nothing)."""
    from grader.sandbox import bwrap, cgroups

    root, status = is_root(), bwrap.status(is_root())
    missing = []
    if not status.works:
        where = ("the child would see the machine's filesystem except the paths the grader hides, share "
                 "/run/lock and /dev/shm, and could create user namespaces" if root else
                 "and the grader is not root: the child would not be isolated at all")
        missing.append(f"bubblewrap ({status.reason}; Debian package bubblewrap): {where}")
    elif not root:
        missing.append("root: the child runs as your own uid inside its user namespace, not as a fresh uid of "
                       "its own (it still sees only what it is given)")
    if (root or status.works) and cgroups.available() is None:
        missing.append(f"a cgroup ({cgroups.why_unavailable()}): memory is bounded as processes x address space "
                       "per process, not for the whole sandbox")
    return missing


def hidden_allowances(hide: Sequence[Path], keep: Sequence[Path]) -> dict[str, list[str]]:
    """For each hidden path, the only names the child may list in it (those leading to kept paths)."""
    keep = [Path(os.path.realpath(k)) for k in keep]
    allowed: dict[str, list[str]] = {}
    for h in (Path(os.path.realpath(p)) for p in hide if os.path.lexists(p)):
        allowed[str(h)] = sorted({k.relative_to(h).parts[0] for k in keep if h in k.parents})
    return allowed
