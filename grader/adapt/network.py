"""The student's network, found by identity in the child, as canonical parameters and back.

The child reports every network-shaped array reachable from the student's globals (`NetworkEntry`: the array,
every path to it, its value at the initialisation). `choose_network` decides which six of them are the network
(W1, W2, W3, b1, b2, b3), in which orientation and shape; the grader then writes its values into those very
arrays in place (`to_entries`) and reads the student's updates back from them (`from_entries`).
Canonical: weights[l] is (n_in, n_out) float64 used as z = a @ W + b, biases[l] is (n_out,).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from grader.adapt.shapes import (
    SHAPES,
    LayerLayout,
    LayoutProblem,
    Params,
    ReadBack,
    bias_form,
    dtype_name,
    find_biases,
    find_weights,
    orientation,
    pairs,
    read_bias,
    read_weight,
)
from grader.sandbox import NetworkEntry

HANDOUT_HOLDERS = ("weights", "biases")
HANDOUT_FUNCTIONS = ("feed_forward_sample", "feed_forward_dataset", "train_one_sample", "train_one_epoch")


@dataclass(frozen=True)
class NetworkLayout:
    """Which of the student's arrays are the network: entry indices per layer, orientation, shapes, dtypes.

    `holders` are the globals that hold the weights and the biases as containers (('weights', 'biases'),
    ('params',)), empty where they live only inside objects; `texts` name each array for messages."""

    layers: tuple[LayerLayout, ...]
    w_entries: tuple[int, int, int]
    b_entries: tuple[int, int, int]
    holders: tuple[str, ...]
    texts: Mapping[int, str]
    notes: tuple[str, ...] = ()

    @property
    def globals(self) -> tuple[str, ...]:
        return self.holders

    @property
    def transposed(self) -> bool:
        return self.layers[0].transposed

    @property
    def entries(self) -> tuple[int, ...]:
        return self.w_entries + self.b_entries

    def holder_of(self, role: str) -> str | None:
        """The global holding all the weights ('weights') or all the biases ('biases'), if one does."""
        if not self.holders:
            return None
        return self.holders[0] if role == "weights" or len(self.holders) == 1 else self.holders[1]


def _shape_of(entry: NetworkEntry) -> np.ndarray | None:
    value = entry.initial if isinstance(entry.initial, np.ndarray) else entry.value
    return value if isinstance(value, np.ndarray) else None


def _preferred_path(entry: NetworkEntry, used: Collection[str]) -> tuple[Any, ...]:
    """The path that names the entry best: through the handout's globals, then through used ones."""
    def rank(path: tuple[Any, ...]) -> tuple[int, int]:
        head = str(path[0]) if path else ""
        return (0 if head in HANDOUT_HOLDERS else 1 if head in used else 2, len(path))

    return min(entry.paths, key=rank) if entry.paths else (f"entry{entry.index}",)


def _tiers(entries: Sequence[NetworkEntry], used: Collection[str]) -> list[list[NetworkEntry]]:
    """Ever wider sets of candidates: used by the functions, held by weights/biases, there at the
    initialisation, everything."""
    reach = set(used) | set(HANDOUT_FUNCTIONS)
    tiers = [
        [e for e in entries if any(p and str(p[0]) in reach for p in e.paths)],
        [e for e in entries if any(p and str(p[0]) in HANDOUT_HOLDERS for p in e.paths)],
        [e for e in entries if e.initial is not None],
        list(entries),
    ]
    unique: list[list[NetworkEntry]] = []
    for tier in tiers:
        if tier and all([e.index for e in tier] != [e.index for e in u] for u in unique):
            unique.append(tier)
    return unique


