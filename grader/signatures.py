"""Map the handout's parameters onto a student's function signatures, by name, and read what they return.

Grader values have *roles*: a sample (784,), its label, a learning rate, the weights and biases trees
(in the student's layout), the images (n, 784) and labels (n,) of a dataset. A `CallPlan` says which student
parameter gets which role, how (positional or keyword), and every way the signature differs from the handout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

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
_ROLE_WORDS: dict[Role, str] = {
    "sample": "a sample",
    "label": "a label",
    "learning_rate": "a learning rate",
    "weights": "the weights",
    "biases": "the biases",
    "images": "the images",
    "labels": "the labels",
}


@dataclass(frozen=True)
class Param:
    """One parameter of a student's function, as the sandbox describes it."""

    name: str
    kind: str = "POSITIONAL_OR_KEYWORD"  # inspect.Parameter kind names
    has_default: bool = False
    default_repr: str | None = None


@dataclass(frozen=True)
class SignatureProblem:
    """No sensible mapping: `message` names the function and the parameter."""

    function: str
    parameter: str | None
    message: str


@dataclass(frozen=True)
class Argument:
    """One grader value passed to the student: which parameter, which role, positional or by keyword."""

    parameter: str
    role: Role
    positional: bool


@dataclass(frozen=True)
class CallPlan:
    """How to call one student function with the grader's values, and how its signature differs."""

    function: str
    student_signature: str
    handout_signature: str
    arguments: tuple[Argument, ...]
    defaults_kept: tuple[str, ...] = ()
    not_taken: tuple[str, ...] = ()  # handout parameters the student's function does not take
    deviations: tuple[str, ...] = ()

    def takes(self, role: Role) -> bool:
        return any(a.role == role for a in self.arguments)

    @property
    def params_as_arguments(self) -> bool:
        """True when the weights/biases go in as arguments (else the grader sets the globals)."""
        return self.takes("weights") or self.takes("biases")

    @property
    def conforms(self) -> bool:
        return not self.deviations

    def call_arguments(self, values: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """(args, kwargs) for the sandbox, from {role: value}."""
        args = [values[a.role] for a in self.arguments if a.positional]
        kwargs = {a.parameter: values[a.role] for a in self.arguments if not a.positional}
        return args, kwargs


# ------------------------------------------------------------------------------------------ parameters


def as_param(p: Any) -> Param:
    """A Param from a Param, a Parameter-like object, a dict or a (name, kind, has_default, repr) tuple."""
    if isinstance(p, Param):
        return p
    if isinstance(p, Mapping):
        fields = (
            p.get("name"),
            p.get("kind", "POSITIONAL_OR_KEYWORD"),
            p.get("has_default", False),
            p.get("default_repr"),
        )
    elif isinstance(p, (tuple, list)):
        fields = (tuple(p) + ("POSITIONAL_OR_KEYWORD", False, None)[len(p) - 1 :])[:4]
    else:
        fields = (
            p.name,
            getattr(p, "kind", "POSITIONAL_OR_KEYWORD"),
            getattr(p, "has_default", False),
            getattr(p, "default_repr", None),
        )
    name, kind, has_default, default_repr = fields
    kind = str(getattr(kind, "name", kind)).upper().replace(" ", "_")
    return Param(str(name), kind, bool(has_default), default_repr)


def render_signature(function: str, params: Sequence[Param]) -> str:
    """f(sample, y, learning_rate=0.003), with '/', '*', *args and **kwargs as Python writes them."""
    parts: list[str] = []
    star_written = False
    for i, p in enumerate(params):
        if p.kind == "KEYWORD_ONLY" and not star_written:
            parts.append("*")
            star_written = True
        if p.kind == "VAR_POSITIONAL":
            parts.append(f"*{p.name}")
            star_written = True
        elif p.kind == "VAR_KEYWORD":
            parts.append(f"**{p.name}")
        else:
            parts.append(f"{p.name}={p.default_repr}" if p.has_default else p.name)
        if p.kind == "POSITIONAL_ONLY" and (i + 1 == len(params) or params[i + 1].kind != "POSITIONAL_ONLY"):
            parts.append("/")
    return f"{function}({', '.join(parts)})"


def handout_signature(function: str) -> str:
    params = [Param(n, has_default=d is not None, default_repr=d) for n, _, d in HANDOUT[function]]
    return render_signature(function, params)


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


# ---------------------------------------------------------------------------------------------- plans


def _plain_list(names: Sequence[str]) -> str:
    return ", ".join(names)


def _lr_default_note(function: str, p: Param) -> str | None:
    try:
        value = float(p.default_repr) if p.default_repr is not None else None
    except ValueError:
        value = None
    if not p.has_default or value == 0.003:
        return None
    return (
        f"{function}'s {p.name} defaults to {p.default_repr}, the handout's to 0.003 "
        f"(the grader passes the rate explicitly)"
    )


def plan_call(function: str, signature: Sequence[Any]) -> CallPlan | SignatureProblem:
    """Map the handout's parameters of `function` onto the student's `signature` (a list of parameters)."""
    params = [as_param(p) for p in signature]
    shown = render_signature(function, params)
    expected = handout_signature(function) if function in HANDOUT else f"{function}(...)"
    by_role: dict[Role, Param] = {}
    unmatched: list[Param] = []
    for p in params:
        if p.kind in ("VAR_POSITIONAL", "VAR_KEYWORD"):
            continue
        role = role_of(p.name, function)
        if role is None:
            unmatched.append(p)
            continue
        if role in by_role:
            return SignatureProblem(
                function,
                p.name,
                f"{shown}: parameters {by_role[role].name} and {p.name} both look like "
                f"{_ROLE_WORDS[role]}; the grader cannot tell which is which",
            )
        by_role[role] = p
    for p in unmatched:
        if not p.has_default:
            wanted = ", ".join(_ROLE_WORDS[r] for r, _ in _roles_for(function))
            return SignatureProblem(
                function,
                p.name,
                f"{shown}: required parameter {p.name} matches none of the values the grader "
                f"can pass ({wanted}); expected {expected}",
            )
    var_keyword = any(p.kind == "VAR_KEYWORD" for p in params)
    for role in REQUIRED.get(function, ()):
        if role not in by_role and not var_keyword:
            return SignatureProblem(
                function, None, f"{shown} takes no parameter for {_ROLE_WORDS[role]}; expected {expected}"
            )
    return _plan(function, params, by_role, unmatched, shown, expected, var_keyword)


def _roles_for(function: str) -> list[tuple[Role, str]]:
    extra: list[Role] = ["weights", "biases"] + ([] if function in PER_SAMPLE else ["images", "labels"])
    roles = [(r, n) for n, r, _ in HANDOUT.get(function, ())]
    return roles + [(r, r) for r in extra if r not in {x for x, _ in roles}]


def _positional_problem(
    function: str, params: Sequence[Param], by_role, shown: str
) -> SignatureProblem | None:
    """Positional-only parameters must be filled left to right: a gap before a filled one cannot be passed."""
    gap = None
    mapped = {p.name for p in by_role.values()}
    for p in params:
        if p.kind != "POSITIONAL_ONLY":
            break
        if p.name not in mapped:
            gap = gap or p
        elif gap is not None:
            return SignatureProblem(
                function,
                gap.name,
                f"{shown}: positional-only parameter {gap.name} comes "
                f"before {p.name} and the grader has no value for it",
            )
    return None


def _plan(function, params, by_role, unmatched, shown, expected, var_keyword) -> CallPlan | SignatureProblem:
    problem = _positional_problem(function, params, by_role, shown)
    if problem:
        return problem
    role_of_param = {p.name: r for r, p in by_role.items()}
    arguments = [
        Argument(p.name, role_of_param[p.name], p.kind == "POSITIONAL_ONLY")
        for p in params
        if p.name in role_of_param
    ]
    handout = HANDOUT.get(function, ())
    handout_roles = {r for _, r, _ in handout}
    deviations: list[str] = []
    renamed = [f"{by_role[r].name} for {n}" for n, r, _ in handout if r in by_role and by_role[r].name != n]
    if renamed:
        deviations.append(
            f"{shown}: the handout's parameters are taken by other names ({_plain_list(renamed)})"
        )
    extras = [a.parameter for a in arguments if a.role not in handout_roles]
    if extras:
        word = "parameter" if len(extras) == 1 else "parameters"
        verb = "is" if len(extras) == 1 else "are"
        it = "it" if len(extras) == 1 else "them"
        deviations.append(
            f"{shown}: {word} {_plain_list(extras)} {verb} not in the handout's {expected}; "
            f"the grader passes its arrays to {it}"
        )
    not_taken = [n for n, r, _ in handout if r not in by_role]
    if var_keyword:  # the handout's values go in by their handout names
        arguments += [Argument(n, r, False) for n, r, _ in handout if r not in by_role]
        not_taken = []
    for n in not_taken:
        if n == "learning_rate":
            deviations.append(f"{function} takes no learning_rate: it cannot be probed at other rates")
        else:
            deviations.append(f"{function} takes no {n} (the handout's {expected})")
    kept = [p.name for p in unmatched]
    if kept:
        deviations.append(
            f"{shown}: {_plain_list(kept)} keep{'s' if len(kept) == 1 else ''} "
            f"{'its default' if len(kept) == 1 else 'their defaults'}"
        )
    if "learning_rate" in by_role:
        note = _lr_default_note(function, by_role["learning_rate"])
        deviations += [note] if note else []
    return CallPlan(
        function, shown, expected, tuple(arguments), tuple(kept), tuple(not_taken), tuple(deviations)
    )


# ------------------------------------------------------------------------------------- return values


@dataclass(frozen=True)
class ForwardReading:
    """What feed_forward_sample returned, read as loss, one-hot guess (10,), output probabilities (10,)."""

    loss: float | None
    guess: np.ndarray | None
    probabilities: np.ndarray | None
    note: str


def _scalar(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, np.ndarray) and v.size == 1 and v.dtype.kind in "fiu":
        return float(v.reshape(()))
    return None


def _class_index(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, np.integer)) and 0 <= int(v) < 10:
        return int(v)
    if isinstance(v, np.ndarray) and v.size == 1 and v.dtype.kind in "iu" and 0 <= int(v.reshape(())) < 10:
        return int(v.reshape(()))
    return None


