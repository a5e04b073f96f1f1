"""The student's weight layout (containers, orientation, bias shapes, dtype), to and from canonical.

Canonical (docs/DESIGN.md): weights[l] is (n_in, n_out) float64 used as z = a @ W + b, biases[l] is (n_out,).
A student's parameters are *value trees* (lists, tuples, dicts, numpy arrays) held by one or more globals:
`weights` and `biases` (the handout), one dict `params = {'W1': ..., 'b1': ...}`, or six loose globals.
Every array is found by its shape and remembered by its *path* (global name, then keys/indices), so the
grader can write its probe parameters into the same places and read the student's updates back from them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from reference.network import LAYER_SIZES

Params = tuple[list[np.ndarray], list[np.ndarray]]
Key = Any  # int (list/tuple index) or a dict key
Path = tuple  # (global name, key, key, ...)

SHAPES = tuple(zip(LAYER_SIZES[:-1], LAYER_SIZES[1:], strict=True))  # ((784, 32), (32, 32), (32, 10))
NETWORK = "->".join(map(str, LAYER_SIZES))


@dataclass(frozen=True)
class LayoutProblem:
    """The student's parameters cannot be read without guessing; `message` says which value and why."""

    message: str


@dataclass(frozen=True)
class Slot:
    """Where one layer's W or b lives in the student's trees; `role` is 'W' or 'b'."""

    role: Literal["W", "b"]
    layer: int


@dataclass(frozen=True)
class Node:
    """The shape of a student's tree: a container of nodes, a parameter slot, or a constant kept verbatim."""

    kind: Literal["list", "tuple", "dict", "slot", "const"]
    children: tuple = ()  # list/tuple: nodes; dict: (key, node) pairs
    slot: Slot | None = None
    value: Any = None


@dataclass(frozen=True)
class LayerLayout:
    """One layer as stored: W (n_in, n_out) or transposed (n_out, n_in); b (n,), (1, n) or (n, 1)."""

    n_in: int
    n_out: int
    transposed: bool
    bias_shape: tuple[int, ...]
    w_path: Path
    b_path: Path
    w_dtype: str = "float64"
    b_dtype: str = "float64"

    @property
    def w_shape(self) -> tuple[int, int]:
        return (self.n_out, self.n_in) if self.transposed else (self.n_in, self.n_out)


@dataclass(frozen=True)
class Layout:
    """The student's layout: which globals, their tree shapes, each layer's orientation, bias shape, dtype."""

    globals: tuple[str, ...]
    trees: tuple[Node, ...]  # one per global, same order
    layers: tuple[LayerLayout, ...]
    notes: tuple[str, ...] = ()

    @property
    def transposed(self) -> bool:
        return self.layers[0].transposed

    @property
    def dtype(self) -> str:
        kinds = {d for layer in self.layers for d in (layer.w_dtype, layer.b_dtype)}
        return kinds.pop() if len(kinds) == 1 else "mixed"

    @property
    def is_handout(self) -> bool:
        """True when the layout is exactly the handout's: lists `weights`, `biases`, (n_in, n_out), (n,)."""
        return not self.notes


@dataclass(frozen=True)
class ReadBack:
    """Canonical parameters read from the student's trees, with notes on anything tolerated on the way."""

    params: Params
    notes: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------- paths


def path_text(path: Path) -> str:
    """('weights', 0) -> "weights[0]"; ('params', 'W1') -> "params['W1']"."""
    return str(path[0]) + "".join(f"[{k!r}]" for k in path[1:])


def _walk(value: Any, path: Path) -> Iterator[tuple[Path, Any]]:
    """Every leaf of a value tree with its path, in order (dicts in their insertion order)."""
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _walk(item, path + (i,))
    elif isinstance(value, dict):
        for k, item in value.items():
            yield from _walk(item, path + (k,))
    else:
        yield path, value