def _assign(entries: Sequence[NetworkEntry], used: Collection[str]) -> NetworkLayout | LayoutProblem:
    by_path = {_preferred_path(e, used): e for e in entries}
    arrays = [(path, _shape_of(e)) for path, e in _without_unlikely_twins(by_path).items() if _shape_of(e) is not None]
    weights, problem = find_weights(arrays)
    if problem:
        return problem
    transposed, problem = orientation(weights)
    if problem:
        return problem
    biases, pair_notes, problem = find_biases(_biases_beside(arrays, weights), weights)
    if problem:
        return problem
    layers = tuple(
        LayerLayout(n_in, n_out, transposed, tuple(b.shape), wp, bp, dtype_name(w), dtype_name(b))
        for (n_in, n_out), (wp, w, _), (bp, b) in zip(SHAPES, weights, biases, strict=True)
    )
    w_entries = tuple(by_path[p].index for p, _, _ in weights)
    b_entries = tuple(by_path[p].index for p, _ in biases)
    chosen = {e.index: e for e in entries}
    holders = _holders([chosen[i] for i in w_entries], [chosen[i] for i in b_entries], used)
    texts = {e.index: _text(e, used) for e in entries}
    layout = NetworkLayout(layers, w_entries, b_entries, holders, texts)  # type: ignore[arg-type]
    return NetworkLayout(layout.layers, layout.w_entries, layout.b_entries, holders, texts,
                         tuple(_notes(layout, [chosen[i] for i in layout.entries], used) + pair_notes))


def _without_unlikely_twins(by_path: dict[Any, NetworkEntry]) -> dict[Any, NetworkEntry]:
    """Where two weight-shaped arrays compete for one layer, keep those that were random at the initialisation:
    a momentum buffer or a gradient made later, or zeros then, is not the network's weight matrix."""
    def likely(e: NetworkEntry) -> bool:
        a = e.initial
        return isinstance(a, np.ndarray) and a.size > 0 and not bool(np.all(a == a.flat[0]))

    def layer(e: NetworkEntry) -> frozenset[int] | None:
        a = _shape_of(e)
        return frozenset(a.shape) if a is not None and a.ndim == 2 and min(a.shape) > 1 else None

    groups: dict[frozenset[int], list[NetworkEntry]] = {}
    for e in by_path.values():
        if layer(e) is not None:
            groups.setdefault(layer(e), []).append(e)
    dropped = {id(e) for group in groups.values() if len(group) > 1 and any(map(likely, group))
               for e in group if not likely(e)}
    return {p: e for p, e in by_path.items() if id(e) not in dropped}


def _biases_beside(arrays: list[tuple[Any, np.ndarray]], weights: list[tuple[Any, np.ndarray, Any]]
                   ) -> list[tuple[Any, np.ndarray]]:
    """The arrays, with bias candidates narrowed to those paired with the chosen weights by path (biases[0]
    beside weights[0]) when more candidates than the network's three are found and the pairs are exactly three."""
    w_paths = [p for p, _, _ in weights]
    biases = [(p, a) for p, a in arrays if a.ndim == 1 or (a.ndim == 2 and min(a.shape) == 1)]
    paired = [(p, a) for p, a in biases if any(pairs(p, w, w_paths) for w in w_paths)]
    sizes = sorted(a.size for _, a in paired)
    if len(biases) > 3 and sizes == [10, 32, 32]:
        dropped = {id(a) for _, a in biases} - {id(a) for _, a in paired}
        return [(p, a) for p, a in arrays if id(a) not in dropped]
    return arrays


def _text(entry: NetworkEntry, used: Collection[str]) -> str:
    path = _preferred_path(entry, used)
    for text, p in zip(entry.texts, entry.paths, strict=False):
        if p == path:
            return text
    return entry.texts[0] if entry.texts else f"array {entry.index}"


def _holders(w: Sequence[NetworkEntry], b: Sequence[NetworkEntry], used: Collection[str]) -> tuple[str, ...]:
    """The globals whose items are the three weights and the three biases (one global may hold both)."""
    def common(group: Sequence[NetworkEntry], depth: int) -> list[str]:
        sets = [{str(p[0]) for p in e.paths if len(p) == depth} for e in group]
        shared = set.intersection(*sets) if sets else set()
        return sorted(shared, key=lambda h: (h not in HANDOUT_HOLDERS, h not in used, h))

    both = common(list(w) + list(b), 3)  # params["W"][0] or layers-as-dict
    w_holders, b_holders = common(w, 2), common(b, 2)
    if w_holders and b_holders:
        return tuple(dict.fromkeys((w_holders[0], b_holders[0])))
    if both:
        return (both[0],)
    flat = common(list(w) + list(b), 2)  # one dict {'W1': ..., 'b1': ...}
    return (flat[0],) if flat else ()


