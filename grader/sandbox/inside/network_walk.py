"""Finding the network in the student's globals: every array shaped like a layer of 784-32-32-10, by identity,
with the paths that reach it (through lists, dicts, object arrays, objects, classes, closures and defaults)."""

import types

from .exchange import is_array_sequence
from .frozen import np
from .paths import resolve_step

NETWORK_MATRICES = ((784, 32), (32, 784), (32, 32), (32, 10), (10, 32))  # W1, W2, W3 in either orientation
NETWORK_BIASES = (32, 32, 10)
MAX_CONTAINER = 64  # a list or dict longer than this holds data, not the network
WALK_DEPTH = 6  # globals -> objects -> attributes -> ...: deep enough for layers of objects in dicts
MAX_NODES = 20_000  # a walk visits at most this many values
MAX_PATHS = 8  # ways to reach one array that are remembered


def is_network_array(value):
    """A numeric array shaped like one of the network's weight matrices or bias vectors."""
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu" or value.ndim not in (1, 2):
        return False
    if value.ndim == 2 and value.shape in NETWORK_MATRICES:
        return True
    return value.size in (32, 10) and max(value.shape) == value.size


AUGMENTED = ((785, 32), (33, 32), (33, 10))  # (n_in + 1, n_out): a weight matrix with its bias as an extra row


def augmented_parts(value):
    """A weight matrix with the bias folded in (the bias trick: an extra row, or column when stored (n_out,
    n_in + 1)) as [(step, view)] for its weight part and its bias part, views into it; [] for any other value.

    Which end is the bias is told from the initialisation: the all-zero first or last row, the other end not."""
    if not isinstance(value, np.ndarray) or value.ndim != 2 or value.dtype.kind != "f":
        return []
    for axis in (0, 1):
        if (value.shape if axis == 0 else value.shape[::-1]) not in AUGMENTED:
            continue
        n = value.shape[axis] - 1
        first, last = np.take(value, 0, axis=axis), np.take(value, n, axis=axis)
        if first.any() == last.any():
            return []
        weight, bias = ((0, n), n) if first.any() else ((1, n + 1), 0)
        return [(("v", (axis, *weight)), None), (("v", (axis, bias)), None)]
    return []


def is_students(value):
    """Defined by the submission (its module is __main__), not by a library."""
    return getattr(value, "__module__", None) == "__main__"


def _children(value):
    """(step, child) pairs of a value the walk looks inside; steps are how `paths.resolve` gets back there."""
    if isinstance(value, np.ndarray):
        return [(("i", i), v) for i, v in enumerate(value)] if is_array_sequence(value) else []
    if isinstance(value, (list, tuple)):
        return [(("i", i), v) for i, v in enumerate(value)] if len(value) <= MAX_CONTAINER else []
    if isinstance(value, dict):
        return [(("k", k), v) for k, v in list(value.items())] if len(value) <= MAX_CONTAINER else []
    if isinstance(value, types.FunctionType):
        if not is_students(value):
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
        if not is_students(value):
            return []
        return [(("a", k), v) for k, v in list(vars(value).items()) if not k.startswith("__")]
    if isinstance(value, types.ModuleType) or not is_students(type(value)) and not isinstance(
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
        parts = augmented_parts(value)
        for step, _ in parts:  # keyed by the array and the part: every walk makes new views
            view = resolve_step(value, step)
            paths = found.setdefault((id(value), step), (view, []))[1]
            if len(paths) < MAX_PATHS:
                paths.append(path + (step,))
        if parts:
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


def is_weight_matrix(shape):
    """True for a weight matrix's shape (2-d, both sides over 1); the network's other arrays are biases."""
    return len(shape) == 2 and min(shape) > 1


def is_complete_network(arrays):
    """True when the arrays include the three weight matrices and the three biases of 784-32-32-10."""
    shapes = [a.shape for a in arrays]
    matrices = [frozenset(s) for s in shapes if is_weight_matrix(s)]
    biases = [max(s) for s in shapes if not is_weight_matrix(s)]
    return (all(m in matrices for m in (frozenset((784, 32)), frozenset((32,)), frozenset((32, 10))))
            and biases.count(32) >= 2 and biases.count(10) >= 1)


def names_used_by_functions(ns):
    """Every global name the student's functions mention (a leftover loop variable is not an alias)."""
    functions = [v for v in ns.values() if isinstance(v, types.FunctionType)]
    functions += [f for v in ns.values() if isinstance(v, type) and is_students(v)
                  for f in vars(v).values() if isinstance(f, types.FunctionType)]
    names, stack = set(), [f.__code__ for f in functions]
    while stack:
        code = stack.pop()
        names.update(code.co_names)
        stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return names
