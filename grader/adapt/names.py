"""The names the grader accepts for the handout's values, one table for every place that needs them.

Grader values have *roles*: a sample (784,), its label, a learning rate, the weights and the biases, the
images (n, 784) and labels (n,) of a dataset. `role_of` says which role a student's parameter name stands for.
"""

from __future__ import annotations

from typing import Literal

Role = Literal["sample", "label", "learning_rate", "weights", "biases", "images", "labels"]

# The handout's functions: (parameter name, role, default repr or None), and the roles the grader must fill.
HANDOUT: dict[str, tuple[tuple[str, Role, str | None], ...]] = {
    "train_one_sample": (
        ("sample", "sample", None),
        ("y", "label", None),
        ("learning_rate", "learning_rate", "0.003"),
    ),
    "feed_forward_sample": (("sample", "sample", None), ("y", "label", None)),
    "feed_forward_dataset": (("x", "images", None), ("y", "labels", None)),
    "train_one_epoch": (("learning_rate", "learning_rate", "0.003"),),
}
REQUIRED: dict[str, tuple[Role, ...]] = {
    "train_one_sample": ("sample", "label"),
    "feed_forward_sample": ("sample",),
    "feed_forward_dataset": ("images",),
    "train_one_epoch": (),
}
PER_SAMPLE = ("train_one_sample", "feed_forward_sample")

_COMMON: dict[Role, tuple[str, ...]] = {
    "learning_rate": (
        "learning_rate",
        "lr",
        "eta",
        "alpha",
        "step_size",
        "rate",
        "learningrate",
        "l_rate",
        "lrate",
        "learning_rate_",
        "lr_rate",
        "stepsize",
    ),
    "weights": ("weights", "w", "weight", "ws", "params", "parameters", "weights_list", "weight_list"),
    "biases": ("biases", "b", "bias", "bs", "biases_list", "bias_list"),
}
_PER_SAMPLE: dict[Role, tuple[str, ...]] = {
    "sample": (
        "sample",
        "x",
        "image",
        "img",
        "input",
        "inputs",
        "a",
        "data",
        "sample_x",
        "x_i",
        "xi",
        "pixels",
        "x_sample",
        "input_sample",
        "input_data",
        "image_data",
        "vec",
        "vector",
        "s",
        "digit_image",
    ),
    "label": (
        "y",
        "label",
        "target",
        "true_label",
        "digit",
        "labels",
        "y_true",
        "truth",
        "y_i",
        "yi",
        "lbl",
        "y_label",
        "y_sample",
        "correct",
        "expected",
        "gt",
        "true_class",
        "target_label",
        "t",
        "true",
    ),
}
_PER_DATASET: dict[Role, tuple[str, ...]] = {
    "images": (
        "x_train",
        "x",
        "images",
        "data",
        "train_x",
        "x_data",
        "xs",
        "samples",
        "inputs",
        "dataset",
        "x_test",
        "imgs",
        "features",
        "input_data",
        "x_set",
        "test_x",
        "train_images",
        "train_data",
    ),
    "labels": (
        "y_train",
        "y",
        "labels",
        "train_y",
        "y_data",
        "ys",
        "targets",
        "y_test",
        "test_y",
        "label",
        "target",
        "digits",
        "y_set",
        "train_labels",
    ),
}
_CONTAINS: tuple[tuple[str, Role, Role], ...] = (  # substring, role for a sample function, for a dataset one
    ("label", "label", "labels"),
    ("target", "label", "labels"),
    ("learn", "learning_rate", "learning_rate"),
    ("weight", "weights", "weights"),
    ("bias", "biases", "biases"),
    ("image", "sample", "images"),
    ("sample", "sample", "images"),
    ("pixel", "sample", "images"),
)
ROLE_WORDS: dict[Role, str] = {
    "sample": "a sample",
    "label": "a label",
    "learning_rate": "a learning rate",
    "weights": "the weights",
    "biases": "the biases",
    "images": "the images",
    "labels": "the labels",
}

LEARNING_RATE_NAMES = _COMMON["learning_rate"]  # also the globals a step without the parameter may read


def role_of(name: str, function: str) -> Role | None:
    """The grader role a parameter name stands for in this function, or None."""
    low = name.lower()
    per_sample = function in PER_SAMPLE
    handout = {n: r for n, r, _ in HANDOUT.get(function, ())}
    if name in handout:
        return handout[name]
    tables = {**_COMMON, **(_PER_SAMPLE if per_sample else _PER_DATASET)}
    for role, aliases in tables.items():
        if low in aliases:
            return role
    for part, sample_role, dataset_role in _CONTAINS:
        if part in low:
            return sample_role if per_sample else dataset_role
    return None
