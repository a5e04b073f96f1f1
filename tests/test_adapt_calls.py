"""grader/adapt/calls.py and returns.py: the handout's parameters mapped onto students' signatures; what their
forward passes return."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from grader.adapt.calls import (
    Argument,
    CallPlan,
    SignatureProblem,
    as_param,
    call_arguments,
    plan_call,
    render_signature,
)
from grader.adapt.returns import read_forward_return
from grader.sandbox import Param

LR = Param("learning_rate", has_default=True, default_repr="0.003")


def params_of(fn) -> list[Param]:
    """A real function's parameters as the sandbox describes them (name, kind, has_default, default_repr)."""
    return [
        Param(
            p.name, p.kind.name, p.default is not p.empty, None if p.default is p.empty else repr(p.default)
        )
        for p in inspect.signature(fn).parameters.values()
    ]


def values(plan: CallPlan, **given):
    """(args, kwargs) as the grader passes them: by keyword, as the parameters are named (no signature given)."""
    args, kwargs, _ = call_arguments(plan, [], given)
    return args, kwargs


def interpret_forward_return(value):
    reading = read_forward_return(value)
    return reading.loss, reading.guess, reading.note


# ------------------------------------------------------------------------------------------- handout


def test_handout_signatures_conform():
    def train_one_sample(sample, y, learning_rate=0.003): ...
    def feed_forward_sample(sample, y): ...
    def feed_forward_dataset(x, y): ...
    def train_one_epoch(learning_rate=0.003): ...

    for fn in (train_one_sample, feed_forward_sample, feed_forward_dataset, train_one_epoch):
        plan = plan_call(fn.__name__, params_of(fn))
        assert isinstance(plan, CallPlan) and plan.conforms, plan
        assert not plan.params_as_arguments
    plan = plan_call("train_one_sample", params_of(train_one_sample))
    args, kwargs, _ = call_arguments(plan, params_of(train_one_sample), {"sample": "X", "label": 3,
                                                                         "learning_rate": 1.0})
    assert args == ["X", 3, 1.0] and kwargs == {}  # positionally, left to right, as far as the signature allows


# --------------------------------------------------------------------------------------- bent ones


def test_weights_and_biases_as_arguments_are_passed_and_reported_like_pluggy():
    def train_one_sample(sample, label, weights, biases, learning_rate=0.003): ...

    plan = plan_call("train_one_sample", params_of(train_one_sample))
    assert plan.params_as_arguments
    assert (
        "train_one_sample(sample, label, weights, biases, learning_rate=0.003): parameters weights, biases "
        "are not in the handout's train_one_sample(sample, y, learning_rate=0.003); the grader passes its "
        "arrays to them"
    ) in plan.deviations
    _, kwargs = values(plan, sample="x", label=7, learning_rate=0.5, weights="W", biases="B")
    assert kwargs == {"sample": "x", "label": 7, "weights": "W", "biases": "B", "learning_rate": 0.5}


def test_forward_without_label_takes_the_weights():
    def feed_forward_sample(sample, weights, biases): ...

    plan = plan_call("feed_forward_sample", params_of(feed_forward_sample))
    assert plan.not_taken == ("y",)
    assert "feed_forward_sample takes no y (the handout's feed_forward_sample(sample, y))" in plan.deviations


def test_epoch_with_the_data_and_parameters_as_arguments():
    def train_one_epoch(x_train, y_train, weights, biases, learning_rate=0.003): ...

    plan = plan_call("train_one_epoch", params_of(train_one_epoch))
    assert [a.role for a in plan.arguments] == ["images", "labels", "weights", "biases", "learning_rate"]


@pytest.mark.parametrize(
    "names, roles",
    [
        (("img", "target", "lr"), ("sample", "label", "learning_rate")),
        (("x", "digit", "eta"), ("sample", "label", "learning_rate")),
        (("input", "true_label", "alpha"), ("sample", "label", "learning_rate")),
        (("image_vector", "y_onehot_label", "step_size"), ("sample", "label", "learning_rate")),
        (("a", "labels", "rate"), ("sample", "label", "learning_rate")),
    ],
)
def test_aliases_map_by_name(names, roles):
    plan = plan_call(
        "train_one_sample",
        [Param(names[0]), Param(names[1]), Param(names[2], has_default=True, default_repr="0.01")],
    )
    assert tuple(a.role for a in plan.arguments) == roles
    assert (
        f"train_one_sample's {names[2]} defaults to 0.01, the handout's to 0.003 "
        "(the grader passes the rate explicitly)" in plan.deviations
    )


def test_dataset_aliases_are_not_sample_aliases():
    plan = plan_call("feed_forward_dataset", [Param("X"), Param("Y")])
    assert [a.role for a in plan.arguments] == ["images", "labels"]
    plan = plan_call("feed_forward_dataset", [Param("images"), Param("labels"), Param("W"), Param("b")])
    assert [a.role for a in plan.arguments] == ["images", "labels", "weights", "biases"]


def test_missing_learning_rate_is_reported():
    plan = plan_call("train_one_sample", [Param("sample"), Param("y")])
    assert plan.not_taken == ("learning_rate",)
    assert "train_one_sample takes no learning_rate: it cannot be probed at other rates" in plan.deviations


def test_extra_defaulted_parameters_keep_their_defaults():
    plan = plan_call(
        "train_one_sample",
        [Param("sample"), Param("y"), LR, Param("verbose", has_default=True, default_repr="False")],
    )
    assert plan.defaults_kept == ("verbose",)
    assert "verbose" not in {a.parameter for a in plan.arguments}