def _vector10(v: Any) -> np.ndarray | None:
    if isinstance(v, (list, tuple)) and len(v) == 10 and all(_scalar(x) is not None for x in v):
        return np.array([_scalar(x) for x in v])
    if isinstance(v, np.ndarray) and v.size == 10 and v.dtype.kind in "fiub" and max(v.shape) == 10:
        return np.asarray(v, dtype=np.float64).reshape(10)
    return None


def _is_one_hot(v: np.ndarray) -> bool:
    return bool(np.isin(v, (0.0, 1.0)).all() and v.sum() == 1.0)


def _is_distribution(v: np.ndarray) -> bool:
    return bool(np.isfinite(v).all() and (v >= 0).all() and abs(v.sum() - 1.0) < 1e-6)


def _one_hot(index: int) -> np.ndarray:
    return np.eye(10)[index]


def _guess_of(v: Any) -> tuple[np.ndarray | None, np.ndarray | None, str | None]:
    """(one-hot guess, probabilities or None, how it was read) from a class index or a 10-vector."""
    index = _class_index(v)
    if index is not None:
        return _one_hot(index), None, "a class index"
    vec = _vector10(v)
    if vec is None:
        return None, None, None
    if _is_one_hot(vec):
        return vec, None, None
    if _is_distribution(vec):
        return _one_hot(int(np.argmax(vec))), vec, "probabilities (the guess is their argmax)"
    if np.isfinite(vec).all():
        return _one_hot(int(np.argmax(vec))), None, "scores (the guess is their argmax)"
    return None, None, None