def _lookup(trees: Mapping[str, Any], path: Path) -> Any:
    """The value at `path`; lists and tuples are interchangeable. Raises LookupError with the path's text."""
    if path[0] not in trees:
        raise LookupError(f"{path[0]} is not defined")
    value = trees[path[0]]
    for depth, key in enumerate(path[1:], start=1):
        here = path_text(path[:depth])
        if isinstance(value, dict):
            if key not in value:
                raise LookupError(f"{here} has no key {key!r} (keys: {list(value)!r})")
            value = value[key]
        elif isinstance(value, (list, tuple)) and isinstance(key, int):
            if key >= len(value):
                raise LookupError(f"{here} has {len(value)} items, not {key + 1}")
            value = value[key]
        else:
            raise LookupError(f"{here} is {_kind_of(value)}, not a container with {key!r}")
    return value


def _opaque_name(value: Any) -> str | None:
    """The child-side type name of a value the sandbox could not encode (sandbox Opaque), else None."""
    name = getattr(value, "type_name", None)
    return name if isinstance(name, str) and not isinstance(value, np.ndarray) else None


# ------------------------------------------------------------------------------------------- detection


def _is_weight_shaped(a: np.ndarray) -> bool:
    return a.ndim == 2 and min(a.shape) > 1


def _is_bias_shaped(a: np.ndarray) -> bool:
    return a.ndim == 1 or (a.ndim == 2 and min(a.shape) == 1)


def _is_bias_candidate(a: np.ndarray) -> bool:
    return _is_bias_shaped(a) and a.size in (32, 10)


def _layer_of_weight(shape: tuple[int, ...]) -> tuple[int, bool] | None:
    """(layer, transposed) for the non-square layers, (1, False) for the 32x32 one, None otherwise."""
    for layer, (n_in, n_out) in enumerate(SHAPES):
        if shape == (n_in, n_out):
            return layer, False
        if shape == (n_out, n_in):
            return layer, True
    return None


_ROLE = r"(weights?|biases?|bias|w|b)"
_ROLE_WORD = re.compile(rf"^{_ROLE}(?=[_\-.\d]|$)[_\-.]?|[_\-.]?{_ROLE}$")


def _pairing_key(path: Path) -> tuple[str, ...]:
    """A path with the words that say 'weight' or 'bias' removed: ('weights', 'h1') and ('biases', 'h1')
    both give ('', 'h1'); ('params', 'W1') and ('params', 'b1') both give ('params', '1')."""
    return tuple(_ROLE_WORD.sub("", str(k).lower()) for k in path)


def _pairs(b_path: Path, w_path: Path, w_paths: Sequence[Path]) -> bool:
    """A bias belongs with a weight: same index/key in parallel containers ('W1'/'b1', weights[0]/biases[0]),
    or siblings in a per-layer container (layers[0]['W'] / layers[0]['b'], layers[0][0] / layers[0][1])."""
    if _pairing_key(b_path) == _pairing_key(w_path):
        return True
    parents = [p[:-1] for p in w_paths]
    return len(b_path) > 1 and b_path[:-1] == w_path[:-1] and parents.count(w_path[:-1]) == 1


def _dtype_name(a: np.ndarray) -> str:
    return "float32" if a.dtype == np.float32 else "float64"


def _collect_arrays(trees: Mapping[str, Any]) -> tuple[list[tuple[Path, np.ndarray]], LayoutProblem | None]:
    """All numeric arrays in the trees, with paths; a problem for None, undecodable or non-numeric leaves."""
    arrays = []
    for name, value in trees.items():
        if value is None:
            return [], LayoutProblem(f"{name} is None")
        for path, leaf in _walk(value, (name,)):
            opaque = _opaque_name(leaf)
            if opaque is not None:
                return [], LayoutProblem(
                    f"{path_text(path)} is a {opaque}, which the grader cannot read as an array "
                    f"(keep the parameters as numpy arrays in lists or dicts)"
                )
            if isinstance(leaf, np.ndarray):
                if leaf.dtype.kind not in "fiu":
                    return [], LayoutProblem(f"{path_text(path)} has dtype {leaf.dtype}: expected floats")
                arrays.append((path, leaf))
    return arrays, None