def test_positional_only_parameters_are_passed_positionally():
    gap = Param("verbose", "POSITIONAL_ONLY", True, "False")
    plan = plan_call("train_one_sample", [gap, Param("x", "POSITIONAL_ONLY"), Param("y", "POSITIONAL_ONLY")])
    assert isinstance(plan, SignatureProblem) and plan.parameter == "verbose"
    assert "positional-only parameter verbose comes before x" in plan.message
    signature = [Param("x", "POSITIONAL_ONLY"), Param("y", "POSITIONAL_ONLY"), LR]
    plan = plan_call("train_one_sample", signature)
    args, kwargs, positions = call_arguments(plan, signature, {"sample": "X", "label": 1, "learning_rate": 0.1})
    assert args == ["X", 1, 0.1] and kwargs == {} and positions == {"sample": 0, "label": 1, "learning_rate": 2}
    assert (
        render_signature("f", [Param("x", "POSITIONAL_ONLY"), Param("y", "KEYWORD_ONLY")]) == "f(x, /, *, y)"
    )


def test_var_keyword_gets_the_handout_names():
    signature = [Param("sample"), Param("kw", "VAR_KEYWORD")]
    plan = plan_call("train_one_sample", signature)
    args, kwargs, _ = call_arguments(plan, signature, {"sample": 1, "label": 2, "learning_rate": 3})
    assert args == [1] and kwargs == {"y": 2, "learning_rate": 3}


def test_param_descriptions_in_other_forms():
    assert as_param(("lr", "KEYWORD_ONLY", True, "0.1")) == Param("lr", "KEYWORD_ONLY", True, "0.1")
    assert as_param({"name": "y"}) == Param("y")
    assert as_param(inspect.signature(lambda y=1: 0).parameters["y"]).kind == "POSITIONAL_OR_KEYWORD"


# ------------------------------------------------------------------------------------------ no guesses


def test_unfillable_required_parameter_is_named():
    problem = plan_call("train_one_sample", [Param("model"), Param("batch")])
    assert problem == SignatureProblem(
        "train_one_sample",
        "model",
        "train_one_sample(model, batch): required parameter model matches none of the values the grader can "
        "pass (a sample, a label, a learning rate, the weights, the biases); expected "
        "train_one_sample(sample, y, learning_rate=0.003)",
    )


def test_two_label_like_parameters_are_ambiguous():
    problem = plan_call("train_one_sample", [Param("sample"), Param("y"), Param("label"), LR])
    assert isinstance(problem, SignatureProblem) and problem.parameter == "label"
    assert "parameters y and label both look like a label" in problem.message


def test_a_training_step_without_a_label_cannot_be_called():
    problem = plan_call("train_one_sample", [Param("sample"), LR])
    assert problem.message == (
        "train_one_sample(sample, learning_rate=0.003) takes no parameter for a label; "
        "expected train_one_sample(sample, y, learning_rate=0.003)"
    )


# -------------------------------------------------------------------------------------- return values


def test_handout_return_reads_plainly():
    guess = np.zeros((1, 10))
    guess[0, 4] = 1
    loss, one_hot, note = interpret_forward_return((np.float64(2.5), guess))
    assert loss == 2.5 and one_hot.tolist() == np.eye(10)[4].tolist() and note == ""


def test_reversed_pair_and_class_index_and_probabilities():
    probs = np.full(10, 0.05)
    probs[7] = 0.55
    loss, guess, note = interpret_forward_return((probs, 1.25))
    assert loss == 1.25 and int(guess.argmax()) == 7 and "reversed" in note
    loss, guess, note = interpret_forward_return((0.5, 3))
    assert int(guess.argmax()) == 3 and "class index" in note


def test_dict_of_activations_gives_the_output_and_no_loss():
    probs = np.full(10, 0.1)
    probs[2] = 0.1 + 1e-3
    probs /= probs.sum()
    value = {"z1": np.ones(32), "a1": np.full(32, 0.5), "z3": np.arange(10.0), "a3": probs}
    loss, guess, note = interpret_forward_return(value)
    assert loss is None and int(guess.argmax()) == 2 and "'a3'" in note and "no loss" in note
    value = {"h1": np.full(32, 0.5), "logits": np.arange(10.0), "y_pred": probs}
    assert int(interpret_forward_return(value)[1].argmax()) == 2


def test_list_of_activations_uses_the_softmax_output():
    probs = np.eye(10)[6] * 0.9 + 0.01
    loss, guess, note = interpret_forward_return([np.zeros(784), np.zeros(32), np.zeros(32), probs])
    assert loss is None and int(guess.argmax()) == 6 and "no loss" in note


@pytest.mark.parametrize(
    "value, fragment",
    [
        (None, "returned None"),
        ("cat", "neither a loss nor a guess"),
        ([np.zeros(784), np.zeros(32)], "no 10-class probability vector"),
    ],
)
def test_unusable_returns_say_what_came_back(value, fragment):
    loss, guess, note = interpret_forward_return(value)
    assert loss is None and guess is None and fragment in note


# --------------------------------------------------------------------------- where the update went


def canonical(seed=0):
    rng = np.random.default_rng(seed)
    sizes = ((784, 32), (32, 32), (32, 10))
    return [rng.normal(size=s) for s in sizes], [rng.normal(size=s[1]) for s in sizes]


def stepped(params, delta=0.25):
    return [w - delta for w in params[0]], [b - delta for b in params[1]]


def test_arguments_record_roles_and_keywords():
    plan = plan_call("train_one_sample", [Param("sample"), Param("y"), Param("w"), Param("b"), LR])
    assert plan.arguments[2] == Argument("w", "weights", False)
