"""The child side of the sandbox: runs a student's cells in one namespace and answers the grader's requests.

This is the only grader code that shares a process with student code. It uses the stdlib and numpy only and
is started as `python -I runner.py CONFIG_JSON` with a request pipe and an answer pipe (newline-delimited
JSON, one answer per request). Arrays travel as .npy files (never pickle) in the exchange directories:
the grader writes to `to_child`, this process writes to `from_child`.
"""

import ast
import builtins
import faulthandler
import importlib.machinery
import inspect
import json
import linecache
import math
import os
import random
import resource
import shutil
import signal
import socket
import sys
import time
import traceback
import types

import numpy as np
from numpy.lib import format as npy_format

RUNNER_FILE = os.path.abspath(__file__)
# Taken before any student code runs, so patching json/os/numpy attributes cannot reach the protocol.
_dumps, _loads, _write = json.dumps, json.loads, os.write
_write_array, _load = npy_format.write_array, np.load
_clock = time.perf_counter
MAX_DEPTH = 32
MAX_ITEMS = 200_000
REPR_CHARS = 300
TRACEBACK_CHARS = 20_000
NUMERIC_KINDS = "biufc"


class BoundedWriter:
    """A text stream keeping the first `limit` characters written and counting the rest."""

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, limit):
        self.limit, self.parts, self.kept, self.dropped = limit, [], 0, 0

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        room = self.limit - self.kept
        if room > 0:
            self.parts.append(text[:room])
            self.kept += min(room, len(text))
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        pass

    def isatty(self):
        return False

    def readable(self):
        return False

    def writable(self):
        return True

    def take(self):
        text = "".join(self.parts).encode("utf-8", "backslashreplace").decode("utf-8")
        dropped = self.dropped
        self.parts, self.kept, self.dropped = [], 0, 0
        return text, dropped


class Exchange:
    """Value trees <-> JSON, arrays as .npy files: read from `inbox`, written to `outbox`."""

    def __init__(self, inbox, outbox, max_array_bytes=256 * 2**20):
        self.inbox, self.outbox, self.count, self.max_array_bytes = inbox, outbox, 0, max_array_bytes
        self.resolver = None  # while decoding a call's arguments: reads {"$": "ref"} nodes

    def encode(self, value, fingerprints=False, depth=0, seen=None):
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
        if tag == "ref" and self.resolver is not None:
            return self.resolver(node)
        raise ValueError(f"unknown value tag {tag!r}")


def opaque(value, why=None):
    try:
        text = repr(value)[:REPR_CHARS]
    except BaseException as exc:  # a student's __repr__ may raise anything
        text = f"<unprintable: {type(exc).__name__}>"
    kind = type(value)
    return {"$": "opaque", "type": f"{kind.__module__}.{kind.__qualname__}", "repr": why or text}


def fingerprint(array):
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


def student_traceback(exc):
    """The traceback without this runner's frames: student file names and line numbers."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == RUNNER_FILE:
        tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    half = TRACEBACK_CHARS // 2
    return text if len(text) <= TRACEBACK_CHARS else text[:half] + "\n...\n" + text[-half:]


def error_of(exc):
    if isinstance(exc, SystemExit):
        kind, message = "exit", f"the code called sys.exit({exc.code!r})"
    elif isinstance(exc, MemoryError):
        kind, message = "memory", "MemoryError: ran out of memory (the sandbox limits the address space)"
    else:
        kind = "exception"
        try:
            message = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        except BaseException:
            message = type(exc).__name__
    return {"kind": kind, "message": message[:2000], "traceback": student_traceback(exc)}


NETWORK_MATRICES = ((784, 32), (32, 784), (32, 32), (32, 10), (10, 32))  # W1, W2, W3 in either orientation
NETWORK_BIASES = (32, 32, 10)
MAX_CONTAINER = 64  # a list or dict longer than this holds data, not the network
WALK_DEPTH = 6  # globals -> objects -> attributes -> ...: deep enough for layers of objects in dicts
MAX_NODES = 20_000  # a walk visits at most this many values
MAX_PATHS = 8  # ways to reach one array that are remembered


def statements_of(source, filename):
    """The top-level statements, each compiled alone with its real line numbers; None if it does not parse."""
    try:
        tree = ast.parse(source, filename)
        return [compile(ast.Module(body=[node], type_ignores=[]), filename, "exec", dont_inherit=True)
                for node in tree.body]
    except (SyntaxError, ValueError, OverflowError, RecursionError, MemoryError):
        return None


def is_array_sequence(value):
    """A 1-d object ndarray holding arrays: how some students keep layers of different shapes."""
    return (isinstance(value, np.ndarray) and value.dtype == object and value.ndim == 1 and value.size <= 64
            and all(isinstance(v, np.ndarray) for v in value))


def is_network_array(value):
    """A numeric array shaped like one of the network's weight matrices or bias vectors."""
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu" or value.ndim not in (1, 2):
        return False
    if value.ndim == 2 and value.shape in NETWORK_MATRICES:
        return True
    return value.size in (32, 10) and max(value.shape) == value.size


