"""grader/layout.py: each way students store the network's parameters, read as they meant it, and back."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grader.layout import (
    Layout,
    LayoutProblem,
    detect_layout,
    detect_layout_in,
    from_student,
    read_params,
    to_student,
)
from reference.network import init_params

SIZES = ((784, 32), (32, 32), (32, 10))


def canonical(seed: int = 0):
    """Distinct random canonical params: W (n_in, n_out), b (n_out,), none zero, so a mix-up shows."""
    rng = np.random.default_rng(seed)
    return [rng.normal(size=s) for s in SIZES], [rng.normal(size=s[1]) for s in SIZES]


def same(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a[0] + a[1], b[0] + b[1], strict=True))


def assert_reads_back(trees, layout: Layout, params) -> None:
    """The trees read as exactly `params`, and writing `params` back gives the same trees."""
    got = from_student(trees, layout)
    assert not isinstance(got, LayoutProblem), got
    assert same(got, params)
    again = to_student(params, layout)
    assert list(again) == list(trees)
    for name in trees:
        assert_same_tree(again[name], trees[name])


def assert_same_tree(a, b) -> None:
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert_same_tree(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same_tree(x, y)
    elif isinstance(a, np.ndarray):
        assert a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)
    else:
        assert a == b


# ------------------------------------------------------------------------------------- styles students use


def test_handout_lists_are_the_handout_layout():
    w, b = init_params()
    layout = detect_layout(w, b)
    assert isinstance(layout, Layout)
    assert layout.is_handout and layout.notes == ()
    assert layout.globals == ("weights", "biases") and not layout.transposed and layout.dtype == "float64"
    assert_reads_back({"weights": w, "biases": b}, layout, (w, b))


def test_transposed_weights_are_read_as_used_by_w_at_a():
    w, b = canonical(1)
    student = {"weights": [m.T.copy() for m in w], "biases": list(b)}
    layout = detect_layout(student["weights"], student["biases"])
    assert layout.transposed and all(layer.transposed for layer in layout.layers)
    assert "weights stored transposed (n_out, n_in), used as W @ a" in layout.notes
    assert_reads_back(student, layout, (w, b))
    assert to_student((w, b), layout)["weights"][0].shape == (32, 784)


def test_square_layer_follows_the_other_two_when_transposed():
    w, b = canonical(2)
    layout = detect_layout([m.T.copy() for m in w], b)
    out = to_student((w, b), layout)["weights"][1]
    assert np.array_equal(out, w[1].T), "the 32x32 layer must be transposed like the others"


def test_dicts_keyed_by_layer_name_with_row_biases():
    w, b = canonical(3)
    names = ("h1", "h2", "out")
    student = {
        "weights": {k: m.T.copy() for k, m in zip(names, w, strict=True)},
        "biases": {k: v.reshape(1, -1) for k, v in zip(names, b, strict=True)},
    }
    layout = detect_layout(student["weights"], student["biases"])
    assert "weights and biases are dicts keyed 'h1', 'h2', 'out'" in layout.notes
    assert "biases have shape (1, n)" in layout.notes
    assert_reads_back(student, layout, (w, b))


def test_dict_keys_out_of_layer_order_are_placed_by_shape():
    w, b = canonical(4)
    student = {
        "weights": {"out": w[2], "h1": w[0], "h2": w[1]},
        "biases": {"out": b[2], "h1": b[0], "h2": b[1]},
    }
    layout = detect_layout(student["weights"], student["biases"])
    assert [layer.w_path for layer in layout.layers] == [
        ("weights", "h1"),
        ("weights", "h2"),
        ("weights", "out"),
    ]
    assert_reads_back(student, layout, (w, b))
    assert list(to_student((w, b), layout)["weights"]) == ["out", "h1", "h2"]


def test_one_params_dict_with_column_biases():
    w, b = canonical(5)
    params = {}
    for i in range(3):
        params[f"W{i + 1}"] = w[i]
        params[f"b{i + 1}"] = b[i].reshape(-1, 1)
    layout = detect_layout(params, names=("params", "unused"))
    assert layout.globals == ("params",)
    assert "biases have shape (n, 1)" in layout.notes
    assert [layer.b_path for layer in layout.layers] == [("params", "b1"), ("params", "b2"), ("params", "b3")]
    assert_reads_back({"params": params}, layout, (w, b))


def test_combined_dict_pairs_biases_by_name_not_by_order():
    w, b = canonical(6)
    params = {"W1": w[0], "W2": w[1], "W3": w[2], "b2": b[1], "b1": b[0], "b3": b[2]}
    layout = detect_layout_in({"params": params})
    assert layout.layers[0].b_path == ("params", "b1") and layout.layers[1].b_path == ("params", "b2")
    assert_reads_back({"params": params}, layout, (w, b))


def test_tuples_float32_and_lists_of_layer_dicts():
    w, b = canonical(7)
    w32, b32 = [m.astype(np.float32) for m in w], [v.astype(np.float32) for v in b]
    layout = detect_layout(tuple(w32), tuple(b32))
    assert "weights and biases are tuples" in layout.notes and layout.dtype == "float32"
    as64 = ([m.astype(np.float64) for m in w32], [v.astype(np.float64) for v in b32])
    assert_reads_back({"weights": tuple(w32), "biases": tuple(b32)}, layout, as64)
    layers = [{"W": m, "b": v} for m, v in zip(w, b, strict=True)]
    layout = detect_layout_in({"layers": layers})
    assert "layers is a list of dicts keyed 'W', 'b'" in layout.notes
    assert_reads_back({"layers": layers}, layout, (w, b))


def test_list_of_weight_bias_pairs_pairs_siblings():
    w, b = canonical(8)
    layers = [(m, v) for m, v in zip(w, b, strict=True)]
    layout = detect_layout_in({"layers": layers})
    assert not any("by order" in n for n in layout.notes)
    assert_reads_back({"layers": layers}, layout, (w, b))


def test_six_loose_globals_and_constants_kept_verbatim():
    w, b = canonical(9)
    trees = {"W1": w[0], "b1": b[0], "W2": w[1], "b2": b[1], "W3": w[2], "b3": b[2]}
    layout = detect_layout_in(trees)
    assert_reads_back(trees, layout, (w, b))
    model = {"sizes": [784, 32, 32, 10], "activation": "sigmoid", "W": list(w), "b": list(b)}
    layout = detect_layout_in({"model": model})
    assert_reads_back({"model": model}, layout, (w, b))
    assert to_student(canonical(10), layout)["model"]["sizes"] == [784, 32, 32, 10]


def test_kv2154_style_row_biases_in_lists():
    w, b = canonical(11)
    student = {"weights": list(w), "biases": [v.reshape(1, -1) for v in b]}
    layout = detect_layout(student["weights"], student["biases"])
    assert layout.notes == ("biases have shape (1, n)",)
    assert_reads_back(student, layout, (w, b))


# --------------------------------------------------------------------------- ambiguous or wrong: no guesses


def test_wrong_hidden_size_is_named_with_the_expected_network():
    w, b = canonical()
    problem = detect_layout([np.zeros((784, 64)), w[1], w[2]], b)
    assert problem == LayoutProblem("weights[0] has shape (784, 64): expected 784->32->32->10")


def test_two_candidate_first_layers_are_not_guessed():
    w, b = canonical()
    problem = detect_layout([w[0], w[0].copy(), w[1], w[2]], b)
    assert isinstance(problem, LayoutProblem)
    assert "2 matrices could be layer 1's (784, 32) weights: weights[0] (784, 32), weights[1] (784, 32)" in (
        problem.message
    )


def test_mixed_orientation_leaves_the_square_layer_undecidable():
    w, b = canonical()
    problem = detect_layout([w[0], w[1], w[2].T.copy()], b)
    assert isinstance(problem, LayoutProblem)
    assert problem.message.startswith("weights[0] is stored (784, 32) but weights[2] is stored (10, 32)")


@pytest.mark.parametrize(
    "biases, fragment",
    [
        ([np.zeros(32), np.zeros(32)], "bias-shaped arrays found: biases[0] (32,), biases[1] (32,)"),
        ([np.zeros(32), np.zeros(64), np.zeros(10)], "biases[1] has shape (64,): expected 784->32->32->10"),
        ([np.zeros(32), np.zeros(32), np.zeros(32), np.zeros(10)], "biases[2] (32,)"),
    ],
)
def test_biases_that_fit_no_network_are_rejected(biases, fragment):
    problem = detect_layout(canonical()[0], biases)
    assert isinstance(problem, LayoutProblem) and fragment in problem.message


def test_missing_or_unreadable_parameters_are_problems():
    class Opaque:
        type_name = "torch.Tensor"

    w, b = canonical()
    assert detect_layout(None, b) == LayoutProblem("weights is None: the parameters were not recorded")
    assert detect_layout(w, None, names=("weights", "biases")).message.startswith("expected one bias")
    problem = detect_layout([Opaque(), w[1], w[2]], b)
    assert "weights[0] is a torch.Tensor" in problem.message
    problem = detect_layout([w[0].astype(np.complex128), w[1], w[2]], b)
    assert "weights[0] has dtype complex128" in problem.message


def test_biases_paired_only_by_order_say_so():
    w, b = canonical()
    layout = detect_layout({"h1": w[0], "h2": w[1], "out": w[2]}, {"b_a": b[0], "b_b": b[1], "b_c": b[2]})
    assert any("biases matched to layers by order" in n for n in layout.notes)


# ------------------------------------------------------------------ reading back after the student's update


def test_in_place_updates_and_rebinding_are_read_back():
    w, b = canonical(12)
    layout = detect_layout([m.T.copy() for m in w], b)
    trees = to_student((w, b), layout)
    trees["weights"][0] -= 1.0  # in place
    trees["biases"][2] = trees["biases"][2] + 2.0  # rebinding a list item
    got = from_student(trees, layout)
    assert np.array_equal(got[0][0], w[0] - 1.0) and np.array_equal(got[1][2], b[2] + 2.0)


def test_bias_broadcast_to_a_row_is_accepted_with_a_note():
    w, b = canonical(13)
    layout = detect_layout(w, b)
    trees = to_student((w, b), layout)
    trees["biases"][1] = trees["biases"][1].reshape(1, 32) - 0.5
    read = read_params(trees, layout, "after train_one_sample")
    assert np.array_equal(read.params[1][1], b[1] - 0.5)
    assert read.notes == (
        "after train_one_sample, biases[1] changed shape from (32,) to (1, 32); read as (32,)",
    )


def test_bias_broadcast_to_a_matrix_is_rejected_precisely():
    w, b = canonical(14)
    layout = detect_layout(w, b)
    trees = to_student((w, b), layout)
    trees["biases"][1] = trees["biases"][1] - np.ones((32, 1))
    problem = from_student(trees, layout, "after train_one_sample")
    assert problem == LayoutProblem(
        "after train_one_sample, biases[1] has shape (32, 32): "
        "the update broadcast a (32,) bias against a (32, 1) delta"
    )
    column = detect_layout(w, [v.reshape(-1, 1) for v in b])
    trees = to_student((w, b), column)
    trees["biases"][0] = trees["biases"][0] + np.ones((1, 32))
    assert "broadcast a (32, 1) bias against a (1, 32) delta" in from_student(trees, column).message


def test_containers_that_changed_kind_are_tolerated_and_noted():
    w, b = canonical(15)
    layout = detect_layout(w, b)
    trees = {"weights": tuple(w), "biases": tuple(b)}
    read = read_params(trees, layout, "after train_one_sample")
    assert same(read.params, (w, b))
    assert "after train_one_sample, weights became a tuple (was a list)" in read.notes
    as_dicts = {
        "weights": {"W1": w[0], "W2": w[1], "W3": w[2]},
        "biases": {"b1": b[0], "b2": b[1], "b3": b[2]},
    }
    read = read_params(as_dicts, layout, "after train_one_epoch")
    assert same(read.params, (w, b)) and any("found again by shape" in n for n in read.notes)


@pytest.mark.parametrize(
    "change, fragment",
    [
        (
            lambda t: t["weights"].__setitem__(0, t["weights"][0].T),
            "weights[0] has shape (32, 784) (it was transposed)",
        ),
        (lambda t: t["weights"].__setitem__(2, None), "weights[2] is a NoneType"),
        (
            lambda t: t["weights"].__setitem__(1, np.zeros((32, 33))),
            "weights[1] has shape (32, 33): expected (32, 32)",
        ),
        (lambda t: t["biases"].__setitem__(2, np.zeros(11)), "biases[2] has shape (11,): expected (10,)"),
        (lambda t: t.__setitem__("weights", None), "weights is None"),
    ],
)
def test_updates_that_break_the_network_are_rejected(change, fragment):
    w, b = canonical(16)
    layout = detect_layout(w, b)
    trees = to_student((w, b), layout)
    change(trees)
    problem = from_student(trees, layout, "after train_one_sample")
    assert isinstance(problem, LayoutProblem) and fragment in problem.message, problem


def test_to_student_refuses_non_canonical_params():
    w, b = canonical()
    layout = detect_layout(w, b)
    with pytest.raises(ValueError, match="canonical layer 1"):
        to_student(([m.T for m in w], b), layout)


# ---------------------------------------------------------------------------------------- round trips


def style_trees(style: str, transposed: bool, bias_form: str, dtype: str, w, b) -> dict:
    """The student's globals for canonical (w, b) in one of the styles above."""
    w = [np.ascontiguousarray(m.T if transposed else m).astype(dtype) for m in w]
    shapes = {"flat": lambda v: v, "row": lambda v: v.reshape(1, -1), "col": lambda v: v.reshape(-1, 1)}
    shape = shapes[bias_form]
    b = [shape(v).astype(dtype) for v in b]
    if style == "lists":
        return {"weights": w, "biases": b}
    if style == "tuples":
        return {"weights": tuple(w), "biases": tuple(b)}
    if style == "named_dicts":
        keys = ("hidden1", "hidden2", "output")
        return {"weights": dict(zip(keys, w, strict=True)), "biases": dict(zip(keys, b, strict=True))}
    if style == "params":
        return {"params": {k: v for i in range(3) for k, v in ((f"W{i + 1}", w[i]), (f"b{i + 1}", b[i]))}}
    if style == "layer_dicts":
        return {"net": [{"weight": m, "bias": v} for m, v in zip(w, b, strict=True)]}
    return {f"{role}{i + 1}": t for role, ts in (("W", w), ("b", b)) for i, t in enumerate(ts)}


