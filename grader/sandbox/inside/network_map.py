"""The student's own network arrays, followed by identity; the grader's values written into them in place."""

from .frozen import np
from .network_walk import MAX_PATHS
from .paths import assign, path_key, path_text, resolve, same_view


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
            if all(obj is not o and not same_view(obj, o) for o in found):
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
            if any(obj is w or same_view(obj, w) for w in written):
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
            if all(obj is not w and not same_view(obj, w) for w in written):
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
            if all(obj is not w and not same_view(obj, w) for w in written):
                rebound.append(path_text(path))
                value = obj if value is None else value
        if value is None:
            now = self.current(ns, index)
            value = now[0] if now else (written[0] if written else self.entries[index]["objects"][0])
        return value, rebound