def _is_students(value):
    """Defined by the submission (its module is __main__), not by a library."""
    return getattr(value, "__module__", None) == "__main__"


def _children(value):
    """(step, child) pairs of a value the walk looks inside; steps are how `resolve` gets back there."""
    if isinstance(value, np.ndarray):
        return [(("i", i), v) for i, v in enumerate(value)] if is_array_sequence(value) else []
    if isinstance(value, (list, tuple)):
        return [(("i", i), v) for i, v in enumerate(value)] if len(value) <= MAX_CONTAINER else []
    if isinstance(value, dict):
        return [(("k", k), v) for k, v in list(value.items())] if len(value) <= MAX_CONTAINER else []
    if isinstance(value, types.FunctionType):
        if not _is_students(value):
            return []
        found = [(("d", i), v) for i, v in enumerate(value.__defaults__ or ())]
        found += [(("kd", k), v) for k, v in (value.__kwdefaults__ or {}).items()]
        for i, cell in enumerate(value.__closure__ or ()):
            try:
                found.append((("c", i), cell.cell_contents))
            except ValueError:  # an empty cell
                pass
        return found
    if isinstance(value, types.MethodType):
        return [(("self", None), value.__self__)]
    if isinstance(value, type):
        if not _is_students(value):
            return []
        return [(("a", k), v) for k, v in list(vars(value).items()) if not k.startswith("__")]
    if isinstance(value, types.ModuleType) or not _is_students(type(value)) and not isinstance(
            value, types.SimpleNamespace):
        return []
    try:
        attributes = dict(vars(value))
    except TypeError:  # __slots__
        attributes = {k: getattr(value, k) for k in getattr(type(value), "__slots__", ()) if hasattr(value, k)}
    return [(("a", k), v) for k, v in attributes.items() if isinstance(k, str)]


def network_arrays(ns):
    """Every network-shaped array reachable from the globals, by identity: [(array, [path, ...])] in the order
    first found. A path is a tuple of steps starting with ("g", name)."""
    found, budget = {}, [MAX_NODES]

    def walk(value, path, route):
        budget[0] -= 1
        if budget[0] < 0 or len(path) > WALK_DEPTH:
            return
        if is_network_array(value):
            paths = found.setdefault(id(value), (value, []))[1]
            if len(paths) < MAX_PATHS:
                paths.append(path)
            return
        if id(value) in route or isinstance(value, (str, bytes, int, float, complex, bool)) or value is None:
            return
        try:
            children = _children(value)
        except Exception:  # a student's __getattr__ or property may raise anything
            return
        route = route | {id(value)}
        for step, child in children:
            walk(child, path + (step,), route)

    for name, value in list(ns.items()):
        if not name.startswith("__") and not isinstance(value, types.ModuleType):
            walk(value, (("g", name),), frozenset())
    return list(found.values())


def is_complete_network(arrays):
    """True when the arrays include the three weight matrices and the three biases of 784-32-32-10."""
    shapes = [a.shape for a in arrays]
    matrices = [frozenset(s) for s in shapes if len(s) == 2 and min(s) > 1]
    biases = [max(s) for s in shapes if min(s, default=0) <= 1 or len(s) == 1]
    return (all(m in matrices for m in (frozenset((784, 32)), frozenset((32,)), frozenset((32, 10))))
            and biases.count(32) >= 2 and biases.count(10) >= 1)


def resolve(ns, path):
    """The value at a path (raises LookupError, AttributeError, IndexError, ... when it is gone)."""
    value = ns[path[0][1]]
    for kind, key in path[1:]:
        if kind in ("i", "k"):
            value = value[key]
        elif kind == "a":
            value = getattr(value, key)
        elif kind == "d":
            value = value.__defaults__[key]
        elif kind == "kd":
            value = value.__kwdefaults__[key]
        elif kind == "c":
            value = value.__closure__[key].cell_contents
        else:
            value = value.__self__
    return value


