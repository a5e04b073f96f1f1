"""The child's filesystem view, built from nothing with bubblewrap (deny by default).

The child sees read-only binds of /usr, the interpreter's prefix (its site-packages cut down to the packages a
student may import), the runner (runner.py and its package inside/), shims and data in /box; fresh size-limited
tmpfs for /tmp, /var/tmp, /run, /dev/shm, its home and working folder (/box/scratch) and the answer folder
(/box/outbox); a minimal /dev and /proc; in /etc only the loader cache and a two-line passwd/group. Nothing else
of the machine exists for it.

As root, bwrap builds that view with fresh PID, network, IPC, UTS and cgroup namespaces, `setpriv` drops to
the sandbox's own uid (no groups, no capabilities, no new privileges), and a second, unprivileged bwrap puts
the child in a user namespace in which no further user namespace can be created (`--disable-userns`; bwrap's
own `--uid` as root would map the child to uid 0 outside). Without root one bwrap does all of it through a
user namespace, and the child keeps the grader's uid inside its view.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import os
import re
import shutil
import site
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

BOX = Path("/box")
# What a student may import (with everything these need); the grader's own packages are never among them.
STUDENT_DISTRIBUTIONS = ("numpy", "matplotlib", "scipy", "pandas", "Pillow", "tqdm")
MERGED_USR = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
ETC_FILES = ("ld.so.cache",)
SMALL_MB = 1  # /run and /var/tmp: room for a lock file, not for data
NAMESPACES = ("--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try")


@dataclass(frozen=True)
class Sizes:
    """Sizes of the child's writable tmpfs, in MB."""

    scratch_mb: int
    outbox_mb: int


@dataclass(frozen=True)
class BoxFiles:
    """The grader's files for one sandbox on the host (bound read-only into /box), by name in /box."""

    runner: Path
    package: Path  # the runner's own modules (grader/sandbox/inside), imported by it as `inside`
    shims: Path
    data: Path
    inbox: Path
    mpl_cache: Path | None
    probe_secret: Path
    passwd: Path
    group: Path


@dataclass(frozen=True)
class Status:
    """Whether bubblewrap can build a sandbox here, and if not why."""

    path: str | None
    works: bool
    reason: str


def tools() -> dict[str, str | None]:
    return {"bwrap": shutil.which("bwrap"), "setpriv": shutil.which("setpriv")}


@functools.lru_cache(maxsize=2)
def status(as_root: bool) -> Status:
    """Try a minimal sandbox of the same shape once per process (about 10 ms)."""
    found = tools()
    if found["bwrap"] is None:
        return Status(None, False, "bubblewrap (bwrap) is not installed")
    if as_root and found["setpriv"] is None:
        return Status(found["bwrap"], False, "setpriv (util-linux) is not installed")
    argv = [str(Path(os.path.realpath(shutil.which("true") or "/bin/true")))]
    command = wrap(argv, _system_binds() + ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"],
                   (65534, 65534) if as_root else None)
    try:
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=20, env={})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Status(found["bwrap"], False, f"bwrap could not run: {exc}")
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip()[-300:] or f"status {done.returncode}"
        return Status(found["bwrap"], False, f"bwrap cannot build a sandbox here ({detail})")
    return Status(found["bwrap"], True, "bubblewrap works")


def wrap(argv: Sequence[str], view: Sequence[str], uid_gid: tuple[int, int] | None) -> list[str]:
    """The whole command: outer bwrap (view, namespaces), then as root the uid drop and the inner bwrap."""
    found = tools()
    bwrap = found["bwrap"] or "bwrap"
    outer = [bwrap, *NAMESPACES, "--die-with-parent", "--new-session", *view]
    if uid_gid is None:  # not root: one bwrap, through a user namespace of its own
        return [*outer[:1], "--unshare-user", "--disable-userns", "--as-pid-1", *outer[1:], "--", *argv]
    uid, gid = uid_gid
    keep = ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
    drop = [found["setpriv"] or "setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--no-new-privs",
            "--bounding-set=-all", "--inh-caps=-all", "--"]
    # The child is pid 1 of its own PID namespace and leads its own session, as with `unshare`: nothing it
    # starts can signal the monitors above it (kill(0), kill(-1), kill(getppid()) reach only its own processes).
    inner = [bwrap, "--unshare-user", "--disable-userns", "--unshare-pid", "--as-pid-1", "--new-session",
             "--uid", str(uid), "--gid", str(gid), "--die-with-parent", "--bind", "/", "/", "--"]
    return [*outer, *keep, "--", *drop, *inner, *argv]


