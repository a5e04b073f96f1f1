"""Tracing one call of the student's step: the numeric arrays its own frames compute, line by line, for the
grader's search for the first wrong quantity (grader/pinpoint.py)."""

import time

from .frozen import np

_clock = time.perf_counter  # taken before any student code runs


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