def assign(ns, path, new):
    """Put `new` at a path, rebuilding a tuple on the way if one holds it; False if that is impossible."""
    if len(path) == 1:
        ns[path[0][1]] = new
        return True
    parent = resolve(ns, path[:-1])
    kind, key = path[-1]
    if kind in ("i", "d") and isinstance(parent, tuple) or kind == "d":
        items = list(parent.__defaults__ if kind == "d" else parent)
        items[key] = new
        if kind == "d":
            parent.__defaults__ = tuple(items)
            return True
        return assign(ns, path[:-1], type(parent)(items) if type(parent) is tuple else tuple(items))
    if kind in ("i", "k"):
        parent[key] = new
    elif kind == "a":
        setattr(parent, key, new)
    elif kind == "kd":
        parent.__kwdefaults__[key] = new
    elif kind == "c":
        parent.__closure__[key].cell_contents = new
    else:
        return False
    return True


def path_key(path):
    """A path for the grader: [global, key, ...], attributes and keys as they are (str/int), else their repr."""
    keys = []
    for kind, key in path:
        if kind in ("d", "kd", "c", "self"):
            keys.append({"d": "__defaults__", "kd": "__kwdefaults__", "c": "__closure__", "self": "__self__"}[kind])
            if key is not None:
                keys.append(key if isinstance(key, (int, str)) else repr(key))
        else:
            keys.append(key if isinstance(key, (int, str)) and not isinstance(key, bool) else repr(key))
    return keys


def path_text(path):
    """("g", "layers"), ("i", 0), ("a", "W") -> "layers[0].W"."""
    text = ""
    for kind, key in path:
        if kind == "g":
            text = key
        elif kind in ("i", "k"):
            text += f"[{key!r}]"
        elif kind == "a":
            text += f".{key}"
        elif kind == "d":
            text += f".__defaults__[{key}]"
        elif kind == "kd":
            text += f".__kwdefaults__[{key!r}]"
        elif kind == "c":
            text += f".__closure__[{key}]"
        else:
            text += ".__self__"
    return text


class NetworkMap:
    """The student's own network arrays, found by identity; the grader writes into them in place.

    Each entry is one array the network holds (W1, b2, ...), with every path that reaches it. Values are set
    with `arr[...] = value` into every object found at those paths, so that any alias (a list built from
    layer objects, a default argument, a closure) sees them; a path is rebound only where it holds something
    that cannot take the value. After a call, an entry whose path now holds a new object was rebound by the
    student's code (`W = W - lr * g`): that object is the update.
    """

    def __init__(self, arrays):
        self.entries = [{"paths": list(paths), "objects": [array]} for array, paths in arrays]
        self.written = {}  # index -> ids of the objects the grader last wrote into

    def merge(self, arrays):
        """Add the paths and arrays of a later walk: same object, or found at a known path (rebound)."""
        by_id = {id(a): (a, paths) for a, paths in arrays}
        for entry in self.entries:
            for obj in list(entry["objects"]):
                if id(obj) in by_id:
                    self._extend(entry, *by_id.pop(id(obj)))
        for entry in self.entries:
            for array, paths in list(by_id.values()):
                if any(p in entry["paths"] for p in paths):
                    self._extend(entry, array, paths)
                    by_id.pop(id(array))
        self.entries += [{"paths": list(paths), "objects": [a]} for a, paths in by_id.values()]

    @staticmethod
    def _extend(entry, array, paths):
        room = MAX_PATHS - len(entry["paths"])
        entry["paths"] += [p for p in paths if p not in entry["paths"]][:max(room, 0)]
        if all(o is not array for o in entry["objects"]):
            entry["objects"] = entry["objects"][:1] + entry["objects"][1:][-2:] + [array]

    def current(self, ns, index):
        """The objects now at the entry's paths (first path first), then those it held before."""
        found = []
        for path in self.entries[index]["paths"]:
            try:
                obj = resolve(ns, path)
            except Exception:
                continue
            if all(obj is not o for o in found):
                found.append(obj)
        return found

    def describe(self, ns, encode):
        """[{index, paths, texts, value}] for the grader: each entry's current value, encoded."""
        described = []
        for i, entry in enumerate(self.entries):
            now = self.current(ns, i) or entry["objects"][:1]
            described.append({"index": i, "paths": [path_key(p) for p in entry["paths"]],
                              "texts": [path_text(p) for p in entry["paths"]], "value": encode(now[0])})
        return described

    def write(self, ns, index, value):
        """Write the grader's value into the student's own arrays for entry `index`, in place."""
        entry, written = self.entries[index], []
        for obj in self.current(ns, index) + entry["objects"]:
            if any(obj is w for w in written):
                continue
            if isinstance(obj, np.ndarray) and obj.shape == value.shape and obj.dtype.kind in "fc":
                if not obj.flags.writeable:
                    try:
                        obj.setflags(write=True)
                    except ValueError:
                        continue
                obj[...] = value
                written.append(obj)
        for path in entry["paths"]:  # a path holding something else (a rebound list, a wrong shape): rebind it
            try:
                obj = resolve(ns, path)
            except Exception:
                continue
            if all(obj is not w for w in written):
                fresh = np.array(value)
                if assign(ns, path, fresh):
                    written.append(fresh)
        entry["objects"] = [o for o in entry["objects"] if any(o is w for w in written)] or entry["objects"]
        self.written[index] = written

    def read(self, ns, index):
        """(value after a call, texts of the paths the student rebound) for entry `index`."""
        written = self.written.get(index, ())
        rebound, value = [], None
        for path in self.entries[index]["paths"]:
            try:
                obj = resolve(ns, path)
            except Exception:
                continue
            if all(obj is not w for w in written):
                rebound.append(path_text(path))
                value = obj if value is None else value
        if value is None:
            now = self.current(ns, index)
            value = now[0] if now else (written[0] if written else self.entries[index]["objects"][0])
        return value, rebound


