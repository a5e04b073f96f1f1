"""Prepared grading data kept between runs, so a second `grade` neither validates nor cuts MNIST again.

An entry is the folder `grader.data.save_data` writes, named by a digest of the MNIST file's bytes, the rubric,
--full and the grader's own source code: a change to any of them is a different entry. It is written in a
temporary folder beside it and renamed into place whole, so a reader sees a complete entry or none. Only a file
that passed validation is ever stored, and a stored entry is the data that file gave, so a hit is as good as
validating again. The newest few entries are kept. $GRADER_CACHE_DIR sets the folder ("" turns the cache off).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

CACHE_VAR = "GRADER_CACHE_DIR"
KEPT_ENTRIES = 4
IN_USE_S = 3600.0  # an entry used this recently may be mapped by another run: never evicted
_DIGEST_CHUNK = 1 << 20


def cache_root() -> Path | None:
    """$GRADER_CACHE_DIR, else $XDG_CACHE_HOME or ~/.cache, then mnist-backprop-grader/data; None when off."""
    chosen = os.environ.get(CACHE_VAR)
    if chosen is not None:
        return Path(chosen) if chosen else None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mnist-backprop-grader" / "data"


def entry_key(mnist_file: Path, rubric_sha256: str, full: bool) -> str:
    """The entry's name: a digest of the MNIST file's bytes, the rubric, --full and the grader's code."""
    digest = hashlib.sha256()
    with open(mnist_file, "rb") as f:
        for chunk in iter(lambda: f.read(_DIGEST_CHUNK), b""):
            digest.update(chunk)
    digest.update(f"\0{rubric_sha256}\0{int(full)}\0".encode())
    digest.update(code_digest().encode())
    return digest.hexdigest()[:32]


@functools.cache
def code_digest() -> str:
    """A digest of every .py file of the grader and reference packages: changes whenever their code does."""
    import grader
    import reference

    digest = hashlib.sha256()
    for package in (Path(grader.__file__).parent, Path(reference.__file__).parent):
        for path in sorted(package.rglob("*.py")):
            digest.update(str(path.relative_to(package.parent)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def lookup(mnist_path: str | None, rubric_sha256: str, full: bool) -> tuple[str | None, Path | None, str]:
    """(the entry key of the MNIST file load_mnist reads, or None if it is not kept; that entry if whole, else None
    (a damaged one is forgotten); the file's source in words)."""
    from reference.mnist import locate_mnist

    file, source = locate_mnist(mnist_path)
    if file is None or full:  # TensorFlow downloads it; --full's 60,000 float64 images are too big to keep
        return None, None, source
    try:
        key = entry_key(file, rubric_sha256, full)
    except OSError:
        return None, None, source  # unreadable: load_mnist says why
    entry = cached_entry(key)
    if entry is not None and not entry_is_whole(entry):
        forget_entry(entry)  # damaged by hand: prepared afresh
        entry = None
    return key, entry, source


def cached_entry(key: str) -> Path | None:
    """The complete entry named key, marked as just used, or None."""
    root = _usable_root()
    entry = root / key if root is not None else None
    if entry is None or not (entry / "index.json").is_file():
        return None
    with contextlib.suppress(OSError):  # a read-only cache is still used
        os.utime(entry)
    return entry


def store_entry(key: str, prepared: Path) -> Path | None:
    """Copy the prepared data folder in as entry key (whole or not at all), evict old entries; None if not stored."""
    root = _usable_root(create=True)
    if root is None:
        return None
    staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
    try:
        for path in prepared.iterdir():
            if path.name != "index.json":
                shutil.copyfile(path, staging / path.name)
        shutil.copyfile(prepared / "index.json", staging / "index.json")  # last: it marks the entry complete
        os.chmod(staging, 0o700)
        os.rename(staging, root / key)
    except OSError:  # a full disk, or another run stored the same entry first
        shutil.rmtree(staging, ignore_errors=True)
        return cached_entry(key)
    _evict(root, keep=key)
    return root / key


def entry_is_whole(entry: Path) -> bool:
    """True when every .npy file in entry has a readable header and exactly the bytes it announces (no numpy
    load: the parent checks this before its workers map the files)."""
    import numpy as np

    try:
        files = [p for p in entry.iterdir() if p.suffix == ".npy"]
        for path in files:
            with open(path, "rb") as f:
                read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                               (2, 0): np.lib.format.read_array_header_2_0}[np.lib.format.read_magic(f)]
                shape, _, dtype = read_header(f)
                expected = f.tell() + int(np.prod(shape)) * dtype.itemsize
            if dtype.hasobject or path.stat().st_size != expected:
                return False
    except (OSError, ValueError, KeyError):
        return False
    return bool(files) and (entry / "index.json").is_file()


def forget_entry(entry: Path) -> None:
    """Remove an entry that turned out unreadable (a file deleted or damaged by hand)."""
    shutil.rmtree(entry, ignore_errors=True)


def _usable_root(create: bool = False) -> Path | None:
    """The cache folder if this user owns it and nobody else can write to it (made 0700 when create)."""
    root = cache_root()
    if root is None:
        return None
    try:
        if create:
            root.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = root.stat()
    except OSError:
        return None
    if info.st_uid != os.getuid() or info.st_mode & 0o022:
        return None  # another user could plant data here: prepare it afresh instead
    return root


def _evict(root: Path, keep: str) -> None:
    """Delete all but the KEPT_ENTRIES newest entries, sparing any used within IN_USE_S, and stale staging."""
    now = time.time()
    entries = []
    for path in root.iterdir():
        try:
            age = now - path.stat().st_mtime
        except OSError:
            continue
        if path.name.startswith("."):
            if age > IN_USE_S:
                shutil.rmtree(path, ignore_errors=True)
        elif path.name != keep:
            entries.append((age, path))
    for age, path in sorted(entries)[KEPT_ENTRIES - 1:]:
        if age > IN_USE_S:
            shutil.rmtree(path, ignore_errors=True)