def _shape_problem(path: Path, shape: tuple[int, ...]) -> LayoutProblem:
    return LayoutProblem(f"{path_text(path)} has shape {tuple(shape)}: expected {NETWORK}")


def _find_weights(arrays) -> tuple[list[tuple[Path, np.ndarray, bool | None]], LayoutProblem | None]:
    """One weight matrix per layer: [(path, array, transposed or None for 32x32)] in layer order."""
    found: list[list[tuple[Path, np.ndarray, bool | None]]] = [[], [], []]
    for path, a in arrays:
        if not _is_weight_shaped(a):
            continue
        hit = _layer_of_weight(a.shape)
        if hit is None:
            return [], _shape_problem(path, a.shape)
        layer, transposed = hit
        found[layer].append((path, a, None if layer == 1 else transposed))
    for layer, hits in enumerate(found):
        n_in, n_out = SHAPES[layer]
        if not hits:
            shapes = ", ".join(f"{path_text(p)} {tuple(a.shape)}" for p, a in arrays) or "no arrays"
            return [], LayoutProblem(
                f"no ({n_in}, {n_out}) weight matrix for layer {layer + 1} of {NETWORK}; found: {shapes}"
            )
        if len(hits) > 1:
            where = ", ".join(f"{path_text(p)} {tuple(a.shape)}" for p, a, _ in hits)
            return [], LayoutProblem(
                f"{len(hits)} matrices could be layer {layer + 1}'s ({n_in}, {n_out}) weights: {where}; "
                f"the grader cannot tell which one the network uses"
            )
    return [hits[0] for hits in found], None


def _orientation(weights) -> tuple[bool, LayoutProblem | None]:
    """Transposed or not, from the two non-square layers; the 32x32 layer follows them."""
    (p1, a1, t1), _, (p3, a3, t3) = weights
    if t1 != t3:
        return False, LayoutProblem(
            f"{path_text(p1)} is stored {tuple(a1.shape)} but {path_text(p3)} is stored {tuple(a3.shape)}: "
            f"one is (n_in, n_out), the other (n_out, n_in), so the orientation of the (32, 32) layer "
            f"cannot be told"
        )
    return bool(t1), None


def _find_biases(arrays, weights) -> tuple[list[tuple[Path, np.ndarray]], list[str], LayoutProblem | None]:
    """One bias per layer, paired with its weight by path (same index or key), else by order."""
    candidates = [(p, a) for p, a in arrays if _is_bias_candidate(a)]
    by_size = {n: [(p, a) for p, a in candidates if a.size == n] for n in (32, 10)}
    notes: list[str] = []
    if len(by_size[10]) != 1 or len(by_size[32]) != 2:
        found = ", ".join(f"{path_text(p)} {tuple(a.shape)}" for p, a in candidates) or "none"
        return (
            [],
            [],
            LayoutProblem(
                f"expected one bias of size 32 for each hidden layer and one of size 10 for the output layer "
                f"({NETWORK}); bias-shaped arrays found: {found}"
            ),
        )
    first, second = by_size[32]
    w_paths = [p for p, _, _ in weights]
    straight = _pairs(first[0], w_paths[0], w_paths) or _pairs(second[0], w_paths[1], w_paths)
    crossed = _pairs(first[0], w_paths[1], w_paths) or _pairs(second[0], w_paths[0], w_paths)
    if crossed and not straight:
        first, second = second, first
    elif not straight:
        notes.append(
            f"biases matched to layers by order: {path_text(first[0])} to layer 1, "
            f"{path_text(second[0])} to layer 2"
        )
    return [first, second, by_size[10][0]], notes, None


def _stray_array_problem(arrays, used: set[Path]) -> LayoutProblem | None:
    """A weight-shaped array that belongs to no layer, or a bias-like array in a biases container."""
    for path, a in arrays:
        if path in used:
            continue
        if _is_weight_shaped(a) or "bias" in str(path[0]).lower():
            return _shape_problem(path, a.shape)
    return None


