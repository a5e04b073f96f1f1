"""Value trees across the sandbox boundary, parent side: JSON nodes plus .npy files, never pickle.

A value tree is None, bool, int, float, str, list, tuple, dict (any encodable keys, order kept) or a
numeric numpy array. On the wire: JSON natives, tagged objects {"$": "tuple"|"dict"|"float"|"ndarray"|
"opaque"|"fingerprint"|"repeated", ...}, arrays as files in an exchange directory. Whatever the child sends is read
as data only: a bad node or file becomes an `Opaque` saying why, it never raises and never runs code.
"""

from __future__ import annotations

import math
import os
import re
import stat
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib import format as npy_format

NUMERIC_KINDS = "biufc"
_SAFE_NAME = re.compile(r"[A-Za-z0-9_]{1,64}\.npy")


@dataclass(frozen=True)
class Opaque:
    """A child value that was not (or could not be) sent as data: its type and a short repr or reason."""

    type_name: str
    repr: str


@dataclass(frozen=True)
class Fingerprint:
    """A recorded array, summarised: shape, dtype, sum, sum of squares, flat index of the first non-zero."""

    shape: tuple[int, ...]
    dtype: str
    sum: float
    sum_sq: float
    first_nonzero: int | None

    def matches(self, array: np.ndarray, rtol: float = 1e-9) -> bool:
        """True when `array` has this shape and (to rtol) this sum, sum of squares and first non-zero."""
        array = np.asarray(array)
        nonzero = np.flatnonzero(array)
        first = int(nonzero[0]) if nonzero.size else None
        magnitude = np.abs(array).astype(np.float64)
        return (tuple(array.shape) == self.shape and first == self.first_nonzero
                and math.isclose(float(array.astype(np.float64).sum()), self.sum, rel_tol=rtol, abs_tol=1e-12)
                and math.isclose(float((magnitude * magnitude).sum()), self.sum_sq, rel_tol=rtol, abs_tol=1e-12))


@dataclass(frozen=True)
class Ref:
    """An argument that is the student's own object in the child: a global, or a network entry's array."""

    global_name: str | None = None
    entry: int | None = None


@dataclass(frozen=True, eq=False)
class Repeated:
    """An (n, ...) array the child builds itself: base (m, ...) repeated to n rows, then each row's first k
    values set to head (n, k) if given. A 60,000-sample x_train costs the grader m rows, not n."""

    base: np.ndarray
    n: int
    head: np.ndarray | None = None


class ArrayWriter:
    """Encodes trusted (grader) value trees to JSON nodes, writing arrays into a directory the child reads."""

    def __init__(self, dir_fd: int, prefix: str = "p"):
        self.dir_fd, self.prefix, self.count, self.written = dir_fd, prefix, 0, []

    def encode(self, value: Any) -> Any:
        """Value tree -> JSON node; raises TypeError for anything that is not a value tree (a grader bug)."""
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, np.bool_):
            return bool(value)
        if isinstance(value, (int, np.integer)):
            return int(value)
        if isinstance(value, (float, np.floating)):
            value = float(value)
            return value if math.isfinite(value) else {"$": "float", "v": repr(value)}
        if isinstance(value, (np.ndarray, np.complexfloating)):
            return self._array(np.asarray(value))
        if isinstance(value, Repeated):
            node = {"$": "repeated", "base": self._array(np.asarray(value.base)), "n": int(value.n)}
            return node if value.head is None else {**node, "head": self._array(np.asarray(value.head))}
        if isinstance(value, Ref):
            return {"$": "ref", "global": value.global_name} if value.entry is None else {
                "$": "ref", "entry": int(value.entry)}
        if isinstance(value, list):
            return [self.encode(v) for v in value]
        if isinstance(value, tuple):
            return {"$": "tuple", "items": [self.encode(v) for v in value]}
        if isinstance(value, dict):
            return {"$": "dict", "items": [[self.encode(k), self.encode(v)] for k, v in value.items()]}
        raise TypeError(f"cannot send a {type(value).__name__} to the sandbox (value trees only)")

    def _array(self, array: np.ndarray) -> dict[str, str]:
        if array.dtype.kind not in NUMERIC_KINDS:
            raise TypeError(f"cannot send an array of dtype {array.dtype} to the sandbox (numeric only)")
        self.count += 1
        name = f"{self.prefix}{self.count}.npy"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        fd = os.open(name, flags, 0o644, dir_fd=self.dir_fd)
        with os.fdopen(fd, "wb") as f:
            npy_format.write_array(f, np.ascontiguousarray(array), allow_pickle=False)
        self.written.append(name)
        return {"$": "ndarray", "file": name}

    def remove_written(self) -> None:
        """Delete the files this writer created."""
        for name in self.written:
            try:
                os.unlink(name, dir_fd=self.dir_fd)
            except FileNotFoundError:
                pass
        self.written.clear()