def sample_key(value):
    """[sum, sum of squares, index of the first non-zero] of a sample, enough to tell the grader's samples
    apart; None if it is not an array of numbers."""
    try:
        flat = np.asarray(value).reshape(-1)
        if flat.dtype.kind not in "biuf" or flat.size > 10_000:
            return None
        nonzero = np.flatnonzero(flat)
        flat = flat.astype(np.float64)
        return [float(flat.sum()), float(flat @ flat), int(nonzero[0]) if nonzero.size else -1]
    except Exception:
        return None


def names_used_by_functions(ns):
    """Every global name the student's functions mention (a leftover loop variable is not an alias)."""
    functions = [v for v in ns.values() if isinstance(v, types.FunctionType)]
    functions += [f for v in ns.values() if isinstance(v, type) and _is_students(v)
                  for f in vars(v).values() if isinstance(f, types.FunctionType)]
    names, stack = set(), [f.__code__ for f in functions]
    while stack:
        code = stack.pop()
        names.update(code.co_names)
        stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return names


class StepTracer:
    """Records the numeric arrays a call computes in the submission's own frames: after each line, every array
    local (and every array one level inside a local dict, list or `self`) that is new, rebound or changed in
    place, with the line that did it; and arrays a submission function returns. Bounded: at most `budget`
    numbers in all, `max_records` records, `max_events` line events and `max_seconds` (after which the call goes
    on untraced); the network's own arrays are skipped."""

    def __init__(self, filenames, lines, skip_ids, budget=400_000, max_records=400, max_events=20_000,
                 max_array=100_000, max_seconds=0.5):
        self.filenames, self.lines, self.skip_ids = frozenset(filenames), lines, skip_ids
        self.budget, self.max_records, self.max_events, self.max_array = budget, max_records, max_events, max_array
        self.records, self.frames, self.events, self.truncated = [], {}, 0, False
        self.deadline = _clock() + max_seconds

    def global_trace(self, frame, event, arg):
        # An exception escaping a trace function would surface in the student's code: none may escape.
        try:
            if event != "call" or frame.f_code.co_filename not in self.filenames or self.full():
                return None
            self.frames[id(frame)] = [frame.f_lineno, {}]
            self.observe(frame, frame.f_lineno)
        except Exception:
            self.truncated, self.events = True, self.max_events
            return None
        return self.local_trace

    def local_trace(self, frame, event, arg):
        state = self.frames.get(id(frame))
        if state is None or self.full():
            return None
        try:
            if event in ("line", "return"):
                self.events += 1
                self.observe(frame, state[0])
                state[0] = frame.f_lineno
            if event == "return":
                self.frames.pop(id(frame), None)
                values = arg if isinstance(arg, tuple) and len(arg) <= 16 else (arg,)
                for i, value in enumerate(values):
                    name = "return" if len(values) == 1 else f"return[{i}]"
                    if self.wanted(value):
                        self.record(frame, name, frame.f_lineno, value)
        except Exception:  # a student's object broke the walk: stop tracing, keep what was recorded
            self.truncated, self.events = True, self.max_events
            return None
        return self.local_trace

    def full(self):
        if self.events >= self.max_events or self.budget <= 0 or len(self.records) >= self.max_records:
            return True
        if _clock() > self.deadline:
            self.truncated, self.events = True, self.max_events
            return True
        return False

    def wanted(self, value):
        return (type(value) is np.ndarray or isinstance(value, np.ndarray)) and value.dtype.kind in "biuf" \
            and 0 < value.size <= self.max_array and id(value) not in self.skip_ids \
            and id(value.base) not in self.skip_ids

    def arrays_of(self, frame):
        """[(path, array)] of the frame's locals, one level deep into dicts, lists, tuples and `self`."""
        found = []
        for name, value in list(frame.f_locals.items()):
            self.collect(name, value, found, 2, name == "self")
        return [(p, v) for p, v in found if self.wanted(v)]

    def collect(self, path, value, found, depth, attributes=False):
        if isinstance(value, np.ndarray):
            found.append((path, value))
        elif depth <= 0:
            return
        elif isinstance(value, dict) and len(value) <= 64:
            for k, v in list(value.items()):
                if isinstance(k, (str, int)):
                    self.collect(f"{path}[{k!r}]", v, found, depth - 1)
        elif isinstance(value, (list, tuple)) and len(value) <= 64:
            for i, v in enumerate(value):
                self.collect(f"{path}[{i}]", v, found, depth - 1)
        elif attributes:
            fields = getattr(value, "__dict__", None)
            if isinstance(fields, dict) and len(fields) <= 64:
                for k, v in list(fields.items()):
                    if isinstance(k, str):
                        self.collect(f"{path}.{k}", v, found, depth - 1)

    def observe(self, frame, line):
        """Record what changed since the frame's last event, as assigned by `line`."""
        seen = self.frames[id(frame)][1]
        for path, value in self.arrays_of(frame):
            before = seen.get(path)
            if before is not None and before[0] is value and np.array_equal(before[1], value):
                continue
            seen[path] = (value, self.record(frame, path, line, value))
            if self.full():
                self.truncated = True
                return

    def record(self, frame, name, line, value):
        copy = np.array(np.asarray(value), copy=True)
        self.budget -= copy.size
        text = self.lines.get(frame.f_code.co_filename, [])
        source = text[line - 1].strip() if 0 < line <= len(text) else ""
        self.records.append({"name": str(name)[:100], "function": frame.f_code.co_name[:100], "line": int(line),
                             "file": frame.f_code.co_filename[:200], "source": source[:300], "value": copy})
        return copy