_OUTPUT_KEYS = (
    "a3",
    "out",
    "output",
    "y_hat",
    "yhat",
    "probs",
    "probabilities",
    "softmax",
    "a_out",
    "h3",
    "prediction",
    "pred",
    "guess",
    "a",
)
_LOSS_KEYS = ("loss", "cost", "ce", "cross_entropy", "error", "l")


def _from_activations(values: Sequence[Any], what: str) -> ForwardReading:
    for v in reversed(values):
        vec = _vector10(v)
        if vec is not None and _is_distribution(vec):
            guess = _one_hot(int(np.argmax(vec)))
            return ForwardReading(
                None,
                guess,
                vec,
                f"returned {what}; the output layer's probabilities give the guess, and there is no loss",
            )
    return ForwardReading(None, None, None, f"returned {what} with no 10-class probability vector")


def _from_dict(value: Mapping[Any, Any]) -> ForwardReading:
    lower = {str(k).lower(): v for k, v in value.items()}
    loss = next((_scalar(lower[k]) for k in _LOSS_KEYS if k in lower and _scalar(lower[k]) is not None), None)
    for key in _OUTPUT_KEYS:
        if key in lower:
            guess, probs, how = _guess_of(lower[key])
            if guess is not None:
                note = f"returned a dict; read {key!r} as the output" + (f" ({how})" if how else "")
                return ForwardReading(loss, guess, probs, note + ("" if loss is not None else ", no loss"))
    reading = _from_activations(list(value.values()), f"a dict of activations ({', '.join(map(str, value))})")
    return ForwardReading(loss, reading.guess, reading.probabilities, reading.note)