def _skeleton(value: Any, path: Path, slots: Mapping[Path, Slot]) -> Node:
    if path in slots:
        return Node("slot", slot=slots[path])
    if isinstance(value, (list, tuple)):
        kind = "list" if isinstance(value, list) else "tuple"
        return Node(kind, tuple(_skeleton(v, path + (i,), slots) for i, v in enumerate(value)))
    if isinstance(value, dict):
        return Node("dict", tuple((k, _skeleton(v, path + (k,), slots)) for k, v in value.items()))
    return Node("const", value=value)


def _describe(node: Node) -> str:
    """'a dict keyed 'h1', 'h2', 'out'', 'a list of 3 tuples', ... for the layout notes."""
    if node.kind == "slot":
        return "a single array"
    if node.kind == "dict":
        return f"a dict keyed {', '.join(repr(k) for k, _ in node.children)}"
    inner = {c.kind for c in node.children}
    if inner == {"slot"}:
        return f"a {node.kind}"
    kinds = ", ".join(sorted(_describe(c).removeprefix("a ") for c in node.children))
    if len(inner) > 1:
        return f"a {node.kind} of {len(node.children)} items ({kinds})"
    first = _describe(node.children[0]).removeprefix("a ")
    word, _, rest = first.partition(" ")
    return f"a {node.kind} of {word}s" + (f" {rest}" if rest else "")


def _container_notes(names: Sequence[str], nodes: Sequence[Node]) -> list[str]:
    """'weights and biases are dicts keyed ...': one note per distinct container description."""
    groups: dict[str, list[str]] = {}
    for name, node in zip(names, nodes, strict=True):
        if node.kind != "slot" and not (node.kind == "list" and {c.kind for c in node.children} == {"slot"}):
            groups.setdefault(_describe(node), []).append(name)
    notes = []
    for what, who in groups.items():
        if len(who) == 1:
            notes.append(f"{who[0]} is {what}")
        else:
            plural = what.removeprefix("a ").replace(" of ", "s of ", 1) if " of " in what else what[2:] + "s"
            if what.startswith("a dict"):
                plural = "dicts" + what.removeprefix("a dict")
            notes.append(f"{' and '.join(who)} are {plural}")
    return notes


def _bias_form(shape: tuple[int, ...]) -> str:
    return "(n,)" if len(shape) == 1 else "(1, n)" if shape[0] == 1 else "(n, 1)"


def _layout_notes(names: Sequence[str], nodes: Sequence[Node], layers: Sequence[LayerLayout]) -> list[str]:
    notes = []
    if tuple(names) != ("weights", "biases"):
        notes.append(f"parameters are held in {', '.join(names)} (the handout uses lists weights, biases)")
    notes += _container_notes(names, nodes)
    if layers[0].transposed:
        notes.append("weights stored transposed (n_out, n_in), used as W @ a")
    for form in sorted({_bias_form(layer.bias_shape) for layer in layers} - {"(n,)"}):
        notes.append(f"biases have shape {form}")
    dtypes = sorted({d for layer in layers for d in (layer.w_dtype, layer.b_dtype)})
    if dtypes != ["float64"]:
        notes.append(f"parameters are {' and '.join(dtypes)}")
    return notes


def detect_layout_in(trees: Mapping[str, Any]) -> Layout | LayoutProblem:
    """The layout of the student's parameters, given the globals that hold them ({name: value tree})."""
    arrays, problem = _collect_arrays(trees)
    if problem:
        return problem
    weights, problem = _find_weights(arrays)
    if problem:
        return problem
    transposed, problem = _orientation(weights)
    if problem:
        return problem
    misfits = [(p, a) for p, a in arrays if "bias" in str(p[0]).lower() and not _is_bias_candidate(a)]
    if misfits:
        return _shape_problem(misfits[0][0], misfits[0][1].shape)
    biases, pair_notes, problem = _find_biases(arrays, weights)
    if problem:
        return problem
    problem = _stray_array_problem(arrays, {p for p, _, _ in weights} | {p for p, _ in biases})
    if problem:
        return problem
    layers = tuple(
        LayerLayout(n_in, n_out, transposed, tuple(b.shape), wp, bp, _dtype_name(w), _dtype_name(b))
        for (n_in, n_out), (wp, w, _), (bp, b) in zip(SHAPES, weights, biases, strict=True)
    )
    slots = {layer.w_path: Slot("W", i) for i, layer in enumerate(layers)}
    slots |= {layer.b_path: Slot("b", i) for i, layer in enumerate(layers)}
    names = tuple(trees)
    nodes = tuple(_skeleton(trees[name], (name,), slots) for name in names)
    notes = _layout_notes(names, nodes, layers) + pair_notes
    return Layout(names, nodes, layers, tuple(notes))


