"""The network's shapes: which arrays are which layer's W and b, in which orientation, and reading them back.

Canonical (docs/DESIGN.md): weights[l] is (n_in, n_out) float64 used as z = a @ W + b, biases[l] is (n_out,).
An array is named by its *path* (a global, then keys, indices or attributes), used to pair a bias with its
weight ('W1'/'b1', weights[0]/biases[0], layers[0].W/layers[0].b) and in messages.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from reference.network import LAYER_SIZES

Params = tuple[list[np.ndarray], list[np.ndarray]]
Path = tuple  # (global name, key, key, ...)

SHAPES = tuple(zip(LAYER_SIZES[:-1], LAYER_SIZES[1:], strict=True))  # ((784, 32), (32, 32), (32, 10))
NETWORK = "->".join(map(str, LAYER_SIZES))


@dataclass(frozen=True)
class LayoutProblem:
    """The student's parameters cannot be read without guessing; `message` says which value and why."""

    message: str


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
class ReadBack:
    """Canonical parameters read from the student's trees, with notes on anything tolerated on the way."""

    params: Params
    notes: tuple[str, ...] = ()


def path_text(path: Path) -> str:
    """('weights', 0) -> "weights[0]"; ('params', 'W1') -> "params['W1']"."""
    return str(path[0]) + "".join(f"[{k!r}]" for k in path[1:])


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


def pairs(b_path: Path, w_path: Path, w_paths: Sequence[Path]) -> bool:
    """A bias belongs with a weight: same index/key in parallel containers ('W1'/'b1', weights[0]/biases[0]),
    or siblings in a per-layer container (layers[0]['W'] / layers[0]['b'], layers[0][0] / layers[0][1])."""
    if _pairing_key(b_path) == _pairing_key(w_path):
        return True
    parents = [p[:-1] for p in w_paths]
    return len(b_path) > 1 and b_path[:-1] == w_path[:-1] and parents.count(w_path[:-1]) == 1


def dtype_name(a: np.ndarray) -> str:
    return "float32" if a.dtype == np.float32 else "float64"


def _shape_problem(path: Path, shape: tuple[int, ...]) -> LayoutProblem:
    return LayoutProblem(f"{path_text(path)} has shape {tuple(shape)}: expected {NETWORK}")


def find_weights(arrays) -> tuple[list[tuple[Path, np.ndarray, bool | None]], LayoutProblem | None]:
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


def orientation(weights) -> tuple[bool, LayoutProblem | None]:
    """Transposed or not, from the two non-square layers; the 32x32 layer follows them."""
    (p1, a1, t1), _, (p3, a3, t3) = weights
    if t1 != t3:
        return False, LayoutProblem(
            f"{path_text(p1)} is stored {tuple(a1.shape)} but {path_text(p3)} is stored {tuple(a3.shape)}: "
            f"one is (n_in, n_out), the other (n_out, n_in), so the orientation of the (32, 32) layer "
            f"cannot be told"
        )
    return bool(t1), None


def find_biases(arrays, weights) -> tuple[list[tuple[Path, np.ndarray]], list[str], LayoutProblem | None]:
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
    straight = pairs(first[0], w_paths[0], w_paths) or pairs(second[0], w_paths[1], w_paths)
    crossed = pairs(first[0], w_paths[1], w_paths) or pairs(second[0], w_paths[0], w_paths)
    if crossed and not straight:
        first, second = second, first
    elif not straight:
        notes.append(
            f"biases matched to layers by order: {path_text(first[0])} to layer 1, "
            f"{path_text(second[0])} to layer 2"
        )
    return [first, second, by_size[10][0]], notes, None


def bias_form(shape: tuple[int, ...]) -> str:
    return "(n,)" if len(shape) == 1 else "(1, n)" if shape[0] == 1 else "(n, 1)"


def read_weight(value: Any, path: Path, layer: LayerLayout, context: str) -> np.ndarray | LayoutProblem:
    where = f"{context}, {path_text(path)}" if context else path_text(path)
    if not isinstance(value, np.ndarray):
        return LayoutProblem(f"{where} is {kind_of(value)}: expected an array {layer.w_shape}")
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


def read_bias(
    value: Any, path: Path, layer: LayerLayout, context: str
) -> tuple[np.ndarray | LayoutProblem, str | None]:
    n = layer.n_out
    where = f"{context}, {path_text(path)}" if context else path_text(path)
    if not isinstance(value, np.ndarray):
        return LayoutProblem(f"{where} is {kind_of(value)}: expected an array of shape {(n,)}"), None
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


def kind_of(value: Any) -> str:
    """'a list', or for a value the sandbox could not send ('a generator'), the student's own type name."""
    name = getattr(value, "type_name", None) or type(value).__name__
    why = f" ({value.repr})" if getattr(value, "type_name", None) and getattr(value, "repr", None) else ""
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}{why}"
