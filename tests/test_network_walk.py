"""The child's walk for the network (grader/sandbox/inside/network_walk.py) and its map (network_map.py): a weight
matrix with the bias folded in (the bias trick) is found as its two parts, views written in place."""

from __future__ import annotations

import numpy as np
import pytest

from grader.sandbox.inside.network_map import NetworkMap
from grader.sandbox.inside.network_walk import augmented_parts, is_complete_network, network_arrays
from grader.sandbox.inside.paths import path_text

SIZES = ((784, 32), (32, 32), (32, 10))


def augmented(rng, transposed: bool, bias_first: bool):
    """The three (n_in + 1, n_out) matrices (or (n_out, n_in + 1)), the bias row or column zero."""
    matrices = []
    for n_in, n_out in SIZES:
        w = np.zeros((n_in + 1, n_out))
        rows = slice(1, None) if bias_first else slice(0, n_in)
        w[rows] = rng.normal(0, 0.1, (n_in, n_out))
        matrices.append(w.T.copy() if transposed else w)
    return matrices


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("bias_first", [False, True])
def test_a_matrix_with_its_bias_folded_in_is_found_as_its_weight_and_bias_parts(transposed, bias_first):
    ns = {"weights": augmented(np.random.default_rng(0), transposed, bias_first)}
    arrays = network_arrays(ns)
    shapes = sorted(a.shape for a, _ in arrays)
    expected = [(32,), (32,), (10,)] + [(s if not transposed else s[::-1]) for s in SIZES]
    assert shapes == sorted(expected)
    assert is_complete_network([a for a, _ in arrays])
    for array, paths in arrays:
        assert np.shares_memory(array, ns["weights"][int(paths[0][1][1])])
    texts = sorted(path_text(p) for _, paths in arrays for p in paths)
    edge = "0" if bias_first else "784"
    assert (f"weights[0][:, {edge}]" if transposed else f"weights[0][{edge}]") in texts


def test_the_map_writes_into_the_parts_in_place_and_reads_a_rebound_matrix():
    ns = {"weights": augmented(np.random.default_rng(1), False, False)}
    original = ns["weights"][0]
    mapped = NetworkMap(network_arrays(ns))
    w1 = next(i for i, e in enumerate(mapped.entries) if e["objects"][0].shape == (784, 32))
    b1 = next(i for i, e in enumerate(mapped.entries) if e["objects"][0].shape == (32,)
              and path_text(e["paths"][0]).startswith("weights[0]"))
    mapped.write(ns, w1, np.full((784, 32), 2.0))
    mapped.write(ns, b1, np.full(32, 3.0))
    assert ns["weights"][0] is original and (original[:784] == 2).all() and (original[784] == 3).all()
    value, rebound = mapped.read(ns, b1)
    assert rebound == [] and (value == 3).all()
    ns["weights"][0] = original - 1.0  # the student's code rebinds the matrix: W = W - lr * g
    value, rebound = mapped.read(ns, b1)
    assert rebound == ["weights[0][784]"] and (value == 2).all()


def test_a_matrix_whose_bias_end_cannot_be_told_is_not_taken_apart():
    rng = np.random.default_rng(2)
    assert augmented_parts(rng.normal(size=(785, 32))) == []  # no zero row at either end
    assert augmented_parts(np.zeros((785, 32))) == []  # all zero: drawn later
    assert augmented_parts(np.zeros((785, 32), dtype=np.int64)) == []
    assert augmented_parts(rng.normal(size=(784, 32))) == []
