"""Value trees <-> JSON for the grader: arrays as .npy files (never pickle), anything else as an opaque node."""

import math
import os

from numpy.lib import format as npy_format

from .frozen import np

# Taken before any student code runs, so patching numpy's attributes cannot reach the exchange.
_write_array, _load = npy_format.write_array, np.load
MAX_DEPTH = 32
MAX_ITEMS = 200_000
REPR_CHARS = 300
NUMERIC_KINDS = "biufc"


class Exchange:
    """Value trees <-> JSON, arrays as .npy files: read from `inbox`, written to `outbox`."""

    def __init__(self, inbox, outbox, max_array_bytes=256 * 2**20):
        self.inbox, self.outbox, self.count, self.max_array_bytes = inbox, outbox, 0, max_array_bytes
        self.resolver = None  # while decoding a call's arguments: reads {"$": "ref"} nodes

    def encode(self, value, fingerprints=False, depth=0, seen=None):
        """A value tree as JSON-able nodes, each array written to the outbox (or, `fingerprints`, summarised)."""
        seen = set() if seen is None else seen
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int) and not isinstance(value, np.integer):
            return int(value)
        if isinstance(value, float) and not isinstance(value, np.floating):
            return float(value) if math.isfinite(value) else {"$": "float", "v": repr(float(value))}
        if isinstance(value, np.generic) and value.dtype.kind in "biuf":
            return self.encode(value.item(), fingerprints, depth, seen)
        if is_array_sequence(value) and depth < MAX_DEPTH:
            # np.array([W1, W2, W3], dtype=object): read as the list of arrays it holds
            return [self.encode(v, fingerprints, depth + 1, seen) for v in value]
        if isinstance(value, (np.ndarray, np.generic)):
            return self._array(np.asarray(value), fingerprints)
        if depth >= MAX_DEPTH or id(value) in seen:
            return opaque(value, "nested too deeply or contains itself")
        if isinstance(value, (list, tuple, dict)) and len(value) <= MAX_ITEMS:
            seen = seen | {id(value)}
            if isinstance(value, dict):
                pairs = [[k, v] for k, v in list(value.items())]
                items = [[self.encode(x, fingerprints, depth + 1, seen) for x in pair] for pair in pairs]
                return {"$": "dict", "items": items}
            items = [self.encode(v, fingerprints, depth + 1, seen) for v in list(value)]
            return items if type(value) is list else {"$": "tuple", "items": items}
        return opaque(value)

    def _array(self, array, fingerprints):
        """{"$": "ndarray", "file"} of a numeric array written as .npy; a fingerprint or opaque node otherwise."""
        if array.dtype.kind not in NUMERIC_KINDS:
            return opaque(array, f"array of dtype {array.dtype} (only numeric arrays are read)")
        if fingerprints:
            return fingerprint(array)
        if array.nbytes > self.max_array_bytes:
            return opaque(array, f"an array of shape {array.shape}, larger than the grader reads "
                                 f"({self.max_array_bytes // 2**20} MB)")
        while True:  # student code may have planted files at the names this would use
            self.count += 1
            name = f"c{self.count}.npy"
            try:
                fd = os.open(os.path.join(self.outbox, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                break
            except FileExistsError:
                continue
        with os.fdopen(fd, "wb") as f:
            _write_array(f, np.ascontiguousarray(array), allow_pickle=False)
        return {"$": "ndarray", "file": name}

    def decode(self, node):
        """The value tree of the grader's JSON nodes, arrays read from the inbox without pickle."""
        if isinstance(node, list):
            return [self.decode(v) for v in node]
        if not isinstance(node, dict):
            return node
        tag = node.get("$")
        if tag == "float":
            return float(node["v"])
        if tag == "tuple":
            return tuple(self.decode(v) for v in node["items"])
        if tag == "dict":
            return {self.decode(k): self.decode(v) for k, v in node["items"]}
        if tag == "ndarray":
            name = os.path.basename(node["file"])
            return _load(os.path.join(self.inbox, name), allow_pickle=False)
        if tag == "repeated":
            return repeated(self.decode(node["base"]), int(node["n"]),
                            self.decode(node["head"]) if "head" in node else None)
        if tag == "ref" and self.resolver is not None:
            return self.resolver(node)
        raise ValueError(f"unknown value tag {tag!r}")


def repeated(base, n, head=None):
    """base (m, ...) repeated to n rows, then each row's first k values set to head (n, k) if given."""
    out = np.empty((n, *base.shape[1:]), dtype=base.dtype)
    for start in range(0, n, len(base)):
        out[start:start + len(base)] = base[:n - start]
    if head is not None:
        out.reshape(n, -1)[:, :head.shape[1]] = head
    return out


def opaque(value, why=None):
    """{"$": "opaque", type, repr}: a value the grader gets described, not read."""
    try:
        text = repr(value)[:REPR_CHARS]
    except BaseException as exc:  # a student's __repr__ may raise anything
        text = f"<unprintable: {type(exc).__name__}>"
    kind = type(value)
    return {"$": "opaque", "type": f"{kind.__module__}.{kind.__qualname__}", "repr": why or text}


def fingerprint(array):
    """An array as shape, dtype, sum, sum of squares and the index of its first non-zero entry."""
    nonzero = np.flatnonzero(array)
    magnitude = np.abs(array).astype(np.float64)  # float64: uint8 squares would wrap around
    total, squares = array.astype(np.complex128 if array.dtype.kind == "c" else np.float64).sum(), (
        magnitude * magnitude).sum()
    return {"$": "fingerprint", "shape": list(array.shape), "dtype": str(array.dtype),
            "sum": _number(total), "sum_sq": _number(squares),
            "first_nonzero": int(nonzero[0]) if nonzero.size else None}


def _number(x):
    x = complex(x).real if np.iscomplexobj(x) else float(x)
    return x if math.isfinite(x) else {"$": "float", "v": repr(x)}


def is_array_sequence(value):
    """A 1-d object ndarray holding arrays: how some students keep layers of different shapes."""
    return (isinstance(value, np.ndarray) and value.dtype == object and value.ndim == 1 and value.size <= 64
            and all(isinstance(v, np.ndarray) for v in value))