def _container_notes(layout: NetworkLayout, chosen: Sequence[NetworkEntry]) -> list[str]:
    """"weights and biases are dicts keyed 'h1', 'h2', 'out'": holders keyed by names rather than indices."""
    keyed: dict[str, list[str]] = {}
    for holder in layout.holders:
        keys = [p[1] for e in chosen for p in e.paths if len(p) == 2 and str(p[0]) == holder]
        if keys and all(isinstance(k, str) for k in keys):
            keyed[holder] = list(dict.fromkeys(keys))
    if len(keyed) == 2 and len(set(map(tuple, keyed.values()))) == 1:
        names = " and ".join(keyed)
        return [f"{names} are dicts keyed {', '.join(map(repr, next(iter(keyed.values()))))}"]
    return [f"{holder} is a dict keyed {', '.join(map(repr, keys))}" for holder, keys in keyed.items()]


def _notes(layout: NetworkLayout, chosen: Sequence[NetworkEntry], used: Collection[str]) -> list[str]:
    notes = []
    texts = [layout.texts[i] for i in layout.entries]
    if layout.holders != HANDOUT_HOLDERS:
        notes.append(f"the network is held in {', '.join(texts)} (the handout uses lists weights, biases)")
    notes += _container_notes(layout, chosen)
    aliased = [e for e in chosen if len(e.texts) > 1]
    if aliased:
        shown = "; ".join(" is ".join(e.texts[:3]) for e in aliased[:3])
        notes.append(f"the same arrays are reachable in several ways ({shown}); the grader writes its values "
                     "into them in place, so every name sees them")
    if any(p and isinstance(p[-1], str) and p[-1].startswith("[") for e in chosen for p in e.paths):
        notes.append("each bias is a row (or column) of its weight matrix (the bias trick: inputs get a 1 "
                     "appended); the grader writes and reads those parts in place")
    if layout.transposed:
        notes.append("weights stored transposed (n_out, n_in), used as W @ a")
    for form in sorted({bias_form(layer.bias_shape) for layer in layout.layers} - {"(n,)"}):
        notes.append(f"biases have shape {form}")
    dtypes = sorted({d for layer in layout.layers for d in (layer.w_dtype, layer.b_dtype)})
    if dtypes != ["float64"]:
        notes.append(f"parameters are {' and '.join(dtypes)}")
    return notes


def choose_network(entries: Sequence[NetworkEntry], used: Collection[str]) -> NetworkLayout | LayoutProblem:
    """Which of the student's network-shaped arrays are W1..W3, b1..b3, or why that cannot be told."""
    if not entries:
        return LayoutProblem("no global holds the weights and biases of a 784->32->32->10 network "
                             "(no arrays of its shapes were found)")
    first_problem: LayoutProblem | None = None
    for tier in _tiers(entries, used):
        found = _assign(tier, used)
        if isinstance(found, NetworkLayout):
            return found
        first_problem = first_problem or found
        if "cannot tell" in found.message:  # ambiguous: a wider set of candidates will not help
            return found
    assert first_problem is not None
    return first_problem


# ---------------------------------------------------------------------------------------- conversion


def to_entries(params: Params, layout: NetworkLayout) -> dict[int, np.ndarray]:
    """Canonical params -> {entry: array in the student's orientation, shape and dtype}."""
    weights, biases = params
    values = {}
    for layer, w, b, wi, bi in zip(layout.layers, weights, biases, layout.w_entries, layout.b_entries,
                                   strict=True):
        w = np.asarray(w, dtype=np.float64)
        values[wi] = np.ascontiguousarray((w.T if layer.transposed else w).reshape(layer.w_shape),
                                          dtype=layer.w_dtype)
        values[bi] = np.ascontiguousarray(np.asarray(b, dtype=np.float64).reshape(layer.bias_shape),
                                          dtype=layer.b_dtype)
    return values


