"""grader/adapt/network.py: each way students keep the network's arrays, read as they meant it, and back.

The child reports the network-shaped arrays it finds (grader/sandbox/runner.py); here the same entries are made
from value trees with `entries_in`, so that every layout can be tried without a sandbox. test_adapter.py runs
the same layouts through the real sandbox."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grader.adapt.network import (
    NetworkLayout,
    choose_network,
    entries_in,
    from_entries,
    initial_params,
    returned_network,
    to_entries,
)
from grader.adapt.shapes import LayoutProblem
from grader.sandbox import NetworkEntry
from reference.network import init_params

SIZES = ((784, 32), (32, 32), (32, 10))


def canonical(seed: int = 0):
    """Distinct random canonical params: W (n_in, n_out), b (n_out,), none zero, so a mix-up shows."""
    rng = np.random.default_rng(seed)
    return [rng.normal(size=s) for s in SIZES], [rng.normal(size=s[1]) for s in SIZES]


def same(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a[0] + a[1], b[0] + b[1], strict=True))


def layout_of(trees, used=()) -> tuple[NetworkLayout, list[NetworkEntry]]:
    entries = entries_in(trees)
    layout = choose_network(entries, used)
    assert isinstance(layout, NetworkLayout), layout
    return layout, entries


def assert_reads_back(trees, params, used=()) -> NetworkLayout:
    """The trees read as exactly `params`, and writing `params` gives the very arrays the trees hold."""
    layout, entries = layout_of(trees, used)
    got = from_entries({e.index: e.value for e in entries}, layout)
    assert not isinstance(got, LayoutProblem), got
    assert same(got.params, params)
    written = to_entries(params, layout)
    by_index = {e.index: e.value for e in entries}
    for index, value in written.items():
        assert value.shape == by_index[index].shape and value.dtype == by_index[index].dtype
        np.testing.assert_array_equal(value, by_index[index])
    return layout


def test_handout_lists_are_the_handout_layout():
    params = canonical()
    layout = assert_reads_back({"weights": params[0], "biases": params[1]}, params)
    assert layout.holders == ("weights", "biases") and layout.notes == ()
    assert [layout.texts[i] for i in layout.w_entries] == ["weights[0]", "weights[1]", "weights[2]"]


def test_transposed_weights_are_read_as_used_by_w_at_a():
    params = canonical(1)
    trees = {"weights": [w.T.copy() for w in params[0]], "biases": params[1]}
    layout = assert_reads_back(trees, params)
    assert layout.transposed and "weights stored transposed (n_out, n_in), used as W @ a" in layout.notes


def test_mixed_orientation_leaves_the_square_layer_undecidable():
    w, b = canonical(2)
    problem = choose_network(entries_in({"weights": [w[0], w[1], w[2].T.copy()], "biases": b}), ())
    assert isinstance(problem, LayoutProblem) and "cannot be told" in problem.message


def test_dicts_keyed_by_layer_name_with_row_biases():
    w, b = canonical(3)
    trees = {"weights": {"h1": w[0], "h2": w[1], "out": w[2]},
             "biases": {"h1": b[0].reshape(1, -1), "h2": b[1].reshape(1, -1), "out": b[2].reshape(1, -1)}}
    layout = assert_reads_back(trees, (w, b))
    assert "weights and biases are dicts keyed 'h1', 'h2', 'out'" in layout.notes
    assert "biases have shape (1, n)" in layout.notes


def test_one_params_dict_pairs_biases_by_name_not_by_order():
    w, b = canonical(4)
    trees = {"params": {"b2": b[1], "W1": w[0], "b1": b[0].reshape(-1, 1), "W2": w[1], "W3": w[2], "b3": b[2]}}
    layout = assert_reads_back(trees, (w, b))
    assert layout.holders == ("params",) and [layout.texts[i] for i in layout.b_entries] == [
        "params['b1']", "params['b2']", "params['b3']"]


def test_layer_objects_lists_of_pairs_and_float32():
    w, b = canonical(5)
    w32, b32 = [x.astype(np.float32) for x in w], [x.astype(np.float32) for x in b]
    layout, entries = layout_of({"layers": [(w32[i], b32[i]) for i in range(3)]})
    got = from_entries({e.index: e.value for e in entries}, layout)
    assert same(got.params, ([x.astype(np.float64) for x in w32], [x.astype(np.float64) for x in b32]))
    assert "parameters are float32" in layout.notes and layout.holders == ("layers",)


def test_the_arrays_the_functions_use_win_over_an_unused_copy():
    w, b = canonical(6)
    trees = {"net": {"W": w, "b": b}, "best": {"W": [x.copy() for x in w], "b": [x.copy() for x in b]}}
    problem = choose_network(entries_in(trees), ())
    assert isinstance(problem, LayoutProblem) and "cannot tell" in problem.message
    layout, _ = layout_of(trees, used={"net", "np"})
    assert [layout.texts[i] for i in layout.w_entries] == ["net['W'][0]", "net['W'][1]", "net['W'][2]"]


def test_the_same_array_under_two_names_is_one_entry_with_both_paths():
    w, b = canonical(7)
    trees = {"W1": w[0], "weights": w, "biases": b}
    layout, entries = layout_of(trees)
    first = next(e for e in entries if e.index == layout.w_entries[0])
    assert set(first.texts) == {"W1", "weights[0]"}
    assert any("in place" in n for n in layout.notes)


@pytest.mark.parametrize("biases, fragment", [
    ([np.zeros(32), np.zeros(10)], "expected one bias of size 32 for each hidden layer"),
    ([np.zeros(32), np.zeros(32), np.zeros(32)], "expected one bias of size 32"),
])
def test_biases_that_fit_no_network_are_rejected(biases, fragment):
    problem = choose_network(entries_in({"weights": canonical()[0], "biases": biases}), ())
    assert isinstance(problem, LayoutProblem) and fragment in problem.message


def test_no_network_at_all_is_a_problem_that_says_so():
    problem = choose_network([], ())
    assert isinstance(problem, LayoutProblem) and "784->32->32->10" in problem.message


def test_a_bias_broadcast_to_a_matrix_is_rejected_precisely():
    params = canonical(8)
    layout, entries = layout_of({"weights": params[0], "biases": params[1]})
    values = {e.index: e.value for e in entries}
    values[layout.b_entries[1]] = params[1][1] + np.zeros((32, 1))
    problem = from_entries(values, layout, "after train_one_sample")
    assert isinstance(problem, LayoutProblem)
    assert problem.message.startswith("after train_one_sample, biases[1] has shape (32, 32)")


def test_a_bias_that_became_a_row_is_read_with_a_note():
    params = canonical(9)
    layout, entries = layout_of({"weights": params[0], "biases": params[1]})
    values = {e.index: e.value for e in entries}
    values[layout.b_entries[0]] = params[1][0].reshape(1, -1)
    read = from_entries(values, layout)
    assert same(read.params, params) and any("changed shape" in n for n in read.notes)


def test_initial_params_come_from_the_initialisation_else_after_the_run_with_a_note():
    params = init_params()
    layout, entries = layout_of({"weights": params[0], "biases": params[1]})
    got, notes = initial_params(entries, layout)
    assert same(got, params) and notes == []
    later = [NetworkEntry(e.index, e.paths, e.texts, e.value, None) for e in entries]
    got, notes = initial_params(later, layout)
    assert same(got, params) and "after all cells ran" in notes[0]


def test_a_returned_network_is_read_and_returned_gradients_are_not_confused_with_it():
    params = canonical(10)
    read = returned_network((params[0], params[1]))
    assert read is not None and same(read.params, params)
    assert returned_network({"loss": 0.5}) is None and returned_network(None) is None


STYLES = ("lists", "tuples", "dicts", "params", "layers")


def trees_in_style(params, style: str, transposed: bool, bias_form: str, dtype=np.float64):
    w = [np.ascontiguousarray(x.T if transposed else x, dtype=dtype) for x in params[0]]
    shape = {"flat": lambda n: (n,), "row": lambda n: (1, n), "column": lambda n: (n, 1)}[bias_form]
    b = [np.asarray(x, dtype=dtype).reshape(shape(x.size)) for x in params[1]]
    if style == "lists":
        return {"weights": w, "biases": b}
    if style == "tuples":
        return {"weights": tuple(w), "biases": tuple(b)}
    if style == "dicts":
        return {"weights": dict(zip(("h1", "h2", "out"), w, strict=True)),
                "biases": dict(zip(("h1", "h2", "out"), b, strict=True))}
    if style == "params":
        return {"params": {f"{k}{i + 1}": v for i in range(3) for k, v in (("W", w[i]), ("b", b[i]))}}
    return {"layers": [{"W": w[i], "b": b[i]} for i in range(3)]}


@settings(max_examples=60, deadline=None)
@given(style=st.sampled_from(STYLES), transposed=st.booleans(),
       bias_form=st.sampled_from(("flat", "row", "column")), seed=st.integers(0, 2**16))
def test_every_layout_round_trips_exactly(style, transposed, bias_form, seed):
    params = canonical(seed)
    assert_reads_back(trees_in_style(params, style, transposed, bias_form), params)


@settings(max_examples=30, deadline=None)
@given(style=st.sampled_from(STYLES), transposed=st.booleans(), seed=st.integers(0, 2**16))
def test_float32_layouts_are_written_in_their_own_dtype(style, transposed, seed):
    params = canonical(seed)
    trees = trees_in_style(params, style, transposed, "flat", np.float32)
    layout, entries = layout_of(trees)
    written = to_entries(params, layout)
    assert all(v.dtype == np.float32 for v in written.values())
    got = from_entries(written, layout)
    for x, y in zip(got.params[0] + got.params[1], params[0] + params[1], strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-6)


def test_a_momentum_buffer_shaped_like_the_network_is_not_taken_for_it():
    w, b = canonical(11)
    entries = entries_in({"weights": w, "biases": b})
    later = entries_in({"velocity": [np.full_like(x, 0.5) for x in w], "velocity_b": [np.ones_like(x) for x in b]})
    buffers = [NetworkEntry(len(entries) + e.index, e.paths, e.texts, e.value, None) for e in later]  # made later
    layout = choose_network(entries + buffers, used={"weights", "biases", "velocity", "velocity_b"})
    assert isinstance(layout, NetworkLayout), layout
    assert [layout.texts[i] for i in layout.w_entries + layout.b_entries] == [
        "weights[0]", "weights[1]", "weights[2]", "biases[0]", "biases[1]", "biases[2]"]