class Runner:
    def __init__(self, config):
        self.config = config
        self.exchange = Exchange(config["inbox"], config["outbox"],
                                 config.get("max_array_bytes", 256 * 2**20))
        self.limit = config["output_chars"]
        self.out, self.err = BoundedWriter(self.limit), BoundedWriter(self.limit)
        self.ns = {"__name__": "__main__", "__builtins__": builtins}
        self.lines = {}
        self.snapshotted = not config.get("snapshot", True)
        self.network = None  # NetworkMap: the network's arrays, from the first statement after which it is complete
        self.pid = os.getpid()

    def guarded(self, thunk):
        """Run student code with bounded stdout/stderr; -> (value, error, stdout, stderr)."""
        sys.stdout, sys.stderr = self.out, self.err
        value, error = None, None
        try:
            value = thunk()
        except BaseException as exc:  # student code may raise anything, SystemExit included
            error = error_of(exc)
        finally:
            if os.getpid() != self.pid:  # a fork() in student code returned here in the child: end it
                os._exit(0)
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        return value, error, self.out.take(), self.err.take()

    def register_lines(self, filename, source, first_line):
        lines = self.lines.setdefault(filename, [])
        new = source.split("\n")
        needed = first_line - 1 + len(new)
        lines.extend(["\n"] * (needed - len(lines)))
        lines[first_line - 1:needed] = [ln + "\n" for ln in new]
        linecache.cache[filename] = (sum(map(len, lines)), None, lines, filename)

    def op_run_cell(self, req):
        filename, first_line = req["filename"], req["first_line"]
        self.register_lines(filename, req["source"], first_line)
        source = "\n" * (first_line - 1) + req["source"]
        answer = {"snapshot": None}
        statements = statements_of(source, filename)

        def run():
            if statements is None:  # does not parse: compiling it raises the SyntaxError, as Jupyter would
                exec(compile(source, filename, "exec", dont_inherit=True), self.ns)
            # One statement at a time, so that a cell which initialises and then trains is recorded in between;
            # the first error ends the cell, as in Jupyter.
            for statement in statements or ():
                exec(statement, self.ns)
                self.note_initialisation(answer)

        _, error, (out, out_dropped), (err, err_dropped) = self.guarded(run)
        answer.update(error=error, stdout=out, stdout_dropped=out_dropped, stderr=err, stderr_dropped=err_dropped)
        self.note_initialisation(answer)
        return answer

    def note_initialisation(self, answer):
        """Find the network's arrays the first time they are all there, and send their values then (Q1);
        after that, follow them: new names for the same arrays, and arrays rebound at the same names."""
        try:
            arrays = network_arrays(self.ns)
        except Exception:  # a student's object may break the walk; try again after the next statement
            return
        if self.network is not None:
            self.network.merge(arrays)
            return
        if not is_complete_network([a for a, _ in arrays]):
            return
        self.network = NetworkMap(arrays)  # also on a replay after a restart, where no snapshot is wanted
        if not self.snapshotted:
            self.snapshotted = True
            answer["snapshot"] = self.network.describe(self.ns, self.exchange.encode)

    def op_network(self, req):
        """The network's arrays now (the ones found at the initialisation, and any found since), with paths,
        and the global names the student's functions use."""
        arrays = network_arrays(self.ns)
        if self.network is None:
            self.network = NetworkMap(arrays)
        else:
            self.network.merge(arrays)
        return {"entries": self.network.describe(self.ns, self.exchange.encode),
                "used_names": sorted(n for n in names_used_by_functions(self.ns) if isinstance(n, str))}

    def op_namespace(self, req):
        return {"symbols": {name: describe(value) for name, value in list(self.ns.items())
                            if not name.startswith("__")}}

    def op_get(self, req):
        return {"values": {n: self.exchange.encode(self.ns[n]) for n in req["names"] if n in self.ns}}

    def op_call(self, req):
        name = req["function"]
        set_globals = self.exchange.decode(req.get("set_globals", {"$": "dict", "items": []}))
        for global_name, value in set_globals.items():
            self.ns[global_name] = value
        set_params = self.exchange.decode(req.get("set_params", {"$": "dict", "items": []}))
        for index, value in set_params.items():
            self.network.write(self.ns, int(index), value)
        self.exchange.resolver = self.resolve_reference  # arguments may be the student's own objects
        try:
            args = list(self.exchange.decode(req.get("args", [])))
            kwargs = self.exchange.decode(req.get("kwargs", {"$": "dict", "items": []}))
        finally:
            self.exchange.resolver = None
        function = self.ns.get(name)
        recorded, originals = [], {}
        for target in req.get("record", []):
            if callable(self.ns.get(target)):
                originals[target] = self.ns[target]
                self.ns[target] = self.recorder(target, originals[target], recorded, bool(req.get("compact")))

        tracer = self.tracer() if req.get("trace") else None

        def call():
            if not callable(function):
                raise NameError(f"name {name!r} is not defined as a function")
            if tracer is None:
                return function(*args, **kwargs)
            sys.settrace(tracer.global_trace)
            try:
                return function(*args, **kwargs)
            finally:
                sys.settrace(None)

        try:
            value, error, (out, out_dropped), (err, err_dropped) = self.guarded(call)
        finally:
            self.ns.update(originals)
        answer = {"error": error, "stdout": out, "stdout_dropped": out_dropped, "stderr": err,
                  "stderr_dropped": err_dropped, "recorded": recorded,
                  "globals": {n: self.exchange.encode(self.ns[n]) for n in req.get("get_globals", [])
                              if n in self.ns}}
        answer["value"] = None if error else self.exchange.encode(value)
        if tracer is not None:
            answer["trace"] = {"truncated": tracer.truncated, "events": tracer.events,
                               "records": [{**r, "value": self.exchange.encode(r["value"])} for r in tracer.records]}
        answer["params"] = {}
        for index in req.get("get_params", []):
            after, rebound = self.network.read(self.ns, int(index))
            answer["params"][str(int(index))] = {"value": self.exchange.encode(after), "rebound": rebound}
        return answer

    def tracer(self):
        """A StepTracer over the submission's own code, skipping the network's arrays (the grader knows them)."""
        skip = set()
        for i, entry in enumerate(self.network.entries if self.network is not None else ()):
            skip.update(id(o) for o in self.network.current(self.ns, i) + entry["objects"])
        lines = {f: list(text) for f, text in self.lines.items()}
        return StepTracer(self.lines, lines, skip)

    def resolve_reference(self, node):
        """{"$": "ref", "global": name} -> the student's global; {"$": "ref", "entry": i} -> the network's array."""
        if "global" in node:
            return self.ns[node["global"]]
        now = self.network.current(self.ns, int(node["entry"]))
        return now[0] if now else self.network.entries[int(node["entry"])]["objects"][0]

    def recorder(self, name, original, log, compact=False):
        """A stand-in for the student's step that logs each call, then runs the step. `compact`: log only the
        sample's [sum, sum of squares, first non-zero index] and run the real step only once, returning its
        first result after that, so that a loop over 60,000 samples costs little more than its bookkeeping."""
        try:
            signature = inspect.signature(original)
        except (TypeError, ValueError):
            signature = None
        first = []

        def record(*args, **kwargs):
            if compact:
                log.append(sample_key(args[0] if args else next(iter(kwargs.values()), None)))
                if not first:
                    try:
                        first.append(original(*args, **kwargs))
                    except Exception:
                        first.append(None)
                return first[0]
            try:
                bound = signature.bind(*args, **kwargs)
                bound.apply_defaults()
                arguments = dict(bound.arguments)
            except (AttributeError, TypeError):
                arguments = {"*args": args, "**kwargs": kwargs}
            encoded = {k: self.exchange.encode(v, fingerprints=True) for k, v in arguments.items()}
            log.append({"function": name, "arguments": encoded})
            # Then the student's own step, so that a loop using its return value goes on; if it raises, the
            # loop is what is being recorded, not the step: carry on as if it had returned None.
            try:
                return original(*args, **kwargs)
            except Exception:
                return None

        return record

    def serve(self, requests, answers):
        for line in requests:
            req = {}
            try:
                req = _loads(line)
                answer = getattr(self, "op_" + req["op"])(req) if req["op"] != "exit" else {}
            except Exception as exc:  # the runner's own failure (e.g. student code broke json): say so
                answer = {"protocol_error": f"{type(exc).__name__}: {exc}"[:2000]}
            answer["id"] = req.get("id")
            try:
                send(answers, answer)
            except Exception as exc:  # e.g. a builtin json needs was replaced: say so without json
                send_failure(answers, req.get("id"), exc)
            if req.get("op") == "exit":
                break


