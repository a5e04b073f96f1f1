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
import traceback
import types

import numpy as np
from numpy.lib import format as npy_format

RUNNER_FILE = os.path.abspath(__file__)
# Taken before any student code runs, so patching json/os/numpy attributes cannot reach the protocol.
_dumps, _loads, _write = json.dumps, json.loads, os.write
_write_array, _load = npy_format.write_array, np.load
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


NETWORK_MATRICES = ({784, 32}, {32}, {32, 10})  # the dimensions of W1, W2, W3 in either orientation
NETWORK_BIASES = (32, 32, 10)
MAX_HOLDER_SIZE = 200_000  # elements; a global this large holds data, not the network


def statements_of(source, filename):
    """The top-level statements, each compiled alone with its real line numbers; None if it does not parse."""
    try:
        tree = ast.parse(source, filename)
        return [compile(ast.Module(body=[node], type_ignores=[]), filename, "exec", dont_inherit=True)
                for node in tree.body]
    except (SyntaxError, ValueError, OverflowError, RecursionError, MemoryError):
        return None


def network_holders(ns):
    """The globals that together hold the whole network's arrays (three matrices, three biases), or ()."""
    holders, matrices, biases = [], [], []
    for name, value in ns.items():
        if name.startswith("_") or isinstance(value, (types.ModuleType, types.FunctionType, type)):
            continue
        arrays = arrays_in(value)
        if not arrays or sum(a.size for a in arrays) > MAX_HOLDER_SIZE:
            continue
        found = [a for a in arrays if a.ndim == 2 and set(a.shape) in NETWORK_MATRICES]
        found_b = [a for a in arrays if a.size in NETWORK_BIASES and max(a.shape, default=0) == a.size]
        if found or found_b:
            holders.append(name)
            matrices += [frozenset(a.shape) for a in found]
            biases += [a.size for a in found_b]
    complete = all(m in matrices for m in map(frozenset, NETWORK_MATRICES))
    enough = all(biases.count(n) >= NETWORK_BIASES.count(n) for n in set(NETWORK_BIASES))
    return tuple(holders) if complete and enough else ()


def is_array_sequence(value):
    """A 1-d object ndarray holding arrays: how some students keep layers of different shapes."""
    return (isinstance(value, np.ndarray) and value.dtype == object and value.ndim == 1 and value.size <= 64
            and all(isinstance(v, np.ndarray) for v in value))


def assign_global(ns, name, value):
    """Set a global, keeping the identity of the list, dict or object array it replaces where the shape allows,
    since the student's own objects may share it (`net.W is weights`, `def f(..., weights=weights)`)."""
    old = ns.get(name)
    if type(old) is list and type(value) is list and len(old) == len(value):
        old[:] = value
    elif type(old) is dict and type(value) is dict and list(old) == list(value):
        old.update(value)
    elif is_array_sequence(old) and isinstance(value, list) and len(old) == len(value):
        for i, item in enumerate(value):
            old[i] = item
    else:
        ns[name] = value


def arrays_in(value, depth=0):
    """The numeric arrays inside a list/tuple/dict tree (np.matrix and object arrays of arrays included)."""
    if is_array_sequence(value) and depth < 4:
        return [a for v in value for a in arrays_in(v, depth + 1)]
    if isinstance(value, np.ndarray):
        return [value] if value.dtype.kind in NUMERIC_KINDS else []
    if depth < 4 and isinstance(value, (list, tuple)):
        return [a for v in value for a in arrays_in(v, depth + 1)]
    if depth < 4 and isinstance(value, dict):
        return [a for v in value.values() for a in arrays_in(v, depth + 1)]
    return []


def holds_network(weights, biases):
    """True once weights holds three matrices and biases three arrays: the initialisation is complete.

    Checked after every statement, so that `weights = []` followed by appends in a loop is recorded
    when the loop has finished, not while the lists are still empty.
    """
    matrices = [a for a in arrays_in(weights) if a.ndim == 2 and min(a.shape) > 1]
    return len(matrices) >= 3 and len(arrays_in(biases)) >= 3


def find_aliases(ns, holders):
    """Globals that are the very arrays in weights/biases (`weights = [W1, W2, W3]`): name -> (holder, key)."""
    aliases = {}
    for holder in holders:
        container = ns.get(holder)
        sequence = isinstance(container, (list, tuple)) or is_array_sequence(container)
        items = container.items() if isinstance(container, dict) else (enumerate(container) if sequence else ())
        for key, item in items:
            if not isinstance(item, np.ndarray):
                continue
            for name, value in ns.items():
                if value is item and name not in holders and not name.startswith("_"):
                    aliases[name] = (holder, key)
    return aliases


def names_used_by_functions(ns):
    """Every global name the student's functions mention (a leftover loop variable is not an alias)."""
    names, stack = set(), [v.__code__ for v in ns.values() if isinstance(v, types.FunctionType)]
    while stack:
        code = stack.pop()
        names.update(code.co_names)
        stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return names


def bind_aliases(ns, aliases, set_globals):
    """After the grader sets weights/biases, point their aliases at the new arrays: {alias: array bound}."""
    bound = {}
    for alias, (holder, key) in aliases.items():
        if holder in set_globals:
            try:
                ns[alias] = bound[alias] = ns[holder][key]
            except (KeyError, IndexError, TypeError):
                pass
    return bound