def detect_layout(
    weights_value: Any, biases_value: Any = None, names: tuple[str, str] = ("weights", "biases")
) -> Layout | LayoutProblem:
    """The layout of the recorded `weights` and `biases`; biases_value None: one tree holds both."""
    if weights_value is None:
        return LayoutProblem(f"{names[0]} is None: the parameters were not recorded")
    trees = {names[0]: weights_value}
    if biases_value is not None:
        trees[names[1]] = biases_value
    return detect_layout_in(trees)


# ---------------------------------------------------------------------------------------- conversion


def _student_array(a: np.ndarray, shape: tuple[int, ...], dtype: str, transpose: bool) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return np.ascontiguousarray((a.T if transpose else a).reshape(shape), dtype=dtype)


def _build(node: Node, params: Params, layout: Layout) -> Any:
    if node.kind == "slot":
        layer = layout.layers[node.slot.layer]
        if node.slot.role == "W":
            return _student_array(params[0][node.slot.layer], layer.w_shape, layer.w_dtype, layer.transposed)
        return _student_array(params[1][node.slot.layer], layer.bias_shape, layer.b_dtype, False)
    if node.kind == "list":
        return [_build(c, params, layout) for c in node.children]
    if node.kind == "tuple":
        return tuple(_build(c, params, layout) for c in node.children)
    if node.kind == "dict":
        return {k: _build(c, params, layout) for k, c in node.children}
    return node.value


def _check_canonical(params: Params) -> None:
    weights, biases = params
    if len(weights) != 3 or len(biases) != 3:
        raise ValueError(f"canonical params need 3 weights and 3 biases, not {len(weights)}, {len(biases)}")
    for layer, ((n_in, n_out), w, b) in enumerate(zip(SHAPES, weights, biases, strict=True)):
        if np.shape(w) != (n_in, n_out) or np.shape(b) != (n_out,):
            raise ValueError(
                f"canonical layer {layer + 1}: W {np.shape(w)}, b {np.shape(b)}; "
                f"expected ({n_in}, {n_out}), ({n_out},)"
            )


def to_student(params: Params, layout: Layout) -> dict[str, Any]:
    """Canonical params -> {global name: value tree} in the student's layout (fresh arrays, their dtype)."""
    _check_canonical(params)
    pairs = zip(layout.globals, layout.trees, strict=True)
    return {name: _build(node, params, layout) for name, node in pairs}


def _read_weight(value: Any, path: Path, layer: LayerLayout, context: str) -> np.ndarray | LayoutProblem:
    where = f"{context}, {path_text(path)}" if context else path_text(path)
    if not isinstance(value, np.ndarray):
        return LayoutProblem(f"{where} is {_kind_of(value)}: expected an array {layer.w_shape}")
    if value.dtype.kind not in "fiu":
        return LayoutProblem(f"{where} has dtype {value.dtype}: expected floats")
    if value.shape != layer.w_shape:
        turned = value.shape == layer.w_shape[::-1]
        why = " (it was transposed)" if turned else ""
        return LayoutProblem(f"{where} has shape {value.shape}{why}: expected {layer.w_shape}")
    w = np.array(value, dtype=np.float64)
    return np.ascontiguousarray(w.T) if layer.transposed else w


def _broadcast_hint(recorded: tuple[int, ...], n: int) -> str:
    delta = f"({n}, 1)" if recorded in ((n,), (1, n)) else f"(1, {n})"
    return f"the update broadcast a {recorded} bias against a {delta} delta"