class ReadBudget:
    """What one request may still read back (bytes): its answer line and arrays together share one total."""

    def __init__(self, total: int):
        self.total, self.left, self.refused = total, total, 0

    def take(self, size: int) -> bool:
        """True (and counted) if `size` more bytes fit; else False, and the refusal is remembered."""
        if size > self.left:
            self.refused += 1
            return False
        self.left -= size
        return True


class ArrayReader:
    """Decodes JSON nodes from the child; arrays read from a directory the child writes, then deleted.

    Every array's size is checked against `max_bytes` and against the request's `budget` before it is read.
    """

    def __init__(self, dir_fd: int, max_bytes: int, max_depth: int = 64, budget: ReadBudget | None = None):
        self.dir_fd, self.max_bytes, self.max_depth = dir_fd, max_bytes, max_depth
        self.budget = budget if budget is not None else ReadBudget(1 << 62)

    def decode(self, node: Any, depth: int = 0) -> Any:
        """JSON node -> value tree (arrays as np.ndarray), Opaque for anything malformed or refused."""
        if node is None or isinstance(node, (bool, int, str)):
            return node
        if isinstance(node, float):
            return node
        if depth > self.max_depth:
            return Opaque("?", "value nested too deeply")
        if isinstance(node, list):
            return [self.decode(v, depth + 1) for v in node]
        if not isinstance(node, dict):
            return Opaque("?", "malformed value from the child")
        try:
            return self._tagged(node, depth)
        except (KeyError, TypeError, ValueError, AttributeError):
            return Opaque("?", "malformed value from the child")

    def _tagged(self, node: dict, depth: int) -> Any:
        tag = node.get("$")
        if tag == "float":
            return float({"nan": "nan", "inf": "inf", "-inf": "-inf"}[node["v"]])
        if tag == "tuple":
            return tuple(self.decode(v, depth + 1) for v in node["items"])
        if tag == "dict":
            return {self.decode(k, depth + 1): self.decode(v, depth + 1) for k, v in node["items"]}
        if tag == "ndarray":
            return self.read_array(node["file"])
        if tag == "opaque":
            return Opaque(str(node["type"])[:200], str(node["repr"])[:1000])
        if tag == "fingerprint":
            first = node["first_nonzero"]
            shape = tuple(int(n) for n in node["shape"])
            first = None if first is None else int(first)
            dtype = str(node["dtype"])[:40]
            return Fingerprint(shape, dtype, _float(node["sum"]), _float(node["sum_sq"]), first)
        return Opaque("?", "malformed value from the child")

    def read_array(self, name: str) -> np.ndarray | Opaque:
        """Read one child-written .npy: regular file, no symlink, numeric dtype, size bound, no pickle."""
        if not isinstance(name, str) or not _SAFE_NAME.fullmatch(name):
            return Opaque("numpy.ndarray", "refused: bad array file name")
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=self.dir_fd)
        except OSError as exc:
            return Opaque("numpy.ndarray", f"refused: cannot open the array file ({exc.strerror})")
        try:
            with os.fdopen(fd, "rb") as f:
                return self._checked_load(f)
        finally:
            try:
                os.unlink(name, dir_fd=self.dir_fd)
            except OSError:
                pass

    def _checked_load(self, f) -> np.ndarray | Opaque:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            return Opaque("numpy.ndarray", "refused: the array file is not a regular file")
        if info.st_size > self.max_bytes + 65536:
            return Opaque("numpy.ndarray", f"refused: array file larger than {self.max_bytes} bytes")
        try:
            version = npy_format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = npy_format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = npy_format.read_array_header_2_0(f)
            else:
                return Opaque("numpy.ndarray", f"refused: .npy format version {version}")
        except (ValueError, OSError, SyntaxError, TypeError) as exc:
            return Opaque("numpy.ndarray", f"refused: not a valid .npy file ({str(exc)[:100]})")
        if dtype.hasobject or dtype.kind not in NUMERIC_KINDS:
            return Opaque("numpy.ndarray", f"refused: array of dtype {dtype} (numeric only)")
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes > self.max_bytes or nbytes != info.st_size - f.tell():
            return Opaque("numpy.ndarray", "refused: array header does not match its file or is too large")
        if not self.budget.take(nbytes):
            return Opaque("numpy.ndarray", f"refused: the values sent back for one request exceed the grader's "
                                           f"limit of {self.budget.total / 2**20:g} MB")
        f.seek(0)
        try:
            return np.load(f, allow_pickle=False)
        except (ValueError, OSError) as exc:
            return Opaque("numpy.ndarray", f"refused: {str(exc)[:100]}")


def _float(node: Any) -> float:
    if isinstance(node, dict) and node.get("$") == "float":
        return float({"nan": "nan", "inf": "inf", "-inf": "-inf"}[node["v"]])
    return float(node)