def describe(value):
    kind = type(value)
    info = {"type_name": f"{kind.__module__}.{kind.__qualname__}"}
    if isinstance(value, types.FunctionType):
        info.update(kind="function", signature=signature_of(value))
    elif isinstance(value, type):
        info["kind"] = "class"
    elif isinstance(value, types.ModuleType):
        info["kind"] = "module"
    elif isinstance(value, np.ndarray):
        info.update(kind="ndarray", shape=list(value.shape), dtype=str(value.dtype))
    elif isinstance(value, (list, tuple, dict)):
        info.update(kind=kind.__name__ if kind in (list, tuple, dict) else "object", length=len(value))
    elif value is None or isinstance(value, (bool, int, float, complex, str, bytes, set, np.generic)):
        scalar = "scalar" if isinstance(value, np.generic) else kind.__name__
        info["kind"] = "none" if value is None else scalar
    elif callable(value):
        info.update(kind="callable", signature=signature_of(value))
    else:
        info["kind"] = "object"
    return info


def signature_of(function):
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return None
    return [{"name": p.name, "kind": p.kind.name, "has_default": p.default is not p.empty,
             "default_repr": None if p.default is p.empty else opaque(p.default)["repr"]} for p in parameters]


def send(stream, answer):
    data = (_dumps(answer, ensure_ascii=True, allow_nan=False) + "\n").encode("ascii")
    view = memoryview(data)
    while view:
        view = view[_write(stream, view):]