def _read_bias(
    value: Any, path: Path, layer: LayerLayout, context: str
) -> tuple[np.ndarray | LayoutProblem, str | None]:
    n = layer.n_out
    where = f"{context}, {path_text(path)}" if context else path_text(path)
    if not isinstance(value, np.ndarray):
        return LayoutProblem(f"{where} is {_kind_of(value)}: expected an array of shape {(n,)}"), None
    if value.dtype.kind not in "fiu":
        return LayoutProblem(f"{where} has dtype {value.dtype}: expected floats"), None
    if value.shape == (n, n):
        return LayoutProblem(f"{where} has shape {value.shape}: {_broadcast_hint(layer.bias_shape, n)}"), None
    if value.shape not in ((n,), (1, n), (n, 1)):
        return LayoutProblem(f"{where} has shape {value.shape}: expected {layer.bias_shape}"), None
    note = None
    if value.shape != layer.bias_shape:
        note = f"{where} changed shape from {layer.bias_shape} to {value.shape}; read as ({n},)"
    return np.array(value, dtype=np.float64).reshape(n), note


def read_params(trees: Mapping[str, Any], layout: Layout, context: str = "") -> ReadBack | LayoutProblem:
    """The student's trees (after their code ran) -> canonical params, tolerating containers that changed
    kind (list <-> tuple, or restructured into dicts) and biases that broadcast to (1, n) or (n, 1)."""
    try:
        values = [(_lookup(trees, layer.w_path), _lookup(trees, layer.b_path)) for layer in layout.layers]
    except LookupError as missing:
        return _read_restructured(trees, layout, context, str(missing))
    weights, biases, notes = [], [], []
    for layer, (w_value, b_value) in zip(layout.layers, values, strict=True):
        w = _read_weight(w_value, layer.w_path, layer, context)
        if isinstance(w, LayoutProblem):
            return w
        b, note = _read_bias(b_value, layer.b_path, layer, context)
        if isinstance(b, LayoutProblem):
            return b
        weights.append(w)
        biases.append(b)
        notes += [note] if note else []
    notes += _container_change_notes(trees, layout, context)
    return ReadBack((weights, biases), tuple(notes))


def _container_change_notes(trees: Mapping[str, Any], layout: Layout, context: str) -> list[str]:
    notes = []
    for name, node in zip(layout.globals, layout.trees, strict=True):
        now = trees.get(name)
        kind = "list" if isinstance(now, list) else "tuple" if isinstance(now, tuple) else None
        if node.kind in ("list", "tuple") and kind and kind != node.kind:
            notes.append(f"{context + ', ' if context else ''}{name} became a {kind} (was a {node.kind})")
    return notes


def _read_restructured(trees, layout: Layout, context: str, missing: str) -> ReadBack | LayoutProblem:
    """The trees no longer have the recorded structure: find the layers again by shape."""
    again = detect_layout_in({name: trees.get(name) for name in layout.globals})
    prefix = f"{context}, " if context else ""
    if isinstance(again, LayoutProblem):
        return LayoutProblem(f"{prefix}{missing}, and the parameters cannot be found again: {again.message}")
    if again.transposed != layout.transposed:
        return LayoutProblem(f"{prefix}{missing}, and the weights are now stored the other way round")
    read = read_params(trees, again, context)
    if isinstance(read, LayoutProblem):
        return read
    found_again = f"{prefix}{missing}; the parameters were found again by shape"
    return ReadBack(read.params, read.notes + (found_again,))


def from_student(trees: Mapping[str, Any], layout: Layout, context: str = "") -> Params | LayoutProblem:
    """The student's trees ({global name: value tree}) -> canonical params, or why they cannot be read."""
    read = read_params(trees, layout, context)
    return read if isinstance(read, LayoutProblem) else read.params


def _kind_of(value: Any) -> str:
    """'a list', or for a value the sandbox could not send ('a generator'), the student's own type name."""
    name = getattr(value, "type_name", None) or type(value).__name__
    why = f" ({value.repr})" if getattr(value, "type_name", None) and getattr(value, "repr", None) else ""
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}{why}"
