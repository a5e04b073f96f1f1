"""The grader's requests, each answered from the student's namespace: run a cell (one top-level statement at a
time, following the network as it appears), describe the globals, read values, call a function (setting
globals and the network's arrays first; recording or tracing it on request)."""

import ast
import builtins
import linecache
import os
import sys

from .capture import BoundedWriter
from .errors import error_of
from .exchange import Exchange
from .frozen import np
from .network_map import NetworkMap
from .network_walk import is_complete_network, is_weight_matrix, names_used_by_functions, network_arrays
from .recording import step_recorder, step_watcher
from .symbols import describe
from .tracing import StepTracer


def statements_of(source, filename):
    """The top-level statements, each compiled alone with its real line numbers; None if it does not parse."""
    try:
        tree = ast.parse(source, filename)
        return [compile(ast.Module(body=[node], type_ignores=[]), filename, "exec", dont_inherit=True)
                for node in tree.body]
    except (SyntaxError, ValueError, OverflowError, RecursionError, MemoryError):
        return None


def call_traced(name, function, args, kwargs, tracer):
    """function(*args, **kwargs), under `tracer` if there is one; NameError if `name` is not a function."""
    if not callable(function):
        raise NameError(f"name {name!r} is not defined as a function")
    if tracer is None:
        return function(*args, **kwargs)
    sys.settrace(tracer.global_trace)
    try:
        return function(*args, **kwargs)
    finally:
        sys.settrace(None)


class Runner:
    """The student's namespace and the grader's operations on it (`op_<name>` answers request <name>)."""

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
        self.zero_biases = None  # the biases' values when the snapshot's weights were all zero, else None
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
        """Keep a cell's lines (at their real line numbers) for tracebacks and the tracer."""
        lines = self.lines.setdefault(filename, [])
        new = source.split("\n")
        needed = first_line - 1 + len(new)
        lines.extend(["\n"] * (needed - len(lines)))
        lines[first_line - 1:needed] = [ln + "\n" for ln in new]
        linecache.cache[filename] = (sum(map(len, lines)), None, lines, filename)

    def op_run_cell(self, req):
        """Run one cell, a statement at a time; answer its error and output, and the network's first values."""
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
            self.note_filled_weights(answer)
            return
        if not is_complete_network([a for a, _ in arrays]):
            return
        self.network = NetworkMap(arrays)  # also on a replay after a restart, where no snapshot is wanted
        if not self.snapshotted:
            self.snapshotted = True
            answer["snapshot"] = self.network.describe(self.ns, self.exchange.encode)
            weights, biases = self.network_values()
            if weights and not any(np.any(w) for w in weights):
                self.zero_biases = [b.copy() for b in biases]

    def note_filled_weights(self, answer):
        """Weights that were all zero at the snapshot and are drawn now, biases untouched (training would have
        moved them): this statement was the initialisation (zeros first, then filled), so send it again."""
        if self.zero_biases is None:
            return
        weights, biases = self.network_values()
        if not any(np.any(w) for w in weights):
            return
        same = len(biases) == len(self.zero_biases) and all(
            b.shape == z.shape and np.array_equal(b, z) for b, z in zip(biases, self.zero_biases, strict=True))
        if not same:  # training has begun: the snapshot stays as it is
            self.zero_biases = None
            return
        answer["snapshot"] = self.network.describe(self.ns, self.exchange.encode)
        answer["snapshot_replaces"] = True
        if all(np.any(w) for w in weights):
            self.zero_biases = None  # every matrix drawn: that was the initialisation

    def network_values(self):
        """(weight matrices, biases) as the network's entries hold them now."""
        weights, biases = [], []
        for i, entry in enumerate(self.network.entries):
            now = (self.network.current(self.ns, i) or entry["objects"][:1])[0]
            if isinstance(now, np.ndarray) and now.dtype.kind in "biufc":
                (weights if is_weight_matrix(now.shape) else biases).append(now)
        return weights, biases

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
        """What each global is (symbols.describe)."""
        return {"symbols": {name: describe(value) for name, value in list(self.ns.items())
                            if not name.startswith("__")}}

    def op_get(self, req):
        """The values of the globals asked for, encoded."""
        return {"values": {n: self.exchange.encode(self.ns[n]) for n in req["names"] if n in self.ns}}

    def op_call(self, req):
        """Call a student's function with the grader's globals, network values and arguments; answer its value,
        output and error, the globals and network entries asked for, and what was recorded or traced."""
        args, kwargs = self.set_up_call(req)
        name = req["function"]
        function = self.ns.get(name)  # before the recorders: a recorded function called directly runs as it is
        recorded, originals = self.install_recorders(req.get("record", []), bool(req.get("compact")))
        watched = self.install_watcher(req.get("watch"), req.get("get_params", []), originals)
        tracer = self.tracer() if req.get("trace") else None
        try:
            value, error, (out, out_dropped), (err, err_dropped) = self.guarded(
                lambda: call_traced(name, function, args, kwargs, tracer))
        finally:
            self.ns.update(originals)
        answer = {"error": error, "stdout": out, "stdout_dropped": out_dropped, "stderr": err,
                  "stderr_dropped": err_dropped, "recorded": recorded,
                  "globals": {n: self.exchange.encode(self.ns[n]) for n in req.get("get_globals", [])
                              if n in self.ns}}
        answer["value"] = None if error else self.exchange.encode(value)
        if req.get("watch"):
            answer["watched"] = self.exchange.encode(watched) if "after" in watched else None
        if tracer is not None:
            answer["trace"] = {"truncated": tracer.truncated, "events": tracer.events,
                               "records": [{**r, "value": self.exchange.encode(r["value"])} for r in tracer.records]}
        answer["params"] = {}
        for index in req.get("get_params", []):
            after, rebound = self.network.read(self.ns, int(index))
            answer["params"][str(int(index))] = {"value": self.exchange.encode(after), "rebound": rebound}
        return answer

    def set_up_call(self, req):
        """Set the request's globals and network values; -> (args, kwargs) decoded, references resolved."""
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
        return args, kwargs

    def install_recorders(self, targets, compact):
        """Replace each callable global in `targets` by its recorder; -> (the shared log, the originals)."""
        recorded, originals = [], {}
        for target in targets:
            if callable(self.ns.get(target)):
                originals[target] = self.ns[target]
                self.ns[target] = self.recorder(target, originals[target], recorded, compact)
        return recorded, originals

    def install_watcher(self, watch, indices, originals):
        """Replace the global `watch["function"]` by a step_watcher of its `watch["call"]`-th call, snapshotting
        the network entries `indices`; -> the dict it fills (empty until that call ends)."""
        found = {}
        name = (watch or {}).get("function")
        if name is None or not callable(self.ns.get(name)) or self.network is None:
            return found
        originals.setdefault(name, self.ns[name])

        def snapshot():
            values = {}
            for index in indices:
                try:
                    values[str(int(index))] = np.array(self.network.read(self.ns, int(index))[0], copy=True)
                except Exception:  # a student's object that is not an array: that entry is not shown
                    continue
            return values

        self.ns[name] = step_watcher(name, self.ns[name], int(watch["call"]), snapshot, found)
        return found

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
        """A stand-in for the student's step `name` that logs each call into `log` (recording.step_recorder)."""
        return step_recorder(self.exchange, name, original, log, compact)