def view(files: BoxFiles, sizes: Sizes, hidden: Sequence[Path]) -> list[str]:
    """bwrap arguments for the child's filesystem; raises ValueError if a hidden path is one the child needs.

    The fresh tmpfs come first, so that what is bound read-only may live under one of them (a venv in /tmp).
    """
    args = ["--proc", "/proc", "--dev", "/dev", "--perms", "0755", "--dir", "/var"]
    for mount, mb, mode in (("/tmp", sizes.scratch_mb, "1777"), ("/var/tmp", SMALL_MB, "1777"),
                            ("/run", SMALL_MB, "0755"), ("/dev/shm", sizes.scratch_mb, "1777")):
        args += ["--size", str(mb * 2**20), "--perms", mode, "--tmpfs", mount]
    args += _system_binds() + _python_binds() + ["--perms", "0755", "--dir", str(BOX)]
    for name, path in (("runner.py", files.runner), ("inside", files.package), ("shims", files.shims),
                       ("data", files.data), ("inbox", files.inbox), ("probe-secret", files.probe_secret)):
        args += ["--ro-bind", str(path), str(BOX / name)]
    if files.mpl_cache is not None:
        args += ["--ro-bind", str(files.mpl_cache), str(BOX / "mplcache")]
    args += ["--ro-bind", str(files.passwd), "/etc/passwd", "--ro-bind", str(files.group), "/etc/group"]
    for mount, mb in ((BOX / "scratch", sizes.scratch_mb), (BOX / "outbox", sizes.outbox_mb)):
        args += ["--size", str(mb * 2**20), "--perms", "1777", "--tmpfs", str(mount)]
    # What bwrap made for mount points (/, /dev, the site-packages overlays) is read-only: in a user namespace
    # of the grader's own uid the child would own them, and they have no size limit.
    args += ["--remount-ro", "/dev", "--remount-ro", "/", *_site_remounts(), "--chdir", str(BOX / "scratch")]
    _refuse_hiding_what_is_bound(args, hidden)
    return args


def writable_mounts(sizes: Sizes) -> dict[str, int]:
    """The tmpfs the child may write to, and their sizes in bytes (the probe checks these and only these)."""
    return {"/tmp": sizes.scratch_mb * 2**20, "/var/tmp": SMALL_MB * 2**20, "/run": SMALL_MB * 2**20,
            "/dev/shm": sizes.scratch_mb * 2**20, str(BOX / "scratch"): sizes.scratch_mb * 2**20,
            str(BOX / "outbox"): sizes.outbox_mb * 2**20}


def mounts(args: Sequence[str]) -> list[tuple[str, str, str | None]]:
    """(destination, kind, source) of every mount, link or dir in a view's arguments, in order."""
    found: list[tuple[str, str, str | None]] = []
    i = 0
    while i < len(args):
        if args[i] in ("--ro-bind", "--bind", "--symlink"):
            found.append((args[i + 2], args[i], args[i + 1]))
            i += 3
        elif args[i] in ("--tmpfs", "--proc", "--dev", "--dir"):
            found.append((args[i + 1], args[i], None))
            i += 2
        elif args[i] in ("--size", "--perms", "--remount-ro", "--chdir"):
            i += 2
        else:
            i += 1
    return found


def visible_at_own_path(args: Sequence[str], path: Path) -> str | None:
    """The bind that shows host `path` to the child at the same path (None: the child cannot see it)."""
    path = Path(os.path.realpath(path))
    deepest: tuple[int, str, str, str | None] | None = None
    for dest, kind, source in mounts(args):
        if kind != "--dir" and _within(path, Path(dest)):
            depth = len(Path(dest).parts)
            if deepest is None or depth >= deepest[0]:
                deepest = (depth, dest, kind, source)
    if deepest is None:
        return None
    _, dest, kind, source = deepest
    return dest if kind in ("--ro-bind", "--bind") and source == dest else None


def _refuse_hiding_what_is_bound(args: Sequence[str], hidden: Sequence[Path]) -> None:
    for h in hidden:
        shown_by = visible_at_own_path(args, h)
        if shown_by is not None and os.path.lexists(h):
            raise ValueError(f"cannot hide {h}: the sandboxed Python needs {shown_by}")