def send_failure(stream, request_id, exc):
    """A protocol_error answer built by hand (only str operations), for when json itself is broken."""
    safe = "".join(c for c in f"{type(exc).__name__}: {exc}"[:200] if c.isalnum() or c in " .:_-")
    ident = "".join(c for c in str(request_id) if c.isalnum() or c == "-")
    line = '{"id": "' + ident + '", "protocol_error": "cannot encode the answer: ' + safe + '"}\n'
    _write(stream, line.encode("ascii", "replace"))


class _NoShowPyplot:
    """Meta-path hook: when the student imports matplotlib.pyplot, make plt.show a no-op."""

    def find_spec(self, name, path=None, target=None):
        if name != "matplotlib.pyplot":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            execute = spec.loader.exec_module

            def exec_module(module):
                execute(module)
                module.show = lambda *args, **kwargs: None

            spec.loader.exec_module = exec_module
        return spec


class _QuietIPython:
    """What get_ipython() returns: every method exists and does nothing."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def _no_input(prompt=""):
    raise EOFError("input() is not available while grading (no stdin)")


def _display(*objects, **kwargs):
    for obj in objects:
        print(repr(obj))


def _offer_mnist_file(folder):
    """The grader's images as ./mnist.npz too (keras' layout), for a student who np.load()s the file directly:
    a link to the read-only file the grader made, whatever its size (a copy would fill the working folder)."""
    made = os.path.join(folder, "mnist.npz")
    if os.path.isfile(made):
        try:
            os.symlink(made, "mnist.npz")
            return
        except OSError:
            pass
    try:
        arrays = {n: np.load(os.path.join(folder, f"{n}.npy"), allow_pickle=False)
                  for n in ("x_train", "y_train", "x_test", "y_test")}
    except OSError:
        return
    try:
        np.savez("mnist.npz", **arrays)
    except OSError:
        pass


def prepare_environment(config):
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an over-long write fails with EFBIG instead of killing
    faulthandler.enable(file=sys.__stderr__)
    sys.path.insert(0, config["shims"])
    sys.meta_path.insert(0, _NoShowPyplot())
    sys.argv = [config["argv0"]]
    os.chdir(config["scratch"])
    if config.get("mpl_cache") and os.path.isdir(config["mpl_cache"]):
        target = os.path.join(config["scratch"], ".matplotlib")
        shutil.copytree(config["mpl_cache"], target, dirs_exist_ok=True)
    _offer_mnist_file(os.environ.get("GRADER_SANDBOX_DATA", ""))
    np.random.seed(0)
    random.seed(0)
    builtins.input = _no_input
    builtins.get_ipython = lambda: _QuietIPython()
    builtins.display = _display


def probe(config):
    """What the child can see and do, reported before any student code runs (the grader checks it)."""
    report = {"uid": os.getuid(), "gid": os.getgid(), "groups": sorted(os.getgroups()), "pid": os.getpid()}
    try:
        with open(config["probe_secret"], "rb") as f:
            report["secret_readable"] = bool(f.read(1) or True)
    except OSError:
        report["secret_readable"] = False
    report["grader_visible"] = os.path.exists(f"/proc/{config['grader_pid']}")
    report["hidden_visible"] = [p for p, allowed in config["hidden"].items() if _visible(p, allowed)]
    report["interfaces"] = [name for _, name in socket.if_nameindex()]
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: only asks the kernel for a route
        report["network_route"] = True
    except OSError:
        report["network_route"] = False
    report.update(_privileges())
    report["userns_blocked"] = _user_namespace_blocked()
    report["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    report["root_entries"] = _listing("/")
    report["etc_entries"] = _listing("/etc") if os.path.isdir("/etc") else []
    report["mounts"] = _writable_mounts()
    info = os.stat(config["outbox"])
    report["outbox_id"] = [info.st_dev, info.st_ino]
    return report


def _privileges():
    """The capability sets and the no-new-privileges flag, as the kernel reports them for this process."""
    found = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("CapPrm", "CapEff", "CapInh", "CapAmb"):
                    found[key.lower()] = int(value.strip(), 16)
                elif key == "NoNewPrivs":
                    found["no_new_privs"] = value.strip() == "1"
    except (OSError, ValueError):
        pass
    return found


def _listing(path):
    try:
        return sorted(os.listdir(path))
    except OSError as exc:
        return [f"<{path} unreadable: {exc.strerror}>"]


def _user_namespace_blocked():
    """True if a user namespace cannot be made here (tried in a single-threaded fork, as unshare needs)."""
    import ctypes

    pid = os.fork()
    if pid == 0:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            os._exit(0 if libc.unshare(0x10000000) == 0 else 1)  # CLONE_NEWUSER
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 1


def _writable_mounts():
    """[mount point, type, mount options, superblock options] of every read-write mount this process sees."""
    found = []
    try:
        with open("/proc/self/mountinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return found
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) >= 6 and len(tail) >= 3 and "rw" in fields[5].split(","):
            point = fields[4].encode().decode("unicode_escape")
            found.append([point, tail[0], fields[5], tail[2]])
    return found


def _visible(path, allowed):
    try:
        if os.path.isdir(path):
            return bool(set(os.listdir(path)) - set(allowed))
        with open(path, "rb") as f:
            return bool(f.read(1))
    except OSError:
        return False


def main():
    config = json.loads(sys.argv[1])
    requests = os.fdopen(config["request_fd"], "rb")
    answers = config["answer_fd"]
    report = probe(config)
    if config.get("nproc"):  # after the probe's own fork; counted in the sandbox's user namespace: its processes
        resource.setrlimit(resource.RLIMIT_NPROC, (config["nproc"], config["nproc"]))
    report["nproc"] = resource.getrlimit(resource.RLIMIT_NPROC)[0]
    send(answers, {"id": "hello", "probe": report})
    prepare_environment(config)
    Runner(config).serve(requests, answers)
    sys.stdout.flush()
    os._exit(0)  # do not wait for threads the student left running


if __name__ == "__main__":
    main()