def from_entries(values: Mapping[int, Any], layout: NetworkLayout, context: str = "") -> ReadBack | LayoutProblem:
    """{entry: the student's array} -> canonical params, or which array cannot be read and why."""
    weights, biases, notes = [], [], []
    for layer, wi, bi in zip(layout.layers, layout.w_entries, layout.b_entries, strict=True):
        w = read_weight(values.get(wi), (layout.texts.get(wi, "?"),), layer, context)
        if isinstance(w, LayoutProblem):
            return w
        b, note = read_bias(values.get(bi), (layout.texts.get(bi, "?"),), layer, context)
        if isinstance(b, LayoutProblem):
            return b
        weights.append(w)
        biases.append(b)
        notes += [note] if note else []
    return ReadBack((weights, biases), tuple(notes))


def initial_params(entries: Sequence[NetworkEntry], layout: NetworkLayout) -> tuple[Params | None, list[str]]:
    """The network right after its initialisation, canonical; else after the run, with a note saying so."""
    by_index = {e.index: e for e in entries}
    chosen = [by_index[i] for i in layout.entries]
    if all(e.initial is not None for e in chosen):
        read = from_entries({e.index: e.initial for e in chosen}, layout)
        if isinstance(read, ReadBack):
            return read.params, []
    read = from_entries({e.index: e.value for e in chosen}, layout)
    if isinstance(read, LayoutProblem):
        return None, []
    held = ", ".join(layout.texts[i] for i in layout.entries)
    return read.params, [f"the initialisation was read from {held} after all cells ran (the network was not "
                         "complete after any one statement), so any training at top level shows in it"]


def entries_in(trees: Mapping[str, Any]) -> list[NetworkEntry]:
    """The network-shaped arrays in value trees ({name: lists, tuples, dicts of arrays}) as entries, the way
    the child reports a namespace's: each distinct array once, with every path to it; initial = value."""
    found: dict[int, tuple[np.ndarray, list[tuple[Any, ...]]]] = {}

    def walk(node: Any, path: tuple[Any, ...], depth: int) -> None:
        if isinstance(node, np.ndarray) and node.dtype != object:
            found.setdefault(id(node), (node, []))[1].append(path)
        elif depth < 4 and isinstance(node, (list, tuple)):
            for i, item in enumerate(node):
                walk(item, path + (i,), depth + 1)
        elif depth < 4 and isinstance(node, dict):
            for key, item in node.items():
                walk(item, path + (key,), depth + 1)

    for name, tree in trees.items():
        walk(tree, (name,), 0)
    return [NetworkEntry(i, tuple(paths), tuple(_path_text(p) for p in paths), array, array)
            for i, (array, paths) in enumerate(v for v in found.values() if _network_shaped(v[0]))]


def returned_network(value: Any, context: str = "") -> ReadBack | None:
    """The network a training function returned (a list, tuple or dict tree holding its six arrays, found by
    shape as in the child: `(weights, biases)`, `{'W1': ...}`), canonical; None if it holds none."""
    if not isinstance(value, (list, tuple, dict)):
        return None
    entries = entries_in({"return": value})
    layout = choose_network(entries, ())
    if isinstance(layout, LayoutProblem):
        return None
    read = from_entries({e.index: e.value for e in entries}, layout, context)
    return None if isinstance(read, LayoutProblem) else read


def _network_shaped(array: np.ndarray) -> bool:
    """Shaped like one of the network's weight matrices (either orientation) or biases, numeric."""
    if array.dtype.kind not in "fiu" or array.ndim not in (1, 2):
        return False
    matrices = {s for n_in, n_out in SHAPES for s in ((n_in, n_out), (n_out, n_in))}
    return array.shape in matrices or (array.size in (32, 10) and max(array.shape) == array.size)


def _path_text(path: tuple[Any, ...]) -> str:
    """("return", 0, 1) -> "return[0][1]"."""
    return str(path[0]) + "".join(f"[{k!r}]" for k in path[1:])