def sync_rebound_aliases(ns, aliases, bound):
    """A student who rebinds an alias (`W1 = W1 - lr * g`) updated the network: put it back in its holder."""
    for alias, array in bound.items():
        holder, key = aliases[alias]
        container = ns.get(holder)
        try:
            still_there = container[key] is array
        except (KeyError, IndexError, TypeError):
            continue
        if still_there and ns.get(alias) is not array:
            if isinstance(container, tuple):
                ns[holder] = tuple(ns[alias] if i == key else v for i, v in enumerate(container))
            else:
                container[key] = ns[alias]


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
        self.initialised = False  # weights and biases hold the whole network
        self.holders_recorded = False  # the network, complete under other names, was recorded
        self.alias_candidates = {}  # global name -> (holder, key): the same array as weights[key] at init
        self.aliases = {}  # those of them that the student's functions use
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
        if self.alias_candidates:  # kept only for names the functions (defined so far) use
            used = names_used_by_functions(self.ns)
            self.aliases = {a: place for a, place in self.alias_candidates.items() if a in used}
            answer["aliases"] = {alias: [holder, repr(key)] for alias, (holder, key) in self.aliases.items()}
        return answer

    def note_initialisation(self, answer):
        """Record weights/biases (or the network under other names) the first time they are complete."""
        if not self.initialised and holds_network(self.ns.get("weights"), self.ns.get("biases")):
            self.initialised = True  # also on a replay after a restart, where no snapshot is wanted
            self.alias_candidates = find_aliases(self.ns, ("weights", "biases"))
            if not self.snapshotted:
                self.snapshotted = True
                answer["snapshot"] = {n: self.exchange.encode(self.ns[n]) for n in ("weights", "biases")}
        elif not self.snapshotted and not self.holders_recorded:
            holders = network_holders(self.ns)  # layers kept under other names: params, layers, W1..b3
            if holders:  # used by the grader only if weights/biases never come to hold the network
                self.holders_recorded = True
                answer["holders_snapshot"] = {n: self.exchange.encode(self.ns[n]) for n in holders}

    def op_namespace(self, req):
        return {"symbols": {name: describe(value) for name, value in list(self.ns.items())
                            if not name.startswith("__")}}

    def op_get(self, req):
        return {"values": {n: self.exchange.encode(self.ns[n]) for n in req["names"] if n in self.ns}}

    def op_call(self, req):
        name = req["function"]
        args = list(self.exchange.decode(req.get("args", [])))
        kwargs = self.exchange.decode(req.get("kwargs", {"$": "dict", "items": []}))
        set_globals = self.exchange.decode(req.get("set_globals", {"$": "dict", "items": []}))
        for global_name, value in set_globals.items():
            assign_global(self.ns, global_name, value)
        bound = bind_aliases(self.ns, self.aliases, set_globals)
        function = self.ns.get(name)
        recorded, originals = [], {}
        for target in req.get("record", []):
            if callable(self.ns.get(target)):
                originals[target] = self.ns[target]
                self.ns[target] = self.recorder(target, originals[target], recorded)

        def call():
            if not callable(function):
                raise NameError(f"name {name!r} is not defined as a function")
            return function(*args, **kwargs)

        try:
            value, error, (out, out_dropped), (err, err_dropped) = self.guarded(call)
        finally:
            self.ns.update(originals)
        sync_rebound_aliases(self.ns, self.aliases, bound)
        answer = {"error": error, "stdout": out, "stdout_dropped": out_dropped, "stderr": err,
                  "stderr_dropped": err_dropped, "recorded": recorded,
                  "globals": {n: self.exchange.encode(self.ns[n]) for n in req.get("get_globals", [])
                              if n in self.ns}}
        answer["value"] = None if error else self.exchange.encode(value)
        answer["args_after"] = self.exchange.encode(args) if req.get("return_args") else None
        return answer

    def recorder(self, name, original, log):
        try:
            signature = inspect.signature(original)
        except (TypeError, ValueError):
            signature = None

        def record(*args, **kwargs):
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
    """The grader's images as ./mnist.npz too (keras' layout), for a student who np.load()s the file directly."""
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
    report["userns_blocked"] = _user_namespace_blocked()
    report["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    report["root_entries"] = _listing("/")
    report["etc_entries"] = _listing("/etc") if os.path.isdir("/etc") else []
    report["mounts"] = _writable_mounts()
    info = os.stat(config["outbox"])
    report["outbox_id"] = [info.st_dev, info.st_ino]
    report["nproc"] = resource.getrlimit(resource.RLIMIT_NPROC)[0]
    return report


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
    if config.get("nproc"):  # counted in the sandbox's own user namespace: its processes only
        resource.setrlimit(resource.RLIMIT_NPROC, (config["nproc"], config["nproc"]))
    requests = os.fdopen(config["request_fd"], "rb")
    answers = config["answer_fd"]
    send(answers, {"id": "hello", "probe": probe(config)})
    prepare_environment(config)
    Runner(config).serve(requests, answers)
    sys.stdout.flush()
    os._exit(0)  # do not wait for threads the student left running


if __name__ == "__main__":
    main()