STYLES = st.sampled_from(["lists", "tuples", "named_dicts", "params", "layer_dicts", "loose"])
SPECIAL = st.sampled_from([0.0, -0.0, 5e-324, -1e300, 1.0 + 2**-52, 255.0])


@st.composite
def canonical_params(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    w, b = canonical(seed)
    w[0][draw(st.integers(0, 783)), draw(st.integers(0, 31))] = draw(SPECIAL)
    b[2][draw(st.integers(0, 9))] = draw(SPECIAL)
    return w, b


@settings(max_examples=60, deadline=None)
@given(
    style=STYLES,
    transposed=st.booleans(),
    bias_form=st.sampled_from(["flat", "row", "col"]),
    params=canonical_params(),
)
def test_float64_layouts_round_trip_exactly(style, transposed, bias_form, params):
    w, b = params
    layout = detect_layout_in(style_trees(style, transposed, bias_form, "float64", *canonical(1)))
    assert isinstance(layout, Layout) and layout.transposed == transposed
    trees = to_student(params, layout)
    back = from_student(trees, layout)
    assert not isinstance(back, LayoutProblem) and same(back, params)
    for x, y in zip(back[0] + back[1], w + b, strict=True):
        assert np.signbit(x).tolist() == np.signbit(y).tolist()  # -0.0 survives
    assert detect_layout_in(trees) == layout


@settings(max_examples=30, deadline=None)
@given(
    style=STYLES,
    transposed=st.booleans(),
    bias_form=st.sampled_from(["flat", "row", "col"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_student_trees_round_trip_exactly_in_their_own_dtype(style, transposed, bias_form, seed):
    for dtype in ("float32", "float64"):
        trees = style_trees(style, transposed, bias_form, dtype, *canonical(seed))
        layout = detect_layout_in(trees)
        assert layout.dtype == dtype
        back = to_student(from_student(trees, layout), layout)
        for name in trees:
            assert_same_tree(back[name], trees[name])


# --------------------------------------------------------------------------------- which globals hold them