def _from_sequence(value: Sequence[Any]) -> ForwardReading:
    if len(value) >= 2:
        first, second = value[0], value[1]
        loss = _scalar(first)
        guess, probs, how = _guess_of(second)
        extra = (
            "" if len(value) == 2 else f"; returned {len(value)} values, the first two read as (loss, guess)"
        )
        if loss is not None and guess is not None:
            return ForwardReading(loss, guess, probs, (f"the guess is {how}" if how else "") + extra)
        loss, (guess, probs, how) = _scalar(second), _guess_of(first)
        if loss is not None and guess is not None and len(value) == 2:
            return ForwardReading(
                loss,
                guess,
                probs,
                "returned (guess, loss), the handout's order reversed"
                + (f"; the guess is {how}" if how else ""),
            )
    return _from_activations(value, f"a {type(value).__name__} of {len(value)} values")


def read_forward_return(value: Any) -> ForwardReading:
    """Read feed_forward_sample's return: (loss, guess) as the handout, or the other shapes students use."""
    if value is None:
        return ForwardReading(None, None, None, "returned None")
    if isinstance(value, Mapping):
        return _from_dict(value)
    if isinstance(value, (list, tuple)) and _vector10(value) is None:
        return _from_sequence(value)
    loss = _scalar(value) if _class_index(value) is None else None
    if loss is not None:
        return ForwardReading(loss, None, None, "returned only a loss")
    guess, probs, how = _guess_of(value)
    if guess is not None:
        return ForwardReading(None, guess, probs, "returned only a guess" + (f" ({how})" if how else ""))
    return ForwardReading(
        None, None, None, f"returned a {type(value).__name__} that is neither a loss nor a guess"
    )


def interpret_forward_return(value: Any) -> tuple[float | None, np.ndarray | None, str]:
    """(loss or None, one-hot guess (10,) or None, a note: '' when it is the handout's (loss, one-hot))."""
    reading = read_forward_return(value)
    return reading.loss, reading.guess, reading.note


# ------------------------------------------------------------------------------ where did the update go