@functools.lru_cache(maxsize=1)
def _system_binds() -> list[str]:
    """/usr read-only, the merged-/usr links (or dirs) beside it, and the loader cache from /etc."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in MERGED_USR:
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    args += ["--perms", "0755", "--dir", "/etc"]
    for name in ETC_FILES:
        if (Path("/etc") / name).is_file():
            args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    return args


@functools.lru_cache(maxsize=1)
def _python_binds() -> list[str]:
    """The interpreter's prefixes read-only, each site-packages replaced by only the student's packages."""
    roots = _outermost([Path(sys.base_prefix), Path(sys.prefix), Path(os.path.realpath(sys.executable)).parent,
                        *(_extra_package_roots())])
    roots = [r for r in roots if not _within(r, Path("/usr"))]
    args: list[str] = []
    for root in roots:
        args += _dirs_for(root) + ["--ro-bind", str(root), str(root)]
    for site_dir in _site_dirs():
        entries = allowed_entries(site_dir)
        args += ["--size", str(SMALL_MB * 2**20), "--perms", "0755", "--tmpfs", str(site_dir)]
        for entry in entries:
            args += ["--ro-bind", str(site_dir / entry), str(site_dir / entry)]
    return args


def _site_remounts() -> list[str]:
    return [a for site_dir in _site_dirs() for a in ("--remount-ro", str(site_dir))]


def _dirs_for(path: Path) -> list[str]:
    """--dir for each ancestor, world-searchable (bwrap would copy /root's 0700 and lock the child out)."""
    args: list[str] = []
    for parent in reversed(path.parents):
        if parent != Path("/"):
            args += ["--perms", "0755", "--dir", str(parent)]
    return args


def _site_dirs() -> list[Path]:
    """Every site-packages (or dist-packages) the interpreter would search, real paths, existing."""
    dirs = [Path(p) for p in site.getsitepackages()]
    for module in ("numpy", "matplotlib"):
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.origin:
            dirs.append(Path(spec.origin).resolve().parent.parent)
    real = {Path(os.path.realpath(d)) for d in dirs if os.path.isdir(d)}
    return sorted(real)


def _extra_package_roots() -> list[Path]:
    """Site dirs outside the prefixes (e.g. a venv's packages elsewhere) must be bound too."""
    prefixes = [Path(sys.base_prefix), Path(sys.prefix), Path("/usr")]
    return [d for d in _site_dirs() if not any(_within(d, p) for p in prefixes)]


def allowed_entries(site_dir: Path) -> list[str]:
    """The names in `site_dir` that belong to STUDENT_DISTRIBUTIONS and their requirements (from each
    distribution's file list, else its top_level.txt), and numpy's and matplotlib's own folders in any case."""
    names: set[str] = set()
    for dist in _distribution_closure():
        if Path(os.path.realpath(dist.locate_file(""))) != site_dir:
            continue
        tops = [f.parts[0] for f in dist.files or [] if f.parts]
        if not tops:  # installed without a RECORD (e.g. by a distribution's package manager)
            tops = (dist.read_text("top_level.txt") or "").split()
        names.update(t for t in tops if t not in ("..", "__pycache__") and not t.endswith(".pth"))
    for module in ("numpy", "matplotlib"):
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.origin and Path(spec.origin).resolve().parent.parent == site_dir:
            names.add(Path(spec.origin).resolve().parent.name)
    return sorted(n for n in names if (site_dir / n).exists())


@functools.lru_cache(maxsize=1)
def _distribution_closure() -> tuple[importlib.metadata.Distribution, ...]:
    found: dict[str, importlib.metadata.Distribution] = {}
    todo = list(STUDENT_DISTRIBUTIONS)
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in found or key in ("grader", "reference"):
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        found[key] = dist
        for requirement in dist.requires or []:
            match = re.match(r"[A-Za-z0-9._-]+", requirement)
            if match and "extra ==" not in requirement:
                todo.append(match.group(0))
    return tuple(found.values())


def _within(path: Path, ancestor: Path) -> bool:
    return path == ancestor or ancestor in path.parents


def _outermost(paths: Sequence[Path]) -> list[Path]:
    kept: list[Path] = []
    for p in sorted({Path(os.path.realpath(p)) for p in paths}, key=lambda p: len(p.parts)):
        if not any(_within(p, k) for k in kept):
            kept.append(p)
    return kept
